"""The outbox relay: publishes the notifications the ledger wrote (in the same transaction as the money move).

Publishing is at least once and marked after: an event is published, then marked published, so a run that dies
anywhere loses nothing and a rerun resends only what was not marked. The one window left (the topic accepted the
message, the process died before the mark) can repeat a message (for the sweep, the messages of one batch), which is
why every message carries its `event_id` for subscribers to deduplicate on; the topic offers no transaction to close
it.

Two publishers share this code. The deployed relay reads the outbox table's stream and publishes idempotently on the
event id (the publisher's side, with the Lambda's context). The scheduled cycle and the CLI sweep the sparse
`unpublished` index for what the relay left behind; deployed, the sweep leaves events younger than a grace period to
the relay, so the two do not race. The sweep publishes ten events a call (a batch), then marks those the topic
accepted; one it refused stays unpublished for the next sweep and is counted `failed`.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from itertools import batched
from typing import Any

from accrual.ports import LedgerStore, NotificationPublisher, utc_text
from accrual.ports.notify import PUBLISH_BATCH


class OutboxRelay:
    def __init__(self, store: LedgerStore, publisher: NotificationPublisher) -> None:
        self.store = store
        self.publisher = publisher

    def publish(self, event: dict[str, Any], *, now: datetime, lambda_context: Any = None) -> str:
        """Publish one outbox event (the outbox item's `event_id`, `body` and `attributes` as JSON), then mark it
        published. With a Lambda context the publish is idempotent (the stream relay)."""
        attributes = json.loads(event["attributes"])
        message_id = self.publisher.publish(event["event_id"], event["body"], attributes, lambda_context=lambda_context)
        if message_id is None:
            return "in_progress"
        self.store.mark_published(event["event_id"], now.isoformat(), message_id)
        return "published"

    def publish_unpublished(
        self, *, now: datetime, grace: timedelta = timedelta(0), page_size: int = 100
    ) -> dict[str, int]:
        """Sweep the sparse `unpublished` index, oldest first per shard, leaving events younger than `grace`."""
        counts: Counter[str] = Counter()
        for batch in batched(self.store.unpublished(utc_text(now - grace), page_size), PUBLISH_BATCH):
            events = [
                {"event_id": message.event_id, "body": message.body, "attributes": json.loads(message.attributes)}
                for message in batch
            ]
            published = self.publisher.publish_batch(events)
            for event in events:
                message_id = published.get(event["event_id"])
                if message_id is None:
                    counts["failed"] += 1
                    continue
                self.store.mark_published(event["event_id"], now.isoformat(), message_id)
                counts["published"] += 1
        return dict(counts)
