"""The outbox relay on fakes of the ledger store and the topic: every notification the ledger wrote is published once
and then leaves the outbox, ten to a call (several calls at a time if asked), a rerun publishes nothing, one the topic refused stays
for the next sweep, fresh events are left to the stream relay for the grace period, and an event another invocation
is publishing is left alone."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from accrual.ports import OutboxMessage
from accrual.ports.notify import PUBLISH_BATCH
from accrual.service.outbox import _batches
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


@given(st.lists(st.integers(min_value=1, max_value=PUBLISH_BATCH), max_size=30))
def test_the_sweep_publishes_a_shared_records_messages_in_one_batch_and_every_message_once(records):
    """Records of one notification (size 1) and shared records (several, each naming its holder), read one record's
    messages after another: batches never pass PUBLISH_BATCH and never split a record, and keep every message once,
    in order."""
    messages = [
        OutboxMessage(f"e{index}-{number}", "t", "u", "{}", "{}", "2026", holder=f"r{index}" if size > 1 else None)
        for index, size in enumerate(records)
        for number in range(size)
    ]
    batches = list(_batches(iter(messages)))
    assert [message for batch in batches for message in batch] == messages
    assert all(0 < len(batch) <= PUBLISH_BATCH for batch in batches)
    where = {message.holder: index for index, batch in enumerate(batches) for message in batch if message.holder}
    assert all(
        where[message.holder] == index for index, batch in enumerate(batches) for message in batch if message.holder
    )
    # a batch is only cut when the next record would not fit
    for batch, following in zip(batches, batches[1:], strict=False):
        first = following[0]
        size = sum(1 for message in following if message.holder == first.holder) if first.holder else 1
        assert len(batch) + size > PUBLISH_BATCH
