"""The one Logger, Tracer and Metrics of the package, made once and shared by the handlers and the service code.

Names come from POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (set in template.yaml's Globals); outside
Lambda the defaults below apply, the tracer is disabled and metrics are flushed only by a decorated handler.
"""

from __future__ import annotations

import logging
import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

from accrual.settings import ObservabilitySettings

_NAMES = ObservabilitySettings()
SERVICE = _NAMES.service
NAMESPACE = _NAMES.namespace

# In Lambda, logs go to stdout (CloudWatch); on the operator's terminal stdout carries the commands' JSON, so logs
# go to stderr there.
IN_LAMBDA = _NAMES.in_lambda
logger = Logger(service=SERVICE, logger_handler=None if IN_LAMBDA else logging.StreamHandler(sys.stderr))
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
