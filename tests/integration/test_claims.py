"""Missing-cashback claims against the local stack: filed before or after the line, matched by either order number,
duplicates, another shopper's order, escalation by time; the money goes through the ledger and the audit stays clean.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from accrual.adapters.ledger_tables import OrderRecord, OutboxRecord
from accrual.domain.claims import ClaimRequest, ClaimState
from accrual.service.claims import claim_service
from accrual.service.ledger import Ledger
from accrual.service.reading import audit, explain
from accrual.settings import Settings
from support.ledger import T0, balance_of, line, load_reference_data
from support.schemas import assert_valid_message

DAY = timedelta(days=1)


@pytest.fixture
def world(stack):
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    return stack


def reconcile(world, lines, *, now) -> dict[str, int]:
    """A page as the ingest handles it: the ledger's reconcile, then the claims step."""
    counts = Ledger(world).reconcile(lines, now=now)
    for name, value in claim_service(world).after_reconcile(lines, now=now).items():
        counts[name] = counts.get(name, 0) + value
    return counts


def cycle(world, *, now) -> None:
    """The scheduled cycle: the ledger's confirmation, then the claims sweep."""
    Ledger(world).confirm(now=now)
    claim_service(world).sweep(now=now)


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


def published(event_type: str) -> list[dict]:
    bodies = [json.loads(item.body) for item in OutboxRecord.scan() if item.event_type == event_type]
    for body in bodies:
        assert_valid_message(body)
    return bodies


def order(order_id: str = "O1") -> OrderRecord:
    return OrderRecord.get(f"aliexpress#{order_id}", "ORDER", consistent_read=True)


def test_claim_filed_after_the_line_arrived_unattributed_resolves_at_once(world):
    reconcile(world, [unattributed("O1")], now=T0)
    assert order().state == "unattributed" and balance_of("alice") == (Decimal(0),) * 4

    claim, created = claim_service(world).file(request(), now=T0 + DAY)

    assert created and claim.state == ClaimState.RESOLVED and claim.order_key == "aliexpress#O1"
    assert order().user_id == "alice" and order().state == "pending"
    # 100 USD at the category rate 5% = 5.00 USD, in EUR at 0.90
    assert balance_of("alice") == (Decimal("5.00"), Decimal(0), Decimal("4.50"), Decimal(0))
    [resolved] = published("claim.resolved")
    assert resolved["claim_id"] == claim.claim_id and resolved["cashback"] == "4.50"
    [pending] = published("cashback.pending")
    assert pending["user_id"] == "alice" and "CLAIM_ATTRIBUTED" in {item["code"] for item in pending["trail_summary"]}
    explained = explain(world, "O1")
    assert any(step["rule"] == "claim" for step in explained["trail"])
    assert audit(world)["ok"], audit(world)["differences"]


def test_claim_filed_before_the_line_arrives_resolves_on_reconcile(world):
    service = claim_service(world)
    claim, _ = service.file(request(), now=T0)
    assert claim.state == ClaimState.OPEN

    counts = reconcile(world, [unattributed("O1")], now=T0 + DAY)

    assert counts.get("claims_resolved") == 1
    assert service.show(claim.claim_id).state == ClaimState.RESOLVED
    assert order().user_id == "alice"
    assert balance_of("alice")[0] == Decimal("5.00")
    assert len(published("claim.resolved")) == 1
    assert audit(world)["ok"]


def test_claim_by_the_partner_order_number(world):
    reconcile(world, [unattributed("O1", partner_order_id="P-77")], now=T0)

    claim, _ = claim_service(world).file(request(number="P-77"), now=T0 + DAY)

    assert claim.state == ClaimState.RESOLVED and claim.order_key == "aliexpress#O1"
    assert balance_of("alice")[0] == Decimal("5.00")


def test_claim_whose_amount_or_time_disagree_stays_open_and_says_why(world):
    reconcile(world, [unattributed("O1")], now=T0)
    far, _ = claim_service(world).file(request(amount="300.00"), now=T0 + DAY)
    assert far.state == ClaimState.OPEN
    assert far.searched[0]["verdict"] == "mismatch" and "amount" in far.searched[0]["why"]
    late, _ = claim_service(world).file(request(user="bob", ordered_at=(T0 + 10 * DAY).isoformat()), now=T0 + DAY)
    assert late.state == ClaimState.OPEN and "ordered at" in late.searched[0]["why"]
    assert order().state == "unattributed"


