"""The in-memory stores behave as the DynamoDB ones: one scenario (new orders, an adjustment, a line that moves to
another order, a refused transition, a confirmation, a review, a re-decision) run on both leaves the same snapshot,
read through the store protocol; a claims scenario on the claims table and on the in-memory claims store ends with the
same claims, orders, journal and outbox."""

from __future__ import annotations

from datetime import timedelta

from accrual.adapters.claims_table import claim_rules_of
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.adapters.memory_store import InMemoryLedgerStore
from accrual.domain.claims import ClaimRequest
from accrual.domain.lifecycle import ReviewVerdict
from accrual.service.claims import ClaimService, claim_service
from accrual.service.ledger import Ledger
from accrual.service.reading import audit
from support.claims import memory_claims
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


def claims_scenario(claims: ClaimService) -> list:
    """Claims through the claims store: credited with evidence, waiting without, rival claimants, an agent's verdicts,
    a claim of a shopper without clicks, a repeated filing."""
    ledger, at = claims.ledger, T0 + timedelta(days=20)
    lost = [line("K1", sub_id="lost-1"), line("K2", sub_id="lost-2"), line("K3", sub_id="lost-3")]
    ledger.reconcile(lost, now=at)
    claims.after_reconcile(lost, now=at)
    evidence = {"ordered_at": T0.isoformat(), "amount": "100", "currency": "USD"}

    def file(user: str, number: str, **data) -> str:
        claim, _ = claims.file(ClaimRequest.model_validate({"user_id": user, "order_number": number, **data}), now=at)
        return claim.claim_id

    credited, bare = file("alice", "K1", **evidence), file("alice", "K2")
    rival_a, rival_b = file("alice", "K3", **evidence), file("bob", "K3", **evidence)
    file("stranger", "K1", **evidence)
    file("alice", "K1", **evidence)
    claims.resolve(bare, approve=True, reason="receipt", now=at + timedelta(hours=1))
    claims.resolve(rival_a, approve=False, reason="not hers", now=at + timedelta(hours=2))
    claims.sweep(now=at + timedelta(days=30))
    return [claim.to_dict() for claim in claims.list_claims()] + [credited, rival_b]


def test_the_claims_store_on_dynamodb_and_in_memory_ends_in_the_same_state(stack):
    load_reference_data(stack, users=USERS)
    dynamo = claim_service(stack, Ledger(stack, store=DynamoLedgerStore(stack)))
    memory_ledger = InMemoryLedgerStore()
    memory_ledger.save_config(config())
    memory_ledger.save_clicks(clicks(USERS))
    memory = memory_claims(Ledger(store=memory_ledger), claim_rules_of(stack))

    assert claims_scenario(dynamo) == claims_scenario(memory)
    assert store_snapshot(dynamo.ledger.store) == store_snapshot(memory_ledger)
    assert audit(memory_ledger)["ok"]
