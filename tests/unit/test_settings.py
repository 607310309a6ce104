"""Settings: one model read from the environment (the names template.yaml and the local stack set), read once per
process, with the parameter providers made once and reused."""

from __future__ import annotations

import pytest

from accrual import settings as settings_module
from accrual.adapters.partner_config import providers
from accrual.settings import RESOURCE_VARIABLES, BotoRetries, ObservabilitySettings, Settings, load_settings

VARIABLES = (
    "ACCRUAL_STACK",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    *RESOURCE_VARIABLES,
    "PULL_INITIAL_LOOKBACK_DAYS",
    "OUTBOX_SWEEP_GRACE_SECONDS",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)
# What template.yaml gives a deployed function: every output name, so the stack is never described.
DEPLOYED = {
    "ACCRUAL_STACK": "prod",
    "AWS_REGION": "eu-west-1",
    "ORDERS_TABLE": "prod-orders-x1",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:prod-notifications",
    "REPORTS_BUCKET": "prod-reports",
    "LOCAL_NOTIFICATIONS_QUEUE_URL": "https://queue",
    "PARTNER_SECRETS_PREFIX": "prod/partners/",
    "PARTNER_PARAMETERS_PREFIX": "/prod/partners/",
    "PULL_INITIAL_LOOKBACK_DAYS": "7",
    "OUTBOX_SWEEP_GRACE_SECONDS": "600",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch):
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    load_settings.cache_clear()
    settings_module.stack_outputs.cache_clear()
    yield
    load_settings.cache_clear()


def described_stacks(monkeypatch: pytest.MonkeyPatch, outputs: dict[str, str]) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def stack_outputs(stack: str, region: str) -> dict[str, str]:
        calls.append((stack, region))
        return outputs

    monkeypatch.setattr(settings_module, "stack_outputs", stack_outputs)
    return calls


def test_a_deployed_function_reads_every_name_from_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in DEPLOYED.items():
        monkeypatch.setenv(variable, value)
    calls = described_stacks(monkeypatch, {})
    settings = Settings.from_env()
    assert calls == []
    assert (settings.stack, settings.region, settings.orders_table, settings.balances_table) == (
        "prod",
        "eu-west-1",
        "prod-orders-x1",
        "prod-balances",
    )
    assert settings.notifications_topic_arn == DEPLOYED["NOTIFICATIONS_TOPIC_ARN"]
    assert (settings.partner_secrets_prefix, settings.partner_parameters_prefix) == (
        "prod/partners/",
        "/prod/partners/",
    )
    assert (settings.pull_initial_lookback_days, settings.outbox_sweep_grace_seconds) == (7, 600)


def test_the_operator_names_only_the_stack_and_the_rest_comes_from_its_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCRUAL_STACK", "local")
    calls = described_stacks(monkeypatch, {"NotificationsTopicArn": "arn:topic", "ReportsBucketName": "bucket"})
    settings = Settings.from_env()
    assert calls == [("local", "us-east-1")]
    assert (settings.notifications_topic_arn, settings.reports_bucket) == ("arn:topic", "bucket")
    assert settings.local_notifications_queue_url is None
    assert (settings.partner_secrets_prefix, settings.partner_parameters_prefix) == (
        "local/partners/",
        "/local/partners/",
    )
    assert (settings.orders_table, settings.idempotency_table) == ("local-orders", "local-idempotency")
    assert (settings.pull_initial_lookback_days, settings.outbox_sweep_grace_seconds) == (30, 0)


def test_aws_default_region_wins_over_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    described_stacks(monkeypatch, {})
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert Settings.from_env().region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert Settings.from_env().region == "ap-south-1"


def test_a_bad_number_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    described_stacks(monkeypatch, {})
    monkeypatch.setenv("PULL_INITIAL_LOOKBACK_DAYS", "-3")
    with pytest.raises(ValueError, match="PULL_INITIAL_LOOKBACK_DAYS"):
        Settings.from_env()


def test_settings_are_read_once_and_the_providers_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = described_stacks(monkeypatch, {})
    monkeypatch.setenv("ACCRUAL_STACK", "first")
    first = load_settings()
    monkeypatch.setenv("ACCRUAL_STACK", "second")
    assert load_settings() is first and first.stack == "first" and len(calls) == 1
    assert providers(load_settings()) == providers(first)
    secrets, ssm = providers(first)
    assert providers(load_settings())[0] is secrets and providers(load_settings())[1] is ssm
    assert Settings.from_env().stack == "second"  # the explicit read still sees the environment as it is now


def test_settings_are_frozen_and_usable_as_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    described_stacks(monkeypatch, {})
    settings = Settings.from_env()
    with pytest.raises(ValueError):
        settings.stack = "other"  # type: ignore[misc]
    assert {settings: 1}[Settings.from_env()] == 1


def test_retries_and_observability_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BotoRetries().config().retries == {"mode": "standard", "max_attempts": 8}
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    assert BotoRetries().config().retries == {"mode": "adaptive", "max_attempts": 3}
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert not ObservabilitySettings().in_lambda
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "accrual-cycle")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "svc")
    names = ObservabilitySettings()
    assert names.in_lambda and names.service == "svc" and names.namespace == "CashbackAccrual"


def test_every_resource_the_template_hands_a_function_is_a_resource_variable_a_local_run_clears():
    from accrual_dev.local.provision import default_template_path, load_template

    template = load_template(default_template_path())
    given = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            given |= set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    resources = {name for name in given if name.endswith(("_TABLE", "_ARN", "_BUCKET", "_QUEUE_URL", "_PREFIX"))}
    assert resources and resources <= set(RESOURCE_VARIABLES)
    assert {"CLAIMS_TABLE", "WORK_QUEUE_URL", "WORK_DEAD_LETTER_QUEUE_URL"} <= set(RESOURCE_VARIABLES)
