"""The reconcile worker: a batch of units from the reconcile queue (archived pages, due-index shards), each done with
a bounded pool of threads. A unit that fails is reported alone (partial batch response): SQS delivers it again and,
after a few receives, moves it to the dead-letter queue; its reason is kept for `accrual dlq list`. What each unit
did (or why it failed) is logged under its run, for the command that handed the run on."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.composition import root
from accrual.observability import logger, metrics, tracer
from accrual.service.work import WorkUnit


class WorkRecord(SqsRecordModel):
    body: Json[WorkUnit]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=WorkRecord)

# The metrics of a unit's counts (the dashboard in template.yaml shows them; a test holds its names to these).
LINE_METRICS = {
    "read": "LinesRead",
    "accepted": "LinesAccepted",
    "quarantined": "LinesQuarantined",
    "pages_quarantined": "PagesQuarantined",  # a page of an unexpected shape (alarmed)
}
COUNT_METRICS = {
    "moves_pending": "CashbackMovesPending",
    "moves_post": "CashbackMovesConfirmed",
    "moves_void": "CashbackMovesVoided",
    "moves_reverse": "CashbackMovesReversed",
    "orders_negative_margin": "NegativeMarginOrders",
    "claims_resolved": "ClaimsResolved",
    "claims_escalated": "ClaimsEscalated",
}
CENTS_METRICS = {"cashback_pending_cents": "CashbackPendingUSD", "cashback_confirmed_cents": "CashbackConfirmedUSD"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = root()
    workers = services.settings.reconcile_workers

    def work(record: WorkRecord) -> dict[str, Any]:
        unit = record.body
        logger.set_correlation_id(unit.run_id)  # the pull or schedule run that handed the unit on
        receives = int(record.attributes.ApproximateReceiveCount)
        try:
            done = services.work.run_unit(unit, workers=workers)
        except Exception as error:
            logger.exception("unit failed", extra={"unit": unit.label(), "receive": receives})
            services.work.record_failure(record.messageId, unit, f"{type(error).__name__}: {error}", receives=receives)
            metrics.add_metric(name="UnitsFailed", unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name="UnitsDone", unit=MetricUnit.Count, value=1)
        settled = done.page.reconciled if done.page else done.counts
        # orders that became pending later than the 5 days the service promises (alarmed in template.yaml)
        metrics.add_metric(
            name="PendingLaterThanPromised", unit=MetricUnit.Count, value=settled.pending_later_than_promised
        )
        for name, metric in COUNT_METRICS.items():
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=getattr(settled, name))
        for name, metric in CENTS_METRICS.items():
            metrics.add_metric(name=metric, unit=MetricUnit.NoUnit, value=getattr(settled, name) / 100)
        if settled.moves_post:  # the average lag of the orders this unit confirmed
            lag_hours = settled.confirmation_lag_minutes / settled.moves_post / 60
            metrics.add_metric(name="ConfirmationLagHours", unit=MetricUnit.NoUnit, value=lag_hours)
        result = done.as_dict()
        if done.page is not None:
            for name, metric in LINE_METRICS.items():
                metrics.add_metric(name=metric, unit=MetricUnit.Count, value=result.get(name, 0))
                partner_metric(metric, result.get(name, 0), unit.partner or "unknown")
        # what the unit did, under its run: the command that handed the run's units on reads it there
        services.work.finish(unit, done, receives=receives)
        return {key: value for key, value in result.items() if key != "quarantine_reasons"}

    return process_partial_response(event=event, record_handler=work, processor=processor, context=context)


def partner_metric(name: str, value: float, partner: str) -> None:
    """The same count again by partner (its own EMF record: the handler's metrics share one set of dimensions)."""
    with single_metric(
        name=name, unit=MetricUnit.Count, value=value, namespace=metrics.namespace, default_dimensions={}
    ) as metric:
        metric.add_dimension(name="service", value=metrics.service or "accrual")
        metric.add_dimension(name="partner", value=partner)
