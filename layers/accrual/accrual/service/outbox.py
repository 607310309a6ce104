"""The outbox relay: publishes the notifications the ledger wrote (in the same transaction as the money move).

Publishing is at least once and the event leaves the outbox after: an event is published, then deleted, so a run
that dies anywhere loses nothing and a rerun resends only what is still there. The one window left (the topic accepted
the message, the process died before the delete) can repeat a message (for the sweep, the messages of one batch), which is
why every message carries its `event_id` for subscribers to deduplicate on; the topic offers no transaction to close
it.

Two publishers share this code. The deployed relay reads the outbox table's stream and publishes idempotently on the
event id (the publisher's side, with the Lambda's context). The scheduled cycle and the CLI sweep the outbox table
itself for what the relay left behind (it holds only what is still to publish); deployed, the sweep leaves events
younger than a grace period to the relay, so the two do not race. The sweep publishes ten events a call (a batch),
then deletes those the topic accepted; one it refused stays for the next sweep and is counted `failed`.

The store may keep a transaction's notifications in one shared record (`OutboxMessage.holder`): the sweep publishes a
shared record's messages in one batch, so that the record leaves the outbox once, and the stream relay publishes each
of them before it removes the record.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from accrual.ports import LedgerStore, NotificationPublisher, OutboxMessage, utc_text
from accrual.ports.notify import PUBLISH_BATCH


class OutboxRelay:
    def __init__(self, store: LedgerStore, publisher: NotificationPublisher) -> None:
        self.store = store
        self.publisher = publisher

    def publish(self, event: dict[str, Any], *, now: datetime, lambda_context: Any = None) -> str:
        """Publish one outbox event (the outbox item's `event_id`, `body` and `attributes` as JSON), then delete it
        from the outbox. With a Lambda context the publish is idempotent (the stream relay)."""
        return self.publish_record([event], now=now, lambda_context=lambda_context)

    def publish_record(self, events: Sequence[dict[str, Any]], *, now: datetime, lambda_context: Any = None) -> str:
        """Publish the events of one outbox record (a shared record holds several, each naming it as `holder`),
        then delete the record. Each publish is idempotent with a Lambda context, so a record retried after a
        failure part way sends none of its events twice. An event another invocation is publishing leaves the
        record in the outbox (`in_progress`)."""
        message_id = None
        for event in events:
            attributes = json.loads(event["attributes"])
            body = event["body"]
            message_id = self.publisher.publish(event["event_id"], body, attributes, lambda_context=lambda_context)
            if message_id is None:
                return "in_progress"
        if message_id is None:
            return "skipped"
        self.store.remove_published(events[0].get("holder") or events[0]["event_id"], now.isoformat(), message_id)
        return "published"

    def publish_unpublished(
        self, *, now: datetime, grace: timedelta = timedelta(0), page_size: int = 1000, threads: int = 1
    ) -> dict[str, int]:
        """Sweep the outbox, leaving events younger than `grace`. With `threads` > 1, that many batches are published
        and deleted at a time while the outbox is read on."""
        counts: Counter[str] = Counter()
        batches = _batches(self.store.unpublished(utc_text(now - grace), page_size))
        if threads == 1:
            for batch in batches:
                counts.update(self._publish_batch(batch, now))
            return dict(counts)
        with ThreadPoolExecutor(threads, thread_name_prefix="outbox-sweep") as pool:
            running: set[Future[Counter[str]]] = set()
            for batch in batches:
                if len(running) >= 2 * threads:  # read no further ahead than the publishers can use
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    _add(counts, done)
                running.add(pool.submit(self._publish_batch, batch, now))
            _add(counts, running)
        return dict(counts)

    def _publish_batch(self, batch: Iterable[OutboxMessage], now: datetime) -> Counter[str]:
        """Publish a batch in one call, then delete the events the topic accepted."""
        messages = list(batch)
        events = [
            {"event_id": message.event_id, "body": message.body, "attributes": json.loads(message.attributes)}
            for message in messages
        ]
        published = self.publisher.publish_batch(events)
        accepted = [(message, published[message.event_id]) for message in messages if message.event_id in published]
        if accepted:
            refused = [message for message in messages if message.event_id not in published]
            self.store.remove_batch_published(accepted, now.isoformat(), refused)
        return +Counter(published=len(accepted), failed=len(messages) - len(accepted))  # unary +: the zeros dropped


def _batches(messages: Iterable[OutboxMessage]) -> Iterator[list[OutboxMessage]]:
    """Publish batches of up to PUBLISH_BATCH messages, each shared record's messages in one batch (the store yields
    them one after another, and a shared record holds at most a batch of them), so that the record leaves the outbox
    in one removal, once all of it is published."""
    batch: list[OutboxMessage] = []
    for record in _records(messages):
        if batch and len(batch) + len(record) > PUBLISH_BATCH:
            yield batch
            batch = []
        batch += record
    if batch:
        yield batch


def _records(messages: Iterable[OutboxMessage]) -> Iterator[list[OutboxMessage]]:
    """The messages grouped by the outbox record that holds them: a shared record's together, any other alone."""
    record: list[OutboxMessage] = []
    for message in messages:
        if record and (message.holder is None or message.holder != record[0].holder):
            yield record
            record = []
        record.append(message)
    if record:
        yield record


def _add(counts: Counter[str], finished: Iterable[Future[Counter[str]]]) -> None:
    for future in finished:
        counts.update(future.result())
