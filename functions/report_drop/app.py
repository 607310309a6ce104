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
from accrual.observability import logger, metrics, tracer
from accrual.service.work import drop_units, hand_on
from accrual.settings import load_settings


@logger.inject_lambda_context(correlation_id_path="Records[0].responseElements.\"x-amz-request-id\"",
                              clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
from accrual.service.work import drop_units, hand_on
from accrual.settings import load_settings
