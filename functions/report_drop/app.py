"""A partner report file dropped under drops/ in the reports bucket: split into page-sized units of work and handed
on to the reconcile queue, on the same path as the pulled pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext

from accrual.adapters.idempotency import once
from accrual.composition import root
from accrual.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path='Records[0].responseElements."x-amz-request-id"', clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    dropped = parse(event=event, model=S3Model)
    services = root()

    # S3 may deliver an event twice: the same object version (sequencer) is split and handed on once
    @once(services.settings, key="[bucket, key, sequencer]", expires_after_seconds=7 * 86400, lambda_context=context)
    def split(request: dict[str, str]) -> dict[str, Any]:
        # The event's time, not the delivery's, is "now"; keys arrive URL-encoded (a space is "+").
        units = services.work.drop_units(
            request["bucket"],
            request["key"],
            now=datetime.fromisoformat(request["event_time"]),
            run_id=request["sequencer"],
        )
        services.work.hand_on(units)
        return {"key": request["key"], "units": len(units)}

    handed = [
        split(
            request={
                "bucket": record.s3.bucket.name,
                "key": unquote_plus(record.s3.object.key),
                "sequencer": record.s3.object.sequencer or record.s3.object.eTag or "",
                "event_time": record.eventTime.isoformat(),
            }
        )
        for record in dropped.Records
    ]
    metrics.add_metric(name="DropUnitsHandedOn", unit=MetricUnit.Count, value=sum(item["units"] for item in handed))
    return {"handed_on": handed}
