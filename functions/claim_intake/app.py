"""Files the missing-cashback claims the site writes to the claim intake queue, one SQS message per claim.

The message body is a `ClaimRequest` (JSON: user_id, order_number, optional ordered_at, amount + currency, country);
Powertools parses each record into it and reports the records that failed (partial batch response), so only those
are retried and, after the queue's receive count, land in its dead-letter queue. Filing is idempotent (the claim's id
is the shopper and the order number), so a redelivered message returns the claim already filed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.composition import composition
from accrual.domain.claims import ClaimRequest
from accrual.observability import logger, metrics, tracer
from accrual.settings import load_settings


class ClaimMessage(SqsRecordModel):
    body: Json[ClaimRequest]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=ClaimMessage)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = composition(load_settings())
    service = services.claims
    now = services.clock.now()

    def file(record: ClaimMessage) -> str:
        claim, created = service.file(record.body, now=now)
        # ids and states only: the order number and the amounts are the shopper's data
        logger.info("claim filed", extra={"claim": claim.claim_id, "state": claim.state.value, "new": created})
        metrics.add_metric(name="ClaimsFiled" if created else "ClaimsRepeated", unit=MetricUnit.Count, value=1)
        return claim.state.value

    return process_partial_response(event=event, record_handler=file, processor=processor, context=context)
