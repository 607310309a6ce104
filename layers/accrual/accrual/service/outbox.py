"""The outbox relay: publishes the notifications the ledger wrote (in the same transaction as the money move) to SNS.

Two entry points share one publisher: the deployed relay reads the outbox table's stream; the scheduled cycle and
the CLI sweep the sparse `unpublished` index (what a failed relay left behind). Each event is published through
Powertools Idempotency keyed on its event id, so the two paths, a redelivered stream batch or a rerun cannot send it
twice; the one window left (SNS accepted the message, the process died before the idempotency record completed) is
why every message also carries `event_id` for subscribers to deduplicate on.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from accrual.adapters.ledger_tables import OUTBOX_SHARDS, OutboxRecord, bind_ledger_tables
from accrual.observability import logger
from accrual.settings import BOTO_CONFIG, Settings

IDEMPOTENCY_DAYS = 7


class OutboxRelay:
    def __init__(self, settings: Settings) -> None:
        if not settings.notifications_topic_arn:
            raise LookupError(f"stack {settings.stack!r} has no notifications topic (NotificationsTopicArn)")
        bind_ledger_tables(settings)
        self.settings = settings
        self._sns = settings.client("sns")
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto_config=BOTO_CONFIG)
        config = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=IDEMPOTENCY_DAYS * 86400)
        self._publish_once = idempotent_function(data_keyword_argument="event", persistence_store=persistence,
                                                 config=config)(self._publish)

    def _publish(self, event: dict[str, Any]) -> dict[str, str]:
        attributes = {name: {"DataType": "String", "StringValue": value}
                      for name, value in json.loads(event["attributes"]).items() if value}
        response = self._sns.publish(TopicArn=self.settings.notifications_topic_arn, Message=event["body"],
                                     MessageAttributes=attributes)
        return {"message_id": response["MessageId"]}

    def publish(self, event: dict[str, Any], *, now: datetime) -> str:
        """Publish one outbox event (a dict of the outbox item) and mark it published. Returns what happened."""
        try:
            result = self._publish_once(event={key: event[key] for key in ("event_id", "body", "attributes")})
        except IdempotencyAlreadyInProgressError:
            return "in_progress"
        try:
            OutboxRecord(event["event_id"]).update(
                actions=[OutboxRecord.published_at.set(now.isoformat()),
                         OutboxRecord.message_id.set(result["message_id"]),
                         OutboxRecord.unpublished_shard.remove()],
                condition=OutboxRecord.event_id.exists())
        except Exception:  # noqa: BLE001 - marking is bookkeeping: the idempotency record already stops a resend
            logger.warning("published event could not be marked", extra={"event_id": event["event_id"]})
        return "published"

    def publish_unpublished(self, *, now: datetime, page_size: int = 100) -> dict[str, int]:
        """Sweep the sparse `unpublished` index and publish everything on it, oldest first per shard."""
        counts: Counter[str] = Counter()
        for shard in range(OUTBOX_SHARDS):
            for key in OutboxRecord.unpublished.query(str(shard), page_size=page_size):
                item = OutboxRecord.get(key.event_id, consistent_read=True)
                if item.published_at:
                    continue
                counts[self.publish(item.attribute_values, now=now)] += 1
        return dict(counts)


def publish_stream_record(record, settings: Settings, *, now: datetime) -> str:
    """The deployed relay's record handler: a DynamoDB stream record of the outbox table (Powertools
    DynamoDBRecord). Only new, unpublished events are published; the MODIFY that marks one published is skipped."""
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or not image.get("unpublished_shard"):
        return "skipped"
    return _relay(settings).publish(image, now=now)


_relays: dict[Settings, OutboxRelay] = {}


def _relay(settings: Settings) -> OutboxRelay:
    if settings not in _relays:
        _relays[settings] = OutboxRelay(settings)
    return _relays[settings]
