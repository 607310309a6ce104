"""Where the resources are. Deployed functions get every name from environment variables set by template.yaml; the
operator CLI knows only ACCRUAL_STACK and reads the rest from that CloudFormation stack's outputs, so the local stack
(provisioned from the same template) and the deployed one are found the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import boto3
from botocore.config import Config

# Standard retry mode with a generous attempt count: DynamoDB throttling and SNS/S3 5xx are retried with backoff
# by botocore itself (AWS_RETRY_MODE / AWS_MAX_ATTEMPTS in the environment win over this).
BOTO_CONFIG = Config(retries={"mode": os.environ.get("AWS_RETRY_MODE", "standard"),
                              "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "8"))})

# environment variable -> CloudFormation output key
_OUTPUTS = {
    "NOTIFICATIONS_TOPIC_ARN": "NotificationsTopicArn",
    "REPORTS_BUCKET": "ReportsBucketName",
    "LOCAL_NOTIFICATIONS_QUEUE_URL": "LocalNotificationsQueueUrl",
    "PARTNER_SECRETS_PREFIX": "PartnerSecretsPrefix",
    "PARTNER_PARAMETERS_PREFIX": "PartnerParametersPrefix",
}


@dataclass(frozen=True)
class Settings:
    stack: str
    region: str
    endpoint_url: str | None
    orders_table: str
    balances_table: str
    outbox_table: str
    clicks_table: str
    control_table: str
    idempotency_table: str
    notifications_topic_arn: str | None
    reports_bucket: str | None
    local_notifications_queue_url: str | None
    partner_secrets_prefix: str
    partner_parameters_prefix: str

    @classmethod
    def from_env(cls) -> "Settings":
        stack = os.environ.get("ACCRUAL_STACK", "accrual")
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
        outputs: dict[str, str] = {}
        if any(env not in os.environ for env in _OUTPUTS):
            outputs = stack_outputs(stack, region)

        def pick(env: str, default: str | None = None) -> str | None:
            return os.environ.get(env) or outputs.get(_OUTPUTS.get(env, ""), default)

        return cls(
            stack=stack,
            region=region,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
            orders_table=os.environ.get("ORDERS_TABLE", f"{stack}-orders"),
            balances_table=os.environ.get("BALANCES_TABLE", f"{stack}-balances"),
            outbox_table=os.environ.get("OUTBOX_TABLE", f"{stack}-outbox"),
            clicks_table=os.environ.get("CLICKS_TABLE", f"{stack}-clicks"),
            control_table=os.environ.get("CONTROL_TABLE", f"{stack}-control"),
            idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", f"{stack}-idempotency"),
            notifications_topic_arn=pick("NOTIFICATIONS_TOPIC_ARN"),
            reports_bucket=pick("REPORTS_BUCKET"),
            local_notifications_queue_url=pick("LOCAL_NOTIFICATIONS_QUEUE_URL"),
            partner_secrets_prefix=pick("PARTNER_SECRETS_PREFIX", f"{stack}/partners/") or "",
            partner_parameters_prefix=pick("PARTNER_PARAMETERS_PREFIX", f"/{stack}/partners/") or "",
        )

    def client(self, service: str):
        return boto3.client(service, region_name=self.region, config=BOTO_CONFIG)


@lru_cache(maxsize=8)
def stack_outputs(stack: str, region: str) -> dict[str, str]:
    """The stack's outputs, or {} when the stack does not exist (a bare endpoint in a unit test)."""
    cloudformation = boto3.client("cloudformation", region_name=region, config=BOTO_CONFIG)
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception:  # noqa: BLE001 - a missing stack is reported by the caller that needs an output
        return {}
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
