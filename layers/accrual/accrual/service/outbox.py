"""The outbox relay: publishes the notifications the ledger wrote (in the same transaction as the money move).

Publishing is at least once and the event leaves the outbox after: an event is published, then deleted, so a run
that dies anywhere loses nothing and a rerun resends only what is still there. The one window left (the topic accepted
the message, the process died before the delete) can repeat a message (for the sweep, the messages of the records
it had published but not yet removed: at most REMOVE_BATCH records and the batches in flight), which is why every message carries its `event_id` for subscribers to deduplicate on; the topic offers no transaction to close
it.

Two publishers share this code. The deployed relay reads the outbox table's stream and publishes idempotently on the
event id (the publisher's side, with the Lambda's context). The scheduled cycle and the CLI sweep the outbox table
itself for what the relay left behind (it holds only what is still to publish); deployed, the sweep leaves events
younger than a grace period to the relay, so the two do not race. The sweep publishes ten events a call (a batch),
then deletes those the topic accepted, 25 records a call; one it refused stays for the next sweep and is counted
`failed`.

The store may keep a transaction's notifications in one shared record (`OutboxMessage.holder`): the sweep fills its
batches regardless of records and removes a record once every one of its messages is answered, so that it leaves the
outbox once; the stream relay publishes each of them before it removes the record.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from itertools import batched, groupby
from operator import attrgetter
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
        at a time while the outbox is read on."""
        counts: Counter[str] = Counter()
        removals = _Removals(self.store, now.isoformat())
        batches = _batches(self.store.unpublished(utc_text(now - grace), page_size), removals)
        try:
            if threads == 1:
                for batch in batches:
                    counts.update(self._publish_batch(batch, removals))
                return dict(counts)
            with ThreadPoolExecutor(threads, thread_name_prefix="outbox-sweep") as pool:
                running: set[Future[Counter[str]]] = set()
                for batch in batches:
                    if len(running) >= 2 * threads:  # read no further ahead than the publishers can use
                        done, running = wait(running, return_when=FIRST_COMPLETED)
                        _add(counts, done)
                    running.add(pool.submit(self._publish_batch, batch, removals))
                _add(counts, running)
            return dict(counts)
        finally:  # what was published leaves the outbox even when a later batch failed: a rerun resends none of it
            removals.flush()

    def _publish_batch(self, batch: Sequence[OutboxMessage], removals: _Removals) -> Counter[str]:
        """Publish a batch in one call; its records leave the outbox once all their messages are answered."""
        events = [
            {"event_id": message.event_id, "body": message.body, "attributes": json.loads(message.attributes)}
            for message in batch
        ]
        published = self.publisher.publish_batch(events)
        removals.answered(batch, published)
        accepted = sum(1 for message in batch if message.event_id in published)
        return +Counter(published=accepted, failed=len(batch) - accepted)  # unary +: the zeros dropped


# The sweep removes what it published this many outbox records to a call (DynamoDB's BatchWriteItem takes 25). A
# removal per publish batch was one call per record (a transaction's record holds about six messages, so a batch
# rarely held two): half of the sweep's calls.
REMOVE_BATCH = 25


class _Removals:
    """What a sweep published, gathered by outbox record: a record leaves the outbox (a shared one the topic refused
    in part is written again with the refused messages alone) once each of its messages has the topic's answer,
    REMOVE_BATCH records to a call. Publish batches run on several threads and a record may straddle two of them,
    hence the lock. A record whose every message was refused stays as it is, for the next sweep."""

    def __init__(self, store: LedgerStore, at: str) -> None:
        self.store, self.at = store, at
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # record -> how many messages it holds
        self._answers: dict[str, list[tuple[OutboxMessage, str | None]]] = {}  # record -> (message, message id)
        self._ready: list[list[tuple[OutboxMessage, str | None]]] = []  # answered records with something published

    def expect(self, record: Sequence[OutboxMessage]) -> None:
        """A record about to be published (all of its messages, read one after another)."""
        with self._lock:
            self._sizes[record[0].record_id] = len(record)

    def answered(self, batch: Sequence[OutboxMessage], published: Mapping[str, str]) -> None:
        with self._lock:
            for message in batch:
                answers = self._answers.setdefault(message.record_id, [])
                answers.append((message, published.get(message.event_id)))
                if len(answers) == self._sizes[message.record_id]:  # the record's every message is answered
                    del self._answers[message.record_id], self._sizes[message.record_id]
                    if any(message_id for _, message_id in answers):
                        self._ready.append(answers)
            whole = len(self._ready) - len(self._ready) % REMOVE_BATCH
            ready, self._ready = self._ready[:whole], self._ready[whole:]
        self._remove(ready)

    def flush(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        self._remove(ready)

    def _remove(self, records: list[list[tuple[OutboxMessage, str | None]]]) -> None:
        for start in range(0, len(records), REMOVE_BATCH):
            answers = [answer for record in records[start : start + REMOVE_BATCH] for answer in record]
            self.store.remove_batch_published(
                [(message, message_id) for message, message_id in answers if message_id],
                self.at,
                [message for message, message_id in answers if not message_id],
            )


def _batches(messages: Iterable[OutboxMessage], removals: _Removals) -> Iterator[tuple[OutboxMessage, ...]]:
    """Full publish batches (PUBLISH_BATCH messages; the last may hold fewer), in the order read. A shared record may
    straddle two batches: `removals` learns each record's size (the store yields a record's messages one after
    another) before its messages are published, and removes it once all of them are answered."""

    def announced() -> Iterator[OutboxMessage]:
        for _, held in groupby(messages, key=attrgetter("record_id")):
            record = list(held)
            removals.expect(record)
            yield from record

    return batched(announced(), PUBLISH_BATCH)


def _add(counts: Counter[str], finished: Iterable[Future[Counter[str]]]) -> None:
    for future in finished:
        counts.update(future.result())
