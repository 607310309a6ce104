"""The partner parameters are read through providers made once per process: within max_age a second read is served
from their cache (no call to SSM), while Settings read anew (a new cold start) read the current value."""

from __future__ import annotations

from accrual.adapters.partner_config import parameter_name, partner_endpoint
from accrual.settings import Settings, load_settings


def test_an_endpoint_is_read_from_ssm_once_per_max_age(stack) -> None:
    settings = load_settings()
    assert settings == stack
    name = parameter_name(settings, "aliexpress", "endpoint")
    ssm = stack.client("ssm")
    ssm.put_parameter(Name=name, Value="https://first.example", Type="String", Overwrite=True)

    assert partner_endpoint(load_settings(), "aliexpress") == "https://first.example"
    ssm.put_parameter(Name=name, Value="https://second.example", Type="String", Overwrite=True)
    assert partner_endpoint(load_settings(), "aliexpress") == "https://first.example"  # the cache of the same provider
    # Settings read again (another process, another cold start) make their own providers, which read SSM
    assert partner_endpoint(Settings.from_env(), "aliexpress") == "https://second.example"
