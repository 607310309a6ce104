"""Powertools Idempotency for the scheduled and S3-triggered jobs: a repeated delivery of the same schedule tick or
the same S3 event returns the first answer instead of repeating the work (or waits while the first is in progress)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from accrual.settings import BOTO_CONFIG, Settings


def once(
    settings: Settings, *, key: str, expires_after_seconds: int, lambda_context: Any = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator: the function, called with `request=<dict>`, runs once per value of `key` (a JMESPath into the
    request) until the record expires; a failure deletes the record, so a retry runs it again."""
    config = IdempotencyConfig(
        event_key_jmespath=key, expires_after_seconds=expires_after_seconds, raise_on_no_idempotency_key=True
    )
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)  # an invocation that timed out stops counting as in progress
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto_config=BOTO_CONFIG)
    return idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
