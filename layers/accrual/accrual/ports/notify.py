"""The port of the notifications' way out: the topic the outbox relay publishes to."""

from __future__ import annotations

from typing import Any, Protocol


class NotificationPublisher(Protocol):
    def publish(
        self, event_id: str, body: str, attributes: dict[str, str], *, lambda_context: Any = None
    ) -> str | None:
        """Publish one notification; returns the topic's message id. With a Lambda context (the stream relay) the
        publish is idempotent on `event_id`: None when another invocation is publishing the same event now."""
