"""Missing-cashback claims on the in-memory stores (the claims store port's fake beside the in-memory ledger store):
filed before or after the line, matched by either order number, duplicates, another shopper's order, rival
claimants, escalation by time; the money goes through the ledger and the audit stays clean. The claims table itself
is checked against the fake in tests/integration/test_store_agreement.py."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from accrual.adapters.claims_table import claim_rules_of
from accrual.domain.claims import ClaimRequest, ClaimRules, ClaimState
from accrual.settings import Settings
from support.claims import memory_claims
from support.ledger import T0, line
from support.memory import memory_ledger
from support.readers import audit, explain
from support.schemas import assert_valid_message

DAY = timedelta(days=1)
ZERO = (Decimal(0),) * 4


class World:
    """A ledger and its claims service on the in-memory stores, with what the tests read back."""

    def __init__(self, rules: ClaimRules | None = None) -> None:
        self.ledger = memory_ledger({"alice": "EUR", "bob": "USD"})
        self.claims = memory_claims(self.ledger, rules)

    def reconcile(self, lines, *, now) -> dict[str, int]:
        """A page as the ingest handles it: the ledger's reconcile, then the claims step."""
        counts = self.ledger.reconcile(lines, now=now)
        for name, value in self.claims.after_reconcile(lines, now=now).items():
            counts[name] = counts.get(name, 0) + value
        return counts

    def cycle(self, *, now) -> None:
        """The scheduled cycle: the ledger's confirmation, then the claims sweep."""
        self.ledger.confirm(now=now)
        self.claims.sweep(now=now)

    def order(self, order_id: str = "O1"):
        return self.ledger.load_order(f"aliexpress#{order_id}").record

    def balance(self, user: str) -> tuple[Decimal, ...]:
        stored = self.ledger.store.balance(user)
        if stored is None:
            return ZERO
        held = stored.holding
        return (held.pending_usd, held.confirmed_usd, held.pending, held.confirmed)

    def published(self, event_type: str) -> list[dict]:
        bodies = [json.loads(item.message.body) for item in self.ledger.store.outbox.values()]
        found = [body for body in bodies if body["event_type"] == event_type]
        for body in found:
            assert_valid_message(body)
        return found

    def audit_ok(self) -> bool:
        result = audit(self.ledger.store)
        assert result["ok"], result["differences"]
        return True


@pytest.fixture
def world() -> World:
    return World()


def unattributed(order: str, **changes):
    """A line whose tracking value finds no click (the shopper's click was lost)."""
    return line(order, sub_id="lost-tracking", **changes)


def request(user: str = "alice", number: str = "O1", **changes) -> ClaimRequest:
    data = {
        "user_id": user,
        "order_number": number,
        "ordered_at": T0.isoformat(),
        "amount": "100.00",
        "currency": "USD",
        **changes,
    }
    return ClaimRequest.model_validate(data)


def test_claim_filed_after_the_line_arrived_unattributed_resolves_at_once(world):
    world.reconcile([unattributed("O1")], now=T0)
    assert world.order().state == "unattributed" and world.balance("alice") == ZERO

    claim, created = world.claims.file(request(), now=T0 + DAY)

    assert created and claim.state == ClaimState.RESOLVED and claim.order_key == "aliexpress#O1"
    assert world.order().user_id == "alice" and world.order().state == "pending"
    # 100 USD at the category rate 5% = 5.00 USD, in EUR at 0.90
    assert world.balance("alice") == (Decimal("5.00"), Decimal(0), Decimal("4.50"), Decimal(0))
    [resolved] = world.published("claim.resolved")
    assert resolved["claim_id"] == claim.claim_id and resolved["cashback"] == "4.50"
    [pending] = world.published("cashback.pending")
    assert pending["user_id"] == "alice" and "CLAIM_ATTRIBUTED" in {item["code"] for item in pending["trail_summary"]}
    explained = explain(world.ledger.store, "O1")
    assert any(step["rule"] == "claim" for step in explained["trail"])
    assert world.audit_ok()


def test_claim_filed_before_the_line_arrives_resolves_on_reconcile(world):
    service = world.claims
    claim, _ = service.file(request(), now=T0)
    assert claim.state == ClaimState.OPEN

    counts = world.reconcile([unattributed("O1")], now=T0 + DAY)

    assert counts.get("claims_resolved") == 1
    assert service.show(claim.claim_id).state == ClaimState.RESOLVED
    assert world.order().user_id == "alice"
    assert world.balance("alice")[0] == Decimal("5.00")
    assert len(world.published("claim.resolved")) == 1
    assert world.audit_ok()


def test_claim_by_the_partner_order_number(world):
    world.reconcile([unattributed("O1", partner_order_id="P-77")], now=T0)

    claim, _ = world.claims.file(request(number="P-77"), now=T0 + DAY)

    assert claim.state == ClaimState.RESOLVED and claim.order_key == "aliexpress#O1"
    assert world.balance("alice")[0] == Decimal("5.00")


