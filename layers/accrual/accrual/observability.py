"""The one Logger, Tracer and Metrics of the package, made once and shared by the handlers and the service code.

Names come from POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (set in template.yaml's Globals); outside
Lambda the defaults below apply, the tracer is disabled and metrics are flushed only by a decorated handler.
"""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager, contextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from accrual.settings import ObservabilitySettings

_NAMES = ObservabilitySettings()
SERVICE = _NAMES.service
NAMESPACE = _NAMES.namespace

# In Lambda, logs go to stdout (CloudWatch); on the operator's terminal stdout carries the commands' JSON, so logs
# go to stderr there.
IN_LAMBDA = _NAMES.in_lambda
logger = Logger(service=SERVICE, logger_handler=None if IN_LAMBDA else logging.StreamHandler(sys.stderr))


class _UntracedSegment(BaseSegment):
    def close(self, end_time=None):
        pass

    def add_subsegment(self, subsegment):
        pass

    def remove_subsegment(self, subsegment):
        pass

    def put_annotation(self, key, value):
        pass

    def put_metadata(self, key, value, namespace="default"):
        pass

    def add_exception(self, exception, stack, remote=False):
        pass


class _Untraced(BaseProvider):
    """The tracer's provider outside Lambda (the CLI, tests, benches), where Powertools disables tracing anyway.

    Powertools' default provider is the X-Ray recorder, which it builds even when tracing is disabled: importing it
    took 0.4-0.6 s of every CLI command here, for segments nobody sends. In Lambda the default provider is kept."""

    @contextmanager
    def in_subsegment(self, name=None, **kwargs):
        yield _UntracedSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name=None, **kwargs):
        yield _UntracedSegment()

    def put_annotation(self, key, value):
        pass

    def put_metadata(self, key, value, namespace="default"):
        pass

    def patch(self, modules):
        pass

    def patch_all(self):
        pass


tracer = Tracer(service=SERVICE, provider=None if IN_LAMBDA else _Untraced())
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
