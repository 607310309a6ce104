"""The outbox relay on fakes of the ledger store and the topic: every notification the ledger wrote is published once
and then leaves the outbox, ten to a call (several calls at a time if asked), a rerun publishes nothing, one the topic refused stays
for the next sweep, fresh events are left to the stream relay for the grace period, and an event another invocation
is publishing is left alone."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from accrual.ports import OutboxMessage
from accrual.ports.notify import PUBLISH_BATCH
from accrual.service.outbox import REMOVE_BATCH, OutboxRelay
from support.fakes.world import FakeWorld
from support.ledger import T0, line


def test_the_sweep_publishes_each_notification_once_and_the_outbox_forgets_it():
    world = FakeWorld()
    world.ledger().reconcile([line("A"), line("B", user="bob")], now=T0)
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=5)) == {"published": 2}
    published = {event_id: json.loads(body) for event_id, body, _ in world.publisher.published}
    assert {body["user_id"] for body in published.values()} == {"alice", "bob"}
    assert world.store.outbox == {} and all(world.store.published[event_id].message_id for event_id in published)
    # a rerun finds nothing left to publish
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=10)) == {}
    assert len(world.publisher.published) == 2


def test_the_sweep_publishes_ten_to_a_call_and_leaves_a_refused_one_for_the_next_sweep():
    world = FakeWorld()
    world.ledger().reconcile([line(f"O{number}") for number in range(23)], now=T0)
    refused: set[str] = set()
    stock = world.publisher.publish_batch

    def refusing_one(events):
        if not refused:
            refused.add(events[0]["event_id"])
        return {event_id: message_id for event_id, message_id in stock(events).items() if event_id not in refused}

    world.publisher.publish_batch = refusing_one  # type: ignore[method-assign]
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=5)) == {"published": 22, "failed": 1}
    assert world.publisher.batches == 3
    [left] = refused
    assert set(world.store.outbox) == {left} and not world.store.outbox[left].message_id
    world.publisher.publish_batch = stock  # type: ignore[method-assign]
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=10)) == {"published": 1}
    assert world.store.outbox == {} and world.store.published[left].message_id


def test_a_sweep_on_several_threads_publishes_each_notification_once():
    world = FakeWorld()
    world.ledger().reconcile([line(f"O{number}") for number in range(57)], now=T0)
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=5), threads=4) == {"published": 57}
    event_ids = [event_id for event_id, _, _ in world.publisher.published]
    assert len(event_ids) == len(set(event_ids)) == 57
    assert world.store.outbox == {} and all(world.store.published[event_id].message_id for event_id in event_ids)
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=10), threads=4) == {}


def test_fresh_events_are_left_to_the_stream_relay_for_the_grace_period():
    world = FakeWorld()
    world.ledger().reconcile([line("A")], now=T0)
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=1), grace=timedelta(minutes=5)) == {}
    assert world.relay.publish_unpublished(now=T0 + timedelta(minutes=6), grace=timedelta(minutes=5)) == {
        "published": 1
    }


def test_an_event_another_invocation_is_publishing_is_left_in_the_outbox():
    world = FakeWorld()
    world.ledger().reconcile([line("A")], now=T0)
    [message] = world.store.unpublished("9999", 10)
    event = {"event_id": message.event_id, "body": message.body, "attributes": message.attributes}

    class Busy:
        def publish(self, event_id, body, attributes, *, lambda_context=None):
            return None  # the idempotent publish says another invocation holds this event

    world.relay.publisher = Busy()
    assert world.relay.publish(event, now=T0, lambda_context=object()) == "in_progress"
    assert list(world.store.unpublished("9999", 10)) == [message]


class _SharedRecords:
    """The outbox as the DynamoDB store keeps it, for the sweep alone: records of one or several messages (these name
    their record as `holder`), read one record's messages after another; a removal deletes each record something was
    published from, or writes it again with the messages the topic refused."""

    def __init__(self, sizes: list[int]) -> None:
        self.records: dict[str, list[OutboxMessage]] = {}
        for index, size in enumerate(sizes):
            holder = f"r{index}" if size > 1 else None
            record = [OutboxMessage(f"e{index}-{n}", "t", "u", "{}", "{}", "2026", holder=holder) for n in range(size)]
            self.records[record[0].record_id] = record
        self.removals: list[int] = []  # records removed or written again, per call

    def unpublished(self, until: str, page_size: int):
        for record in list(self.records.values()):
            yield from record

    def remove_batch_published(self, published, at, refused=()):
        touched = {message.record_id for message, _ in published}
        answered = {message.event_id for message, _ in published} | {message.event_id for message in refused}
        self.removals.append(len(touched))
        for record_id in touched:
            record = self.records.pop(record_id)  # a record removed twice is a KeyError
            assert all(message.event_id in answered for message in record), "removed before all was answered"
            kept = [message for message in record if message in refused]
            if kept:
                self.records[record_id] = kept


class _RefusingTopic:
    def __init__(self, refused: set[str]) -> None:
        self.refused, self.batches, self.sent = refused, [], []
        self._lock = threading.Lock()

    def publish_batch(self, events):
        with self._lock:
            self.batches.append(len(events))
            accepted = {
                event["event_id"]: f"m-{event['event_id']}" for event in events if event["event_id"] not in self.refused
            }
            self.sent += list(accepted)
        return accepted


@given(
    st.lists(st.integers(min_value=1, max_value=PUBLISH_BATCH), max_size=60),
    st.sets(st.integers(min_value=0, max_value=300), max_size=12),
    st.sampled_from([1, 4]),
)
def test_the_sweep_fills_its_batches_and_removes_each_record_once_all_its_messages_are_answered(
    sizes, refusing, threads
):
    """Records of one notification and shared records of several: the sweep publishes full batches (a record may
    straddle two), every message once; a record leaves the outbox once each of its messages is answered, 25 records
    to a call at most; a shared record the topic refused in part keeps the refused messages alone, one refused whole
    stays as it was; a second sweep publishes exactly what was refused."""
    outbox = _SharedRecords(sizes)
    every = [message for record in outbox.records.values() for message in record]
    refused = {message.event_id for index, message in enumerate(every) if index in refusing}
    topic = _RefusingTopic(refused)
    relay = OutboxRelay(outbox, topic)  # type: ignore[arg-type]
    counts = relay.publish_unpublished(now=T0, threads=threads)
    assert counts == +Counter(published=len(every) - len(refused), failed=len(refused))
    assert sorted(topic.sent) == sorted(message.event_id for message in every if message.event_id not in refused)
    assert all(size == PUBLISH_BATCH for size in topic.batches[:-1]) and sum(topic.batches) == len(every)
    assert all(0 < removed <= REMOVE_BATCH for removed in outbox.removals)
    left = [message for record in outbox.records.values() for message in record]
    assert sorted(message.event_id for message in left) == sorted(refused)
    for record in outbox.records.values():
        assert len({message.holder for message in record}) == 1
    topic.refused = set()
    assert relay.publish_unpublished(now=T0, threads=threads) == +Counter(published=len(refused))
    assert outbox.records == {}
