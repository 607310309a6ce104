"""The one Logger, Tracer and Metrics of the package, made once and shared by the handlers and the service code.

Names come from POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (set in template.yaml's Globals); outside
Lambda the defaults below apply, the tracer is disabled and metrics are flushed only by a decorated handler.
"""
from __future__ import annotations

import logging
import os
import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "accrual")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CashbackAccrual")

# In Lambda, logs go to stdout (CloudWatch); on the operator's terminal stdout carries the commands' JSON, so logs
# go to stderr there.
IN_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
logger = Logger(service=SERVICE, logger_handler=None if IN_LAMBDA else logging.StreamHandler(sys.stderr))
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
