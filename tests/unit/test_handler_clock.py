"""The handlers take "now" from the composition root's clock: run on fakes of the ports with a clock set by the test,
what they record carries that time, not the machine's."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from accrual.domain.claims import ClaimRules
from accrual.service.work import WorkUnit
from support.claims import memory_claims
from support.fakes.ports import FixedClock
from support.fakes.world import FakeWorld
from support.handlers import FakeContext, event, load_handler
from support.ledger import T0, line

# a time of the test's choosing (not the machine's): a handler that read the system time would not give it
LATER = T0 + timedelta(days=3, minutes=7)


def _stream_insert(message) -> dict:
    """The outbox table's stream record of a new, unpublished event, as the relay function receives it."""
    batch = event("outbox_relay")
    record = copy.deepcopy(batch["Records"][0])
    record["dynamodb"]["Keys"] = {"event_id": {"S": message.event_id}}
    record["dynamodb"]["NewImage"] = {
        "event_id": {"S": message.event_id},
        "body": {"S": message.body},
        "attributes": {"S": message.attributes},
        "created_at": {"S": message.created_at},
    }
    return {"Records": [record]}


def test_the_outbox_relay_publishes_an_event_at_the_clocks_time(monkeypatch: pytest.MonkeyPatch) -> None:
    world = FakeWorld()
    world.ledger().reconcile([line("A")], now=T0)
    [message] = world.store.unpublished("9999", 10)
    world.clock = FixedClock(LATER)
    handler = load_handler("outbox_relay")
    monkeypatch.setattr(handler, "root", lambda: world)

    assert handler.lambda_handler(_stream_insert(message), FakeContext()) == {"batchItemFailures": []}

    assert [json.loads(body)["event_id"] for _, body, _ in world.publisher.published] == [message.event_id]
    assert world.store.outbox == {} and world.store.published[message.event_id].published_at == LATER.isoformat()


def test_claim_intake_files_the_claim_at_the_clocks_time_and_sets_its_escalation_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = FakeWorld()
    world.claims = memory_claims(world.ledger())
    world.clock = FixedClock(LATER)
    handler = load_handler("claim_intake")
    monkeypatch.setattr(handler, "load_settings", lambda: None)
    monkeypatch.setattr(handler, "composition", lambda settings: world)

    assert handler.lambda_handler(event("claim_intake"), FakeContext()) == {"batchItemFailures": []}

    [claim] = world.claims.store.all()
    assert (claim.user_id, claim.order_number) == ("alice", "8123456789")
    assert claim.filed_at == LATER
    assert claim.escalate_at == LATER + ClaimRules().escalation_delay


def test_the_confirm_schedule_without_a_scheduled_time_runs_at_the_clocks_time(monkeypatch: pytest.MonkeyPatch) -> None:
    world = FakeWorld()
    world.ledger().reconcile([line("A")], now=T0)
    world.clock = FixedClock(LATER)
    world.settings = None  # read only by the idempotency guard, which is the emulator suites' to test
    world.outbox_grace = timedelta(0)
    handler = load_handler("confirm")
    monkeypatch.setattr(handler, "root", lambda: world)
    monkeypatch.setattr(handler, "once", lambda *args, **kwargs: lambda function: function)

    result = handler.lambda_handler({}, FakeContext())

    assert result["now"] == LATER.isoformat() and result["notify"] == {"published": 1}
    units = [WorkUnit.model_validate_json(body) for body in world.work_queue.messages.values()]
    assert len(units) == result["shards_handed_on"] > 0 and {unit.now for unit in units} == {LATER}
    [event_id] = world.store.published
    assert world.store.outbox == {} and world.store.published[event_id].published_at == LATER.isoformat()
