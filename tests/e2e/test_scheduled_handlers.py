"""The deployed path end to end on the local stack: the scheduled pull's real handler (events/pull.json, the
environment template.yaml gives it) archives the simulator's pages and hands them to the work queue; the reconcile
handler, driven by the local poller as Lambda's SQS event source would drive it, reconciles them; the confirm
handler hands on one unit per due shard and sweeps the outbox to the local queue."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import boto3
import pytest

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import BalanceRecord, bind_ledger_tables
from accrual.composition import composition
from accrual.domain.models import AccrualConfig, Click
from accrual.ports import DUE_SHARDS
from accrual.settings import Settings
from accrual_dev.poller import LocalPoller
from accrual_dev.simulator import running_simulator
from accrual_dev.simulator.local import configure_local_partners
from support.handlers import EVENTS, FakeContext, event, function_environment, load_handler
from support.readers import audit

START = datetime.fromisoformat("2026-10-01T00:00:00+00:00")
DAYS = 2
SCHEDULED = START + timedelta(days=DAYS)


def drain(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs")
    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        received.extend(json.loads(message["Body"]) for message in messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                for number, message in enumerate(messages)
            ],
        )
    return received


def balances() -> dict[str, tuple]:
    return {
        record.user_id: (record.pending_usd, record.confirmed_usd, record.pending, record.confirmed)
        for record in BalanceRecord.scan(consistent_read=True)
    }


def test_scheduled_pull_hands_pages_to_the_workers_and_confirm_sweeps(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bind_ledger_tables(stack)
    reference_data.save_config(AccrualConfig.model_validate_json((EVENTS / "demo-config.json").read_text()), now=START)
    with running_simulator(seed=5, start=START, days=DAYS, orders_per_day=4, now=SCHEDULED) as simulator:
        reference_data.save_clicks((Click.model_validate(click) for click in simulator.world.clicks), now=START)
        configure_local_partners(stack, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates)
        pulled = {}
        for partner in ("aliexpress", "admitad"):
            environment = function_environment(stack, "PullFunction", monkeypatch)
            assert environment["WORK_QUEUE_URL"] == composition(stack).work_queue.url
            tick = {**event("pull"), "partner": partner, "scheduled_time": SCHEDULED.isoformat()}
            pulled[partner] = load_handler("pull").lambda_handler(tick, FakeContext())
            # the same tick delivered again: Idempotency answers with the first result, nothing is pulled twice
            assert load_handler("pull").lambda_handler(tick, FakeContext()) == pulled[partner]

    handed = sum(result["partners"][partner]["handed_on"] for partner, result in pulled.items())
    assert handed > 0 and composition(stack).work_queue.depth().visible == handed
    function_environment(stack, "ReconcileFunction", monkeypatch)
    worked = LocalPoller(stack, workers=8).drain(timeout=300)
    assert worked["fanout"]["units_done"] == handed and worked["fanout"]["unit_failures"] == 0
    pages = worked["results"]
    assert all(page["read"] == page["accepted"] + page["quarantined"] for page in pages)
    assert sum(page["read"] for page in pages) > 0
    after_pull = balances()
    assert sum(1 for pending_usd, *_ in after_pull.values() if pending_usd > 0) >= 3

    environment = function_environment(stack, "ConfirmFunction", monkeypatch)
    monkeypatch.setenv("OUTBOX_SWEEP_GRACE_SECONDS", "0")  # deployed, fresh events are the stream relay's first
    confirmed = load_handler("confirm").lambda_handler(
        {**event("confirm"), "scheduled_time": (SCHEDULED + timedelta(hours=1)).isoformat()}, FakeContext()
    )
    assert int(environment["OUTBOX_SWEEP_GRACE_SECONDS"]) > 0
    assert confirmed["shards_handed_on"] == DUE_SHARDS + 1  # a unit per due shard, and the cycle's claims sweep
    shards = LocalPoller(stack, workers=8).drain(timeout=300)
    confirm_results = [result for result in shards["results"] if result["kind"] == "confirm"]
    assert sorted(result["shard"] for result in confirm_results) == list(range(DUE_SHARDS))
    assert [result["kind"] for result in shards["results"]].count("claims") == 1
    assert balances() == after_pull  # nothing was due an hour later

    published = confirmed["notify"].get("published", 0)
    messages = drain(stack.local_notifications_queue_url)
    kinds = Counter(message["MessageAttributes"]["event_type"]["Value"] for message in messages)
    assert len(messages) == published > 0
    assert kinds["cashback.pending"] >= len([user for user, (pending_usd, *_) in after_pull.items() if pending_usd])
    checked = audit(stack)
    assert checked["ok"], checked["differences"]
