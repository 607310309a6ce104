"""Pulls one partner on its schedule: every page is archived and handed on to the reconcile queue; the partner's
cursor moves past a page once the queue holds it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.adapters.idempotency import once
from accrual.composition import root
from accrual.observability import logger, metrics, tracer


class ScheduledPull(BaseModel):
    """The schedule's input (template.yaml): the partner, and the scheduled time as the pull's "now"."""

    partner: str
    scheduled_time: datetime | None = None
    execution_id: str | None = None
    attempt: int | None = None


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = parse(event=event, model=ScheduledPull)
    services = root()
    now = scheduled.scheduled_time or services.clock.now()
    logger.append_keys(partner=scheduled.partner, pull_now=now.isoformat(), attempt=scheduled.attempt)

    # a second delivery of the same tick must not pull (and hand on) the same pages again while the first runs
    @once(services.settings, key="[partner, now]", expires_after_seconds=86400, lambda_context=context)
    def pull(request: dict[str, str]) -> dict[str, Any]:
        summary = services.puller.pull_all(
            now=now, partners=[scheduled.partner], hand_on=lambda unit: services.work.hand_on([unit])
        )
        return summary.as_dict()

    # the answer as the idempotency record keeps it (a repeated tick gets the first one's)
    summary = pull(request={"partner": scheduled.partner, "now": now.isoformat()})
    result = summary["partners"][scheduled.partner]
    metrics.add_metric(name="PagesHandedOn", unit=MetricUnit.Count, value=result.get("handed_on", 0))
    metrics.add_metric(name="PartnersFailed", unit=MetricUnit.Count, value=len(summary["failed"]))
    if summary["failed"]:
        # the scheduler retries, then the dead-letter queue keeps the tick; the cursor stands after the last page
        raise RuntimeError(f"pull of {scheduled.partner} failed: {result['error']}")
    return summary
