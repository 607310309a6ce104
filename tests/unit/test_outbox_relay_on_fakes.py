"""The outbox relay on fakes of the ledger store and the topic: every notification the ledger wrote is published once
and then leaves the outbox, ten to a call (several calls at a time if asked), a rerun publishes nothing, one the topic refused stays
for the next sweep, fresh events are left to the stream relay for the grace period, and an event another invocation
is publishing is left alone."""

from __future__ import annotations

import json
from datetime import timedelta

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
