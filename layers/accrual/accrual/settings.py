"""Where the resources are, and the one place the package reads its environment.

Deployed functions get every name from environment variables set by template.yaml; the operator CLI knows only
ACCRUAL_STACK and reads the rest from that CloudFormation stack's outputs, so the local stack (provisioned from the
same template) and the deployed one are found the same way.

The composition root: `load_settings()` reads the environment once per process (a Lambda cold start) and the objects
that are worth keeping between invocations — the Powertools secret and parameter providers, whose `max_age` cache
only helps when the same provider is asked again — are made once from that `Settings` and handed down with it.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from botocore.config import Config
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Environment variable names are the contract with template.yaml and the local stack: they are spelled out on each
# field (validation_alias) rather than derived from the field names.
_ENVIRONMENT = SettingsConfigDict(
    frozen=True, case_sensitive=True, env_ignore_empty=True, extra="ignore", populate_by_name=True
)


class BotoRetries(BaseSettings):
    """Standard retry mode with a generous attempt count: DynamoDB throttling and SNS/S3 5xx are retried with backoff
    by botocore itself."""

    model_config = _ENVIRONMENT

    mode: Literal["legacy", "standard", "adaptive"] = Field("standard", validation_alias="AWS_RETRY_MODE")
    max_attempts: int = Field(8, ge=1, validation_alias="AWS_MAX_ATTEMPTS")

    def config(self) -> Config:
        return Config(retries={"mode": self.mode, "max_attempts": self.max_attempts})


BOTO_CONFIG = BotoRetries().config()


class ObservabilitySettings(BaseSettings):
    """Names of the Logger, Tracer and Metrics (template.yaml's Globals set them; the defaults apply elsewhere)."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore", populate_by_name=True)

    service: str = Field("accrual", validation_alias="POWERTOOLS_SERVICE_NAME")
    namespace: str = Field("CashbackAccrual", validation_alias="POWERTOOLS_METRICS_NAMESPACE")
    lambda_function_name: str | None = Field(None, validation_alias="AWS_LAMBDA_FUNCTION_NAME")

    @property
    def in_lambda(self) -> bool:
        return self.lambda_function_name is not None


# field -> CloudFormation output key: names the operator's environment does not give come from the stack's outputs
_FROM_OUTPUTS = {
    "notifications_topic_arn": "NotificationsTopicArn",
    "reports_bucket": "ReportsBucketName",
    "local_notifications_queue_url": "LocalNotificationsQueueUrl",
    "partner_secrets_prefix": "PartnerSecretsPrefix",
    "partner_parameters_prefix": "PartnerParametersPrefix",
}
# field -> (environment variable, its name after the stack when neither the environment nor the outputs give it)
_TABLES = {
    "orders_table": ("ORDERS_TABLE", "{stack}-orders"),
    "balances_table": ("BALANCES_TABLE", "{stack}-balances"),
    "outbox_table": ("OUTBOX_TABLE", "{stack}-outbox"),
    "clicks_table": ("CLICKS_TABLE", "{stack}-clicks"),
    "control_table": ("CONTROL_TABLE", "{stack}-control"),
    "idempotency_table": ("IDEMPOTENCY_TABLE", "{stack}-idempotency"),
    "claims_table": ("CLAIMS_TABLE", "{stack}-claims"),
}
_PREFIXES = {"partner_secrets_prefix": "{stack}/partners/", "partner_parameters_prefix": "/{stack}/partners/"}


class Settings(BaseSettings):
    """Every name and knob the package needs, read from the environment (one field per variable)."""

    model_config = _ENVIRONMENT

    stack: str = Field("accrual", validation_alias="ACCRUAL_STACK")
    region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION"))
    # boto3's own endpoint variables: AWS_ENDPOINT_URL for every service, AWS_ENDPOINT_URL_<SERVICE> for one (read by
    # boto3 itself for the clients made by client()); PynamoDB is given DynamoDB's as a host (dynamodb_host)
    endpoint_url: str | None = Field(None, validation_alias="AWS_ENDPOINT_URL")
    dynamodb_endpoint_url: str | None = Field(None, validation_alias="AWS_ENDPOINT_URL_DYNAMODB")
    ignore_configured_endpoint_urls: bool = Field(False, validation_alias="AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
    orders_table: str = Field("", validation_alias="ORDERS_TABLE")
    balances_table: str = Field("", validation_alias="BALANCES_TABLE")
    outbox_table: str = Field("", validation_alias="OUTBOX_TABLE")
    clicks_table: str = Field("", validation_alias="CLICKS_TABLE")
    control_table: str = Field("", validation_alias="CONTROL_TABLE")
    idempotency_table: str = Field("", validation_alias="IDEMPOTENCY_TABLE")
    claims_table: str = Field("", validation_alias="CLAIMS_TABLE")
    notifications_topic_arn: str | None = Field(None, validation_alias="NOTIFICATIONS_TOPIC_ARN")
    reports_bucket: str | None = Field(None, validation_alias="REPORTS_BUCKET")
    local_notifications_queue_url: str | None = Field(None, validation_alias="LOCAL_NOTIFICATIONS_QUEUE_URL")
    partner_secrets_prefix: str = Field("", validation_alias="PARTNER_SECRETS_PREFIX")
    partner_parameters_prefix: str = Field("", validation_alias="PARTNER_PARAMETERS_PREFIX")
    # a partner's first pull backfills this far; later pulls re-read the overlap
    pull_initial_lookback_days: int = Field(30, ge=0, validation_alias="PULL_INITIAL_LOOKBACK_DAYS")
    # deployed, fresh outbox events belong to the stream relay for a while (template.yaml sets it); locally, none
    outbox_sweep_grace_seconds: int = Field(0, ge=0, validation_alias="OUTBOX_SWEEP_GRACE_SECONDS")
    # the fan-out: the work queue (else the stack's outputs) and the threads of one reconcile worker
    work_queue_url: str | None = Field(None, validation_alias="WORK_QUEUE_URL")
    work_dead_letter_queue_url: str | None = Field(None, validation_alias="WORK_DEAD_LETTER_QUEUE_URL")
    reconcile_workers: int = Field(16, ge=1, le=256, validation_alias="RECONCILE_WORKERS")
    # missing-cashback claims: matching tolerances and escalation (unset: the rules' defaults)
    claim_window_days: float | None = Field(None, ge=0, validation_alias="CLAIM_WINDOW_DAYS")
    claim_amount_tolerance: Decimal | None = Field(None, ge=0, le=1, validation_alias="CLAIM_AMOUNT_TOLERANCE")
    claim_amount_floor_usd: Decimal | None = Field(None, ge=0, validation_alias="CLAIM_AMOUNT_FLOOR_USD")
    claim_report_delay_days: float | None = Field(None, ge=0, validation_alias="CLAIM_REPORT_DELAY_DAYS")
    claim_escalate_after_days: float | None = Field(None, ge=0, validation_alias="CLAIM_ESCALATE_AFTER_DAYS")

    @model_validator(mode="before")
    @classmethod
    def _names_after_the_stack(cls, data: Any) -> Any:
        """A table that is not given is named after the stack, as template.yaml names it."""
        if not isinstance(data, dict):
            return data
        stack = data.get("stack") or data.get("ACCRUAL_STACK") or "accrual"
        for name, (variable, default) in _TABLES.items():
            if not data.get(name) and not data.get(variable):
                data[name] = default.format(stack=stack)
        return data

    @classmethod
    def from_env(cls) -> Settings:
        """The environment as it is now; the names it lacks come from the stack's outputs (the operator's case)."""
        given = cls()
        update: dict[str, str] = {}
        missing = [name for name in _FROM_OUTPUTS if not getattr(given, name)]
        if missing:
            outputs = stack_outputs(given.stack, given.region)
            update = {name: outputs[_FROM_OUTPUTS[name]] for name in missing if outputs.get(_FROM_OUTPUTS[name])}
        for name, default in _PREFIXES.items():
            if not (update.get(name) or getattr(given, name)):
                update[name] = default.format(stack=given.stack)
        return given.model_copy(update=update) if update else given

    @property
    def dynamodb_host(self) -> str | None:
        """The DynamoDB endpoint as boto3 resolves it (AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL; None is AWS
        itself), for PynamoDB, whose host would otherwise override the service's own variable."""
        if self.ignore_configured_endpoint_urls:
            return None
        return self.dynamodb_endpoint_url or self.endpoint_url

    def client(self, service: str) -> Any:
        """A boto3 client; boto3 picks its endpoint (AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL)."""
        return boto3.client(service, region_name=self.region, config=BOTO_CONFIG)

    # Made once per Settings (so once per cold start through load_settings) and reused: their max_age cache then
    # serves a credential or endpoint to every later invocation. Tied to this stack's clients rather than
    # Powertools' process-wide defaults, so a cached value of one stack is never served to another.
    @cached_property
    def secrets_provider(self) -> SecretsProvider:
        return SecretsProvider(boto3_client=self.client("secretsmanager"))

    @cached_property
    def ssm_provider(self) -> SSMProvider:
        return SSMProvider(boto3_client=self.client("ssm"))


# The variables that name a stack's resources (a deployed function gets each from template.yaml). They are read
# before the stack's outputs, so a local stack or a test clears them: a developer's shell must not redirect it.
RESOURCE_VARIABLES: tuple[str, ...] = tuple(
    str(field.validation_alias)
    for name, field in Settings.model_fields.items()
    if name.endswith(("_table", "_topic_arn", "_bucket", "_queue_url", "_prefix"))
)


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's Settings, read once (a Lambda cold start); handlers call this on every invocation."""
    return Settings.from_env()


@lru_cache(maxsize=8)
def stack_outputs(stack: str, region: str) -> dict[str, str]:
    """The stack's outputs, or {} when the stack does not exist (a bare endpoint in a unit test)."""
    cloudformation = boto3.client("cloudformation", region_name=region, config=BOTO_CONFIG)
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception:  # noqa: BLE001 - a missing stack is reported by the caller that needs an output
        return {}
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
