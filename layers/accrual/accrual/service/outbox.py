"""The outbox relay: publishes the notifications the ledger wrote (in the same transaction as the money move) to SNS.

Publishing is at least once and marked after: an event is published, then marked published, so a run that dies
anywhere loses nothing and a rerun resends only what was not marked. The one window left (SNS accepted the message,
the process died before the mark) can repeat a message, which is why every message carries its `event_id` for
subscribers to deduplicate on; SNS offers no transaction to close it.

Two publishers share this code. The deployed relay reads the outbox table's stream, under Powertools Idempotency keyed
on the event id with the Lambda's context registered (a redelivered stream batch does not publish again, and a claim
left by a killed invocation expires with that invocation's timeout). The scheduled cycle and the CLI sweep the sparse
`unpublished` index for what the relay left behind; deployed, the sweep leaves events younger than a grace period to
the relay, so the two do not race.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from accrual.adapters.ledger_store import DynamoLedgerStore, LedgerStore, outbox_event, utc_text
from accrual.settings import BOTO_CONFIG, Settings

IDEMPOTENCY_DAYS = 7


class OutboxRelay:
    def __init__(self, settings: Settings, *, store: LedgerStore | None = None) -> None:
        if not settings.notifications_topic_arn:
            raise LookupError(f"stack {settings.stack!r} has no notifications topic (NotificationsTopicArn)")
        self.store = store or DynamoLedgerStore(settings)
        self.settings = settings
        self._sns = settings.client("sns")
        self._idempotency = IdempotencyConfig(
            event_key_jmespath="event_id", expires_after_seconds=IDEMPOTENCY_DAYS * 86400
        )
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto_config=BOTO_CONFIG)
        self._publish_once = idempotent_function(
            data_keyword_argument="event", persistence_store=persistence, config=self._idempotency
        )(self._publish)

    def _publish(self, event: dict[str, Any]) -> dict[str, str]:
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in json.loads(event["attributes"]).items()
            if value
        }
        response = self._sns.publish(
            TopicArn=self.settings.notifications_topic_arn, Message=event["body"], MessageAttributes=attributes
        )
        return {"message_id": response["MessageId"]}

    def publish(self, event: dict[str, Any], *, now: datetime, lambda_context=None) -> str:
        """Publish one outbox event (a dict of the outbox item), then mark it published. With a Lambda context the
        publish goes through Powertools Idempotency (the stream relay); without one it is the sweep's plain publish."""
        message = {key: event[key] for key in ("event_id", "body", "attributes")}
        if lambda_context is not None:
            self._idempotency.register_lambda_context(lambda_context)
            try:
                result = self._publish_once(event=message)
            except IdempotencyAlreadyInProgressError:
                return "in_progress"
        else:
            result = self._publish(message)
        self.store.mark_published(event["event_id"], now.isoformat(), result["message_id"])
        return "published"

    def publish_unpublished(
        self, *, now: datetime, grace: timedelta = timedelta(0), page_size: int = 100
    ) -> dict[str, int]:
        """Sweep the sparse `unpublished` index, oldest first per shard, leaving events younger than `grace`."""
        counts: Counter[str] = Counter()
        for message in self.store.unpublished(utc_text(now - grace), page_size):
            event = {"event_id": message.event_id, "body": message.body, "attributes": message.attributes}
            counts[self.publish(event, now=now)] += 1
        return dict(counts)


def publish_stream_record(record, settings: Settings, *, now: datetime, lambda_context=None) -> str:
    """The deployed relay's record handler: a DynamoDB stream record of the outbox table (Powertools
    DynamoDBRecord). Only new, unpublished events are published; the MODIFY that marks one published is skipped."""
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or not image.get("unpublished_shard"):
        return "skipped"
    return _relay(settings).publish(outbox_event(image), now=now, lambda_context=lambda_context)


_relays: dict[Settings, OutboxRelay] = {}


def _relay(settings: Settings) -> OutboxRelay:
    if settings not in _relays:
        _relays[settings] = OutboxRelay(settings)
    return _relays[settings]
