"""The port of the notifications' way out: the topic the outbox relay publishes to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# SNS PublishBatch's most entries a call
PUBLISH_BATCH = 10


class NotificationPublisher(Protocol):
    def publish(
        self, event_id: str, body: str, attributes: dict[str, str], *, lambda_context: Any = None
    ) -> str | None:
        """Publish one notification; returns the topic's message id. With a Lambda context (the stream relay) the
        publish is idempotent on `event_id`: None when another invocation is publishing the same event now."""

    def publish_batch(self, events: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Publish up to PUBLISH_BATCH notifications (each `event_id`, `body` and `attributes`) in one call, plainly
        (the sweep); returns the message id of each one the topic accepted, by event id: one left out was not."""
