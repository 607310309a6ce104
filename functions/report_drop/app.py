"""A partner report file dropped under drops/ in the reports bucket is ingested as it lands."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.observability import logger, metrics, tracer
from accrual.service.drop import ingest_drop
from accrual.settings import load_settings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    settings = load_settings()
    # The event's time, not the delivery's, is "now": S3 redelivering the same event ingests it the same way.
    # Keys arrive URL-encoded (a space is "+").
    ingested = [ingest_drop(record.s3.bucket.name, unquote_plus(record.s3.get_object.key), settings=settings,
                            now=datetime.fromisoformat(record.event_time))
                for record in event.records]
    return {"ingested": ingested}