def test_amount_in_another_currency_within_the_conversion_tolerance_matches(world):
    reconcile(world, [unattributed("O1")], now=T0)
    # 100 USD is 90 EUR at the configured rate; the shopper's bank showed 93 EUR (3% off): within 5%
    claim, _ = claim_service(world).file(request(amount="93.00", currency="EUR"), now=T0 + DAY)
    assert claim.state == ClaimState.RESOLVED


def test_duplicate_claim_returns_the_existing_one(world):
    service = claim_service(world)
    first, created = service.file(request(), now=T0)
    again, created_again = service.file(request(amount="100.00"), now=T0 + DAY)
    assert created and not created_again
    assert again.claim_id == first.claim_id and again.filed_at == first.filed_at
    assert len(service.list_claims(user_id="alice")) == 1


def test_claim_for_another_shoppers_order_is_refused_and_moves_no_money(world):
    reconcile(world, [line("O1", user="bob")], now=T0)
    before = balance_of("bob")

    claim, _ = claim_service(world).file(request(user="alice"), now=T0 + DAY)

    assert claim.state == ClaimState.REJECTED and claim.reason == "ORDER_OF_ANOTHER_SHOPPER"
    assert balance_of("bob") == before and balance_of("alice") == (Decimal(0),) * 4
    assert order().user_id == "bob"
    [rejected] = published("claim.rejected")
    assert rejected["user_id"] == "alice"
    assert audit(world)["ok"]


def test_claim_for_an_order_already_credited_to_the_claimant_resolves_at_once(world):
    reconcile(world, [line("O1", user="alice")], now=T0)
    before = balance_of("alice")
    claim, _ = claim_service(world).file(request(), now=T0 + DAY)
    assert claim.state == ClaimState.RESOLVED and balance_of("alice") == before


def test_two_claimants_of_an_unattributed_order_both_wait_for_an_agent(world):
    service = claim_service(world)
    first, _ = service.file(request(user="alice"), now=T0)
    second, _ = service.file(request(user="bob"), now=T0 + timedelta(hours=1))
    reconcile(world, [unattributed("O1")], now=T0 + DAY)
    cycle(world, now=T0 + DAY)
    assert {service.show(first.claim_id).state, service.show(second.claim_id).state} == {ClaimState.NEEDS_REVIEW}
    assert order().state == "unattributed" and balance_of("alice") == balance_of("bob") == (Decimal(0),) * 4
    assert {message["user_id"] for message in published("claim.escalated")} == {"alice", "bob"}


def test_unmatched_claim_escalates_after_the_configured_time(world, monkeypatch):
    monkeypatch.setenv("CLAIM_ESCALATE_AFTER_DAYS", "3")
    world = Settings.from_env()  # the stack's settings as a cold start reads them, with the setting
    service = claim_service(world)
    claim, _ = service.file(request(number="NEVER"), now=T0)
    assert claim.escalate_at == T0 + 3 * DAY

    cycle(world, now=T0 + 2 * DAY)
    assert service.show(claim.claim_id).state == ClaimState.OPEN
    cycle(world, now=T0 + 3 * DAY)
    escalated = service.show(claim.claim_id)
    assert escalated.state == ClaimState.ESCALATED and escalated.searched
    [message] = published("claim.escalated")
    assert message["searched"] and message["claim_id"] == claim.claim_id
    cycle(world, now=T0 + 4 * DAY)
    assert len(published("claim.escalated")) == 1  # once

    # the order shows up later after all: the escalated claim still resolves
    reconcile(world, [unattributed("NEVER", ordered_at=T0)], now=T0 + 5 * DAY)
    assert service.show(claim.claim_id).state == ClaimState.RESOLVED


def test_default_escalation_is_the_report_delay_plus_seven_days(world):
    claim, _ = claim_service(world).file(request(number="NEVER"), now=T0)
    assert claim.escalate_at == T0 + timedelta(days=5 + 7)


def test_claim_of_a_shopper_without_clicks_is_rejected(world):
    claim, _ = claim_service(world).file(request(user="stranger"), now=T0)
    assert claim.state == ClaimState.REJECTED and claim.reason == "UNKNOWN_SHOPPER"


def test_claimed_order_confirms_and_stays_with_the_claimant(world):
    reconcile(world, [unattributed("O1")], now=T0)
    claim_service(world).file(request(), now=T0 + DAY)
    reconcile(world, [unattributed("O1", status="settled", at=T0 + 2 * DAY)], now=T0 + 2 * DAY)
    cycle(world, now=T0 + 4 * DAY)
    assert order().state == "confirmed"
    assert balance_of("alice")[:2] == (Decimal(0), Decimal("5.00"))
    assert audit(world)["ok"], audit(world)["differences"]
    for event_type in ("cashback.pending", "cashback.confirmed", "claim.resolved"):
        assert published(event_type)