def test_claim_whose_amount_or_time_disagree_stays_open_and_says_why(world):
    world.reconcile([unattributed("O1")], now=T0)
    far, _ = world.claims.file(request(amount="300.00"), now=T0 + DAY)
    assert far.state == ClaimState.OPEN
    assert far.searched[0]["verdict"] == "mismatch" and "amount" in far.searched[0]["why"]
    late, _ = world.claims.file(request(user="bob", ordered_at=(T0 + 10 * DAY).isoformat()), now=T0 + DAY)
    assert late.state == ClaimState.OPEN and "ordered at" in late.searched[0]["why"]
    assert world.order().state == "unattributed"


def test_amount_in_another_currency_within_the_conversion_tolerance_matches(world):
    world.reconcile([unattributed("O1")], now=T0)
    # 100 USD is 90 EUR at the configured rate; the shopper's bank showed 93 EUR (3% off): within 5%
    claim, _ = world.claims.file(request(amount="93.00", currency="EUR"), now=T0 + DAY)
    assert claim.state == ClaimState.RESOLVED


def test_duplicate_claim_returns_the_existing_one(world):
    service = world.claims
    first, created = service.file(request(), now=T0)
    again, created_again = service.file(request(amount="100.00"), now=T0 + DAY)
    assert created and not created_again
    assert again.claim_id == first.claim_id and again.filed_at == first.filed_at
    assert len(service.list_claims(user_id="alice")) == 1


def test_claim_for_another_shoppers_order_is_refused_and_moves_no_money(world):
    world.reconcile([line("O1", user="bob")], now=T0)
    before = world.balance("bob")

    claim, _ = world.claims.file(request(user="alice"), now=T0 + DAY)

    assert claim.state == ClaimState.REJECTED and claim.reason == "ORDER_OF_ANOTHER_SHOPPER"
    assert world.balance("bob") == before and world.balance("alice") == ZERO
    assert world.order().user_id == "bob"
    [rejected] = world.published("claim.rejected")
    assert rejected["user_id"] == "alice"
    assert world.audit_ok()


def test_claim_for_an_order_already_credited_to_the_claimant_resolves_at_once(world):
    world.reconcile([line("O1", user="alice")], now=T0)
    before = world.balance("alice")
    claim, _ = world.claims.file(request(), now=T0 + DAY)
    assert claim.state == ClaimState.RESOLVED and world.balance("alice") == before


def test_two_claimants_of_an_unattributed_order_both_wait_for_an_agent(world):
    service = world.claims
    first, _ = service.file(request(user="alice"), now=T0)
    second, _ = service.file(request(user="bob"), now=T0 + timedelta(hours=1))
    world.reconcile([unattributed("O1")], now=T0 + DAY)
    world.cycle(now=T0 + DAY)
    assert {service.show(first.claim_id).state, service.show(second.claim_id).state} == {ClaimState.NEEDS_REVIEW}
    assert world.order().state == "unattributed" and world.balance("alice") == world.balance("bob") == ZERO
    assert {message["user_id"] for message in world.published("claim.escalated")} == {"alice", "bob"}


def test_unmatched_claim_escalates_after_the_configured_time(monkeypatch):
    monkeypatch.setenv("ACCRUAL_STACK", "claims-test")
    monkeypatch.setenv("CLAIM_ESCALATE_AFTER_DAYS", "3")
    world = World(claim_rules_of(Settings.from_env()))  # the settings as a cold start reads them, with the setting
    service = world.claims
    claim, _ = service.file(request(number="NEVER"), now=T0)
    assert claim.escalate_at == T0 + 3 * DAY

    world.cycle(now=T0 + 2 * DAY)
    assert service.show(claim.claim_id).state == ClaimState.OPEN
    world.cycle(now=T0 + 3 * DAY)
    escalated = service.show(claim.claim_id)
    assert escalated.state == ClaimState.ESCALATED and escalated.searched
    [message] = world.published("claim.escalated")
    assert message["searched"] and message["claim_id"] == claim.claim_id
    world.cycle(now=T0 + 4 * DAY)
    assert len(world.published("claim.escalated")) == 1  # once

    # the order shows up later after all: the escalated claim still resolves
    world.reconcile([unattributed("NEVER", ordered_at=T0)], now=T0 + 5 * DAY)
    assert service.show(claim.claim_id).state == ClaimState.RESOLVED


def test_default_escalation_is_the_report_delay_plus_seven_days(world):
    claim, _ = world.claims.file(request(number="NEVER"), now=T0)
    assert claim.escalate_at == T0 + timedelta(days=5 + 7)


def test_claim_of_a_shopper_without_clicks_is_rejected(world):
    claim, _ = world.claims.file(request(user="stranger"), now=T0)
    assert claim.state == ClaimState.REJECTED and claim.reason == "UNKNOWN_SHOPPER"


def test_claimed_order_confirms_and_stays_with_the_claimant(world):
    world.reconcile([unattributed("O1")], now=T0)
    world.claims.file(request(), now=T0 + DAY)
    world.reconcile([unattributed("O1", status="settled", at=T0 + 2 * DAY)], now=T0 + 2 * DAY)
    world.cycle(now=T0 + 4 * DAY)
    assert world.order().state == "confirmed"
    assert world.balance("alice")[:2] == (Decimal(0), Decimal("5.00"))
    assert world.audit_ok()
    for event_type in ("cashback.pending", "cashback.confirmed", "claim.resolved"):
        assert world.published(event_type)
