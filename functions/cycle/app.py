"""The scheduled accrual cycle: one EventBridge Scheduler invocation runs one whole cycle as of its scheduled time."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools.utilities.parser import BaseModel, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.observability import logger, metrics, tracer
from accrual.service.cycle import run_cycle
from accrual.settings import Settings


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
    return run_cycle(Settings.from_env(), now)
