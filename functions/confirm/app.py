"""The confirmation schedule: one unit of work per shard of the due index goes to the reconcile queue (the workers
settle the shards in parallel), then the outbox events the stream relay left behind are published."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.adapters.idempotency import once
from accrual.composition import root
from accrual.observability import logger, metrics, tracer
from accrual.service.work import confirm_units


class ScheduledConfirm(BaseModel):
    scheduled_time: datetime | None = None
    execution_id: str | None = None
    attempt: int | None = None


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = parse(event=event, model=ScheduledConfirm)
    services = root()
    now = scheduled.scheduled_time or services.clock.now()

    @once(services.settings, key="now", expires_after_seconds=86400, lambda_context=context)
    def confirm(request: dict[str, str]) -> dict[str, Any]:
        units = confirm_units(now=now, run_id=scheduled.execution_id)
        handed = services.work.hand_on(units)
        # fresh events belong to the stream relay for a while (OUTBOX_SWEEP_GRACE_SECONDS); older ones are swept
        swept = services.relay.publish_unpublished(now=now, grace=services.outbox_grace)
        return {"now": now.isoformat(), "shards_handed_on": handed, "notify": swept}

    result = confirm(request={"now": now.isoformat()})
    metrics.add_metric(name="ConfirmShardsHandedOn", unit=MetricUnit.Count, value=result["shards_handed_on"])
    metrics.add_metric(name="NotificationsSwept", unit=MetricUnit.Count, value=result["notify"].get("published", 0))
    return result
