"""The in-memory store behaves as the DynamoDB store: one scenario (new orders, an adjustment, a line that moves to
another order, a refused transition, a confirmation, a review, a re-decision) run on both leaves the same snapshot,
read through the store protocol."""

from __future__ import annotations

from datetime import timedelta

from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.domain.lifecycle import ReviewVerdict
from accrual.service.ledger import Ledger
from accrual.service.reading import audit
from support.fakes.ledger_store import InMemoryLedgerStore
from support.ledger import T0, line, load_reference_data
from support.memory import clicks, config, store_snapshot

USERS = {"alice": "EUR", "bob": "USD"}


def scenario(ledger: Ledger) -> list:
    settled_at = T0 + timedelta(days=10)
    counts = [
        ledger.reconcile(
            [
                line("A"),
                line("B", amount="40.00", user="bob"),
                line("C", "X-1"),
                line("R", new_user_coupon=True, buyer_account="acc-1"),
                line("S", new_user_coupon=True, buyer_account="acc-2"),
            ],
            now=T0,
        ),
        ledger.reconcile(
            [line("A", amount="60.00", at=T0 + timedelta(hours=1)), line("D", "X-1", at=T0 + timedelta(hours=1))],
            now=T0 + timedelta(hours=1),
        ),
        ledger.reconcile([line("B", amount="40.00", user="bob", status="settled", at=settled_at)], now=settled_at),
        ledger.confirm(now=settled_at + timedelta(days=1)),
        ledger.reconcile(
            [line("B", amount="40.00", user="bob", status="paid", at=settled_at + timedelta(days=2))],
            now=settled_at + timedelta(days=2),
        ),
    ]
    ledger.review("aliexpress#S", ReviewVerdict.RELEASED, now=settled_at + timedelta(days=2))
    results, _ = ledger.redecide(["aliexpress#A", "aliexpress#B"], now=settled_at + timedelta(days=3))
    return [counts, [item.to_dict() for item in results]]


def test_one_scenario_on_the_dynamodb_and_the_in_memory_store_ends_in_the_same_state(stack):
    load_reference_data(stack, users=USERS)
    dynamo = DynamoLedgerStore(stack)
    memory = InMemoryLedgerStore()
    memory.save_config(config())
    memory.save_clicks(clicks(USERS))

    assert scenario(Ledger(stack, store=dynamo)) == scenario(Ledger(store=memory))
    assert store_snapshot(dynamo) == store_snapshot(memory)
    assert audit(dynamo) == audit(memory) and audit(memory)["ok"]
