"""Publishes new outbox records from the outbox table's stream (a shared record holds the several notifications of one
transaction); a record that fails is reported alone (partial batch response) so the stream retries just that one, and
the idempotent publish sends none of its notifications twice."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.adapters.ledger_store import stream_outbox_events
from accrual.composition import root
from accrual.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = root()
    relay = services.relay
    now = services.clock.now()

    def publish(record: DynamoDBRecord) -> str:
        events = stream_outbox_events(record)
        if not events:
            return "skipped"
        return relay.publish_record(events, now=now, lambda_context=context)

    return process_partial_response(event=event, record_handler=publish, processor=processor, context=context)
