"""The scheduled accrual cycle: one EventBridge Scheduler invocation runs one whole cycle as of its scheduled time."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import BaseModel, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.observability import logger, metrics, tracer
from accrual.service.cycle import run_cycle
from accrual.settings import load_settings


class ScheduledCycle(BaseModel):
    """The schedule's input (template.yaml): the scheduled time is the cycle's "now", so a retry decides the same."""

    scheduled_time: datetime | None = None
    execution_id: str | None = None
    attempt: int | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = parse(event=event, model=ScheduledCycle)
    now = scheduled.scheduled_time or datetime.now(timezone.utc)
    logger.append_keys(execution_id=scheduled.execution_id, attempt=scheduled.attempt, cycle_now=now.isoformat())
    summary = run_cycle(load_settings(), now)
    record_cycle_metrics(summary)
    return summary


def record_cycle_metrics(summary: dict[str, Any]) -> None:
    """The cycle's counts as CloudWatch metrics (EMF): lines in and quarantined, money moves, notifications, and the
    orders that became pending later than the 5 days the service promises (alarmed in template.yaml)."""
    pulled, confirmed = summary["pull"], summary["confirm"]
    reconciled: dict[str, int] = {}
    for partner in pulled.get("partners", {}).values():
        for name, value in partner.get("reconciled", {}).items():
            reconciled[name] = reconciled.get(name, 0) + value
    figures = {
        "LinesRead": pulled["read"], "LinesAccepted": pulled["accepted"], "LinesQuarantined": pulled["quarantined"],
        "PartnersFailed": len(pulled.get("failed", [])),
        "PendingLaterThanPromised": reconciled.get("pending_later_than_promised", 0)
        + confirmed.get("pending_later_than_promised", 0),
        "OrdersFailed": reconciled.get("orders_failed", 0) + confirmed.get("orders_failed", 0),
        "NotificationsPublished": summary["notify"].get("published", 0),
    }
    for move in ("pending", "adjust", "post", "void", "reverse"):
        figures[f"Moves{move.title()}"] = reconciled.get(f"moves_{move}", 0) + confirmed.get(f"moves_{move}", 0)
    for name, value in figures.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
