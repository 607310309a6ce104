"""The scheduled cycle Lambda end to end: the real handler in functions/cycle/app.py, invoked with events/cycle.json
and the environment template.yaml gives it, pulls a running partner simulator configured for the local stack,
reconciles the lines into the ledger, confirms what is due and publishes the notifications to the local queue."""
from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest


from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import BalanceRecord, bind_ledger_tables
from accrual.domain.models import AccrualConfig, Click
from accrual.service.reading import audit
from accrual.settings import Settings
from accrual_dev.simulator import running_simulator
from accrual_dev.simulator.local import configure_local_partners
from support.handlers import EVENTS, ROOT, FakeContext, event, function_environment

START = datetime.fromisoformat("2026-10-01T00:00:00+00:00")
DAYS = 2
# A fresh cursor reads the overlap (5 days) before the scheduled time: the whole small world is in the first pull.
SCHEDULED = START + timedelta(days=DAYS)


def load_cycle_handler():
    """functions/cycle/app.py as the Lambda runtime imports it: registered in sys.modules before it runs, which
    pydantic needs to resolve the (postponed) annotations of the handler's event model."""
    spec = importlib.util.spec_from_file_location("cycle_app", ROOT / "functions" / "cycle" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


def drain(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs")
    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):
        received.extend(json.loads(message["Body"]) for message in messages)
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]} for number, message in enumerate(messages)])
    return received


def balances() -> dict[str, tuple]:
    return {record.user_id: (record.pending_usd, record.confirmed_usd, record.pending, record.confirmed)
            for record in BalanceRecord.scan(consistent_read=True)}


def test_scheduled_cycle_pulls_reconciles_and_notifies(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = function_environment(stack, "AccrualCycleFunction", monkeypatch)
    bind_ledger_tables(stack)
    reference_data.save_config(AccrualConfig.model_validate_json((EVENTS / "demo-config.json").read_text()),
                               now=START)
    with running_simulator(seed=5, start=START, days=DAYS, orders_per_day=4, now=SCHEDULED) as simulator:
        reference_data.save_clicks(Click.model_validate(click) for click in simulator.world.clicks)
        configure_local_partners(stack, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates)
        handler = load_cycle_handler()
        # The event as the schedule sends it, with its time moved onto the simulator's clock.
        scheduled = {**event("cycle"), "scheduled_time": SCHEDULED.isoformat()}

        first = handler(scheduled, FakeContext())

        assert first["ok"] and first["now"] == SCHEDULED.isoformat()
        assert set(first["pull"]["partners"]) == {"aliexpress", "admitad"}
        for partner, counts in first["pull"]["partners"].items():
            assert counts["read"] > 0, partner
            assert counts["read"] == counts["accepted"] + counts["quarantined"], partner
            assert counts["reconciled"], partner
        after_first = balances()
        assert sum(1 for pending_usd, *_ in after_first.values() if pending_usd > 0) >= 3
        # Deployed, fresh outbox events are the stream relay's for OUTBOX_SWEEP_GRACE_SECONDS; the cycle leaves them.
        assert int(environment["OUTBOX_SWEEP_GRACE_SECONDS"]) > 0
        assert sum(first["notify"].values()) == 0

        # The next schedule an hour later re-reads the overlap (no change to any balance) and sweeps what the relay,
        # held back locally, left behind: every notification of the first cycle arrives on the local queue.
        later = handler({**scheduled, "scheduled_time": (SCHEDULED + timedelta(hours=1)).isoformat(),
                         "attempt": "1"}, FakeContext())

    assert later["ok"]
    assert balances() == after_first
    published = later["notify"].get("published", 0)
    messages = drain(stack.local_notifications_queue_url)
    kinds = Counter(message["MessageAttributes"]["event_type"]["Value"] for message in messages)
    assert len(messages) == published > 0
    assert kinds["cashback.pending"] >= len([user for user, (pending_usd, *_) in after_first.items() if pending_usd])
    assert len({json.loads(message["Message"])["event_id"] for message in messages}) == len(messages)
    checked = audit(stack)
    assert checked["ok"], checked["differences"]
    assert checked["orders"] > 0 and checked["journal_entries"] > 0
