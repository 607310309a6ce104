"""The notifications topic on SNS (the port `accrual.ports.NotificationPublisher`).

The stream relay publishes under Powertools Idempotency keyed on the event id, with the Lambda's context registered
(a redelivered stream batch does not publish again, and a claim left by a killed invocation expires with that
invocation's timeout); the sweep publishes plainly, ten to a call (PublishBatch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from accrual.ports.notify import PUBLISH_BATCH
from accrual.settings import BOTO_CONFIG, Settings

IDEMPOTENCY_DAYS = 7
# SNS refuses a PublishBatch whose messages and attributes add up to more than 256 KiB
BATCH_PAYLOAD_BYTES = 256 * 1024


class SnsPublisher:
    def __init__(self, settings: Settings) -> None:
        if not settings.notifications_topic_arn:
            raise LookupError(f"stack {settings.stack!r} has no notifications topic (NotificationsTopicArn)")
        self.topic_arn = settings.notifications_topic_arn
        self._sns = settings.client("sns")
        self._idempotency = IdempotencyConfig(
            event_key_jmespath="event_id", expires_after_seconds=IDEMPOTENCY_DAYS * 86400
        )
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto_config=BOTO_CONFIG)
        self._publish_once = idempotent_function(
            data_keyword_argument="event", persistence_store=persistence, config=self._idempotency
        )(self._publish)

    def _publish(self, event: dict[str, Any]) -> dict[str, str]:
        response = self._sns.publish(
            TopicArn=self.topic_arn, Message=event["body"], MessageAttributes=_message_attributes(event)
        )
        return {"message_id": response["MessageId"]}

    def publish_batch(self, events: Sequence[dict[str, Any]]) -> dict[str, str]:
        if len(events) > PUBLISH_BATCH:
            raise ValueError(f"{len(events)} notifications: a batch holds at most {PUBLISH_BATCH}")
        published: dict[str, str] = {}
        for call in payload_calls(events):
            response = self._sns.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[
                    {"Id": str(number), "Message": event["body"], "MessageAttributes": _message_attributes(event)}
                    for number, event in enumerate(call)
                ],
            )
            published.update(
                (call[int(entry["Id"])]["event_id"], entry["MessageId"]) for entry in response.get("Successful", [])
            )
        return published

    def publish(
        self, event_id: str, body: str, attributes: dict[str, str], *, lambda_context: Any = None
    ) -> str | None:
        event = {"event_id": event_id, "body": body, "attributes": attributes}
        if lambda_context is None:
            return self._publish(event)["message_id"]
        self._idempotency.register_lambda_context(lambda_context)
        try:
            return self._publish_once(event=event)["message_id"]
        except IdempotencyAlreadyInProgressError:
            return None


def _message_attributes(event: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The notification's attributes (for subscribers' filter policies), the empty ones left out."""
    return {name: {"DataType": "String", "StringValue": value} for name, value in event["attributes"].items() if value}


def payload_size(event: dict[str, Any]) -> int:
    """What SNS counts of a message towards a batch's payload: its body and its attributes' names, types and values."""
    attributes = _message_attributes(event)
    return len(event["body"].encode()) + sum(
        len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )


def payload_calls(events: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The batch split, in order, into as few calls as SNS's payload limit allows (a message alone is one call)."""
    calls: list[list[dict[str, Any]]] = []
    size = 0
    for event in events:
        event_size = payload_size(event)
        if not calls or size + event_size > BATCH_PAYLOAD_BYTES:
            calls.append([])
            size = 0
        calls[-1].append(event)
        size += event_size
    return calls
