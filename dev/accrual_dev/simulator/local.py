"""Point a (local) stack's partner configuration at the simulator: its fixed test credentials into the partners'
secrets, its URL into the endpoint parameters, and the currency rates of its non-USD lines into the options."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from accrual.adapters.partner_config import parameter_name, secret_name
from accrual.settings import Settings
from accrual_dev.simulator.server import Credentials


def configure_local_partners(
    settings: Settings,
    simulator_url: str,
    credentials: Credentials | None = None,
    *,
    usd_rates: Mapping[str, Decimal] | None = None,
) -> dict[str, str]:
    credentials = credentials or Credentials()
    secrets = settings.client("secretsmanager")
    ssm = settings.client("ssm")
    values = {
        "aliexpress": {"app_key": credentials.app_key, "app_secret": credentials.app_secret, "sign_method": "sha256"},
        "admitad": {"client_id": credentials.client_id, "client_secret": credentials.client_secret},
    }
    endpoints = {"aliexpress": f"{simulator_url}/sync", "admitad": simulator_url}
    options = json.dumps({"usd_rates": {currency: str(rate) for currency, rate in (usd_rates or {}).items()}})
    for partner, secret in values.items():
        name = secret_name(settings, partner)
        try:
            secrets.put_secret_value(SecretId=name, SecretString=json.dumps(secret))
        except secrets.exceptions.ResourceNotFoundException:
            secrets.create_secret(Name=name, SecretString=json.dumps(secret))
        ssm.put_parameter(
            Name=parameter_name(settings, partner, "endpoint"), Value=endpoints[partner], Type="String", Overwrite=True
        )
        ssm.put_parameter(
            Name=parameter_name(settings, partner, "options"), Value=options, Type="String", Overwrite=True
        )
    return endpoints
