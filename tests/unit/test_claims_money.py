"""Money where claims meet late clicks, renumbered lines and rival claimants (docs/claims.md), on the in-memory
stores: a claim's attribution is a fact of the order, posted money never changes shopper, a claim follows its partner
line, an order number alone is not evidence, and an agent's verdict goes through the ledger."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from accrual.domain.claims import ClaimRequest, ClaimState
from accrual.domain.lifecycle import ReviewVerdict
from accrual.domain.models import Click
from support.claims import memory_claims
from support.ledger import T0, line
from support.memory import memory_ledger
from support.readers import audit, explain
from support.schemas import assert_valid_message

DAY = timedelta(days=1)
USERS = {"ua": "USD", "ub": "USD", "ux": "USD"}


def lost(order: str = "O1", **changes):
    """A line whose tracking value finds no click (the shopper's click was lost)."""
    return line(order, sub_id="lost-1", **changes)


def evidence(user: str, number: str = "O1", **changes) -> ClaimRequest:
    data = {"user_id": user, "order_number": number, "ordered_at": T0.isoformat(), "amount": "100", "currency": "USD"}
    return ClaimRequest.model_validate({**data, **changes})


def world():
    ledger = memory_ledger(USERS)
    return ledger, memory_claims(ledger)


def page(ledger, claims, lines, now):
    ledger.reconcile(lines, now=now)
    claims.after_reconcile(lines, now=now)


def held(ledger, user: str) -> tuple[Decimal, Decimal]:
    stored = ledger.store.balance(user)
    return (stored.holding.pending_usd, stored.holding.confirmed_usd) if stored else (Decimal(0), Decimal(0))


def order(ledger, key: str = "aliexpress#O1"):
    return ledger.load_order(key).record


def late_click(ledger, user: str = "ux") -> None:
    click = Click(
        sub_id="lost-1", user_id=user, clicked_at=T0 - timedelta(hours=2), partner="aliexpress", account_currency="USD"
    )
    ledger.store.save_clicks([click])


def messages(ledger, event_type: str) -> list[dict]:
    bodies = [json.loads(item.message.body) for item in ledger.store.outbox.values()]
    found = [body for body in bodies if body["event_type"] == event_type]
    for body in found:
        assert_valid_message(body)
    return found


def assert_clean(ledger) -> None:
    result = audit(ledger.store)
    assert result["ok"], result["differences"]


# ---- posted money never changes shopper ---------------------------------------------------------------------------
@pytest.mark.parametrize("again", ["newer", "same"])
def test_a_click_loaded_after_posting_never_moves_the_claimants_money(again):
    ledger, claims = world()
    settled_at = T0 + DAY
    page(ledger, claims, [lost(status="settled", at=settled_at)], settled_at)
    claim, _ = claims.file(evidence("ua"), now=settled_at)
    assert claim.state == ClaimState.RESOLVED
    ledger.confirm(now=settled_at + 2 * DAY)
    assert held(ledger, "ua") == (0, Decimal("5.00")) and order(ledger).state == "confirmed"

    late_click(ledger)
    status_at = settled_at + (3 * DAY if again == "newer" else timedelta(0))
    page(ledger, claims, [lost(status="settled", at=status_at)], settled_at + 3 * DAY)
    ledger.confirm(now=settled_at + 4 * DAY)

    assert held(ledger, "ua") == (0, Decimal("5.00")) and held(ledger, "ux") == (0, 0)
    assert order(ledger).user_id == "ua" and order(ledger).state == "confirmed"
    assert not messages(ledger, "cashback.reversed")
    assert_clean(ledger)
    results, _ = ledger.redecide(["aliexpress#O1"], now=settled_at + 5 * DAY)
    assert results[0].outcome == "skipped_confirmed"


def test_before_posting_a_click_that_contradicts_a_claim_holds_the_order_for_review():
    ledger, claims = world()
    page(ledger, claims, [lost()], T0)
    claims.file(evidence("ua"), now=T0 + DAY)
    assert held(ledger, "ua") == (Decimal("5.00"), 0)

    late_click(ledger)
    page(ledger, claims, [lost(at=T0 + 2 * DAY)], T0 + 2 * DAY)

    record = order(ledger)
    assert record.state == "on_review" and record.holding.is_zero
    assert "ATTRIBUTION_CONFLICT" in explain(ledger.store, "O1")["reasons"]
    [claim] = claims.list_claims()
    assert claim.state == ClaimState.NEEDS_REVIEW and claim.reason == "CONTESTED"
    assert held(ledger, "ua") == held(ledger, "ux") == (0, 0)
    assert_clean(ledger)

    ledger.review("aliexpress#O1", ReviewVerdict.RELEASED, now=T0 + 3 * DAY, user_id="ua")
    claims.after_orders_changed(["aliexpress#O1"], now=T0 + 3 * DAY)
    assert order(ledger).user_id == "ua" and held(ledger, "ua") == (Decimal("5.00"), 0)
    assert claims.list_claims()[0].state == ClaimState.RESOLVED
    assert_clean(ledger)


def test_an_order_released_to_the_clicks_shopper_rejects_the_claim():
    ledger, claims = world()
    page(ledger, claims, [lost()], T0)
    claims.file(evidence("ua"), now=T0 + DAY)
    late_click(ledger)
    page(ledger, claims, [lost(at=T0 + 2 * DAY)], T0 + 2 * DAY)

    ledger.review("aliexpress#O1", ReviewVerdict.RELEASED, now=T0 + 3 * DAY, user_id="ux")
    claims.after_orders_changed(["aliexpress#O1"], now=T0 + 3 * DAY)

    assert order(ledger).user_id == "ux" and held(ledger, "ux") == (Decimal("5.00"), 0) and held(ledger, "ua") == (0, 0)
    [claim] = claims.list_claims()
    assert claim.state == ClaimState.REJECTED and claim.reason == "ORDER_OF_ANOTHER_SHOPPER"
    assert messages(ledger, "claim.rejected")[0]["user_id"] == "ua"
    assert_clean(ledger)


# ---- a claim follows its partner line --------------------------------------------------------------------------------
def test_a_claim_follows_its_partner_line_to_the_stores_order_number():
    ledger, claims = world()
    first = lost("7001", line_id="action-7001", partner_order_id="7001", amount="50.00")
    page(ledger, claims, [first], T0)
    claim, _ = claims.file(evidence("ua", "7001", amount="50"), now=T0 + DAY)
    assert claim.state == ClaimState.RESOLVED and held(ledger, "ua") == (Decimal("2.50"), 0)

    renumbered = lost("STORE-9", line_id="action-7001", partner_order_id="7001", amount="50.00", at=T0 + 2 * DAY)
    page(ledger, claims, [renumbered], T0 + 2 * DAY)

    assert held(ledger, "ua") == (Decimal("2.50"), 0)
    moved_to = order(ledger, "aliexpress#STORE-9")
    assert moved_to.user_id == "ua" and moved_to.state == "pending"
    assert order(ledger, "aliexpress#7001").state == "moved"
    after = claims.show(claim.claim_id)
    assert after.state == ClaimState.RESOLVED and after.order_key == "aliexpress#STORE-9"
    assert_clean(ledger)


# ---- an order number alone is not evidence ------------------------------------------------------------------------
@pytest.mark.parametrize("given", [{"amount": None, "currency": None}, {"ordered_at": None}])
def test_a_claim_without_amount_or_date_waits_for_an_agent(given):
    ledger, claims = world()
    page(ledger, claims, [lost()], T0)
    claim, _ = claims.file(evidence("ua", **given), now=T0 + DAY)
    assert claim.state == ClaimState.NEEDS_REVIEW and claim.reason == "NOT_ENOUGH_EVIDENCE"
    assert claim.order_key == "aliexpress#O1" and order(ledger).state == "unattributed"
    [escalated] = messages(ledger, "claim.escalated")
    assert escalated["state"] == "needs_review" and escalated["user_id"] == "ua"

    resolved = claims.resolve(claim.claim_id, approve=True, reason="receipt checked", now=T0 + 2 * DAY)
    assert resolved.state == ClaimState.RESOLVED and resolved.verdict_reason == "receipt checked"
    assert held(ledger, "ua") == (Decimal("5.00"), 0) and order(ledger).user_id == "ua"
    assert messages(ledger, "claim.resolved")[0]["cashback_usd"] == "5.00"
    assert_clean(ledger)


def test_an_agent_rejects_a_claim_and_nothing_moves():
    ledger, claims = world()
    page(ledger, claims, [lost()], T0)
    claim, _ = claims.file(evidence("ua", amount=None, currency=None), now=T0 + DAY)
    rejected = claims.resolve(claim.claim_id, approve=False, reason="no receipt", now=T0 + 2 * DAY)
    assert rejected.state == ClaimState.REJECTED and rejected.reason == "REJECTED_BY_AGENT"
    assert order(ledger).state == "unattributed" and held(ledger, "ua") == (0, 0)
    assert messages(ledger, "claim.rejected")[0]["reason"] == "REJECTED_BY_AGENT"
    with pytest.raises(ValueError, match="nothing left to decide"):
        claims.resolve(claim.claim_id, approve=True, reason="changed my mind", now=T0 + 3 * DAY)


@pytest.mark.parametrize("claims_first", [True, False])
def test_two_claims_on_one_order_both_wait_and_the_agent_gives_it_to_one(claims_first):
    """Both claims before the report: the order stays unattributed. The report first: the first claim credits it, the
    second (before posting) holds it for review. Either way nobody holds money until the agent decides."""
    ledger, claims = world()
    if not claims_first:
        page(ledger, claims, [lost()], T0)
    first, _ = claims.file(evidence("ua"), now=T0 + timedelta(hours=1))
    second, _ = claims.file(evidence("ub"), now=T0 + timedelta(hours=2))
    if claims_first:
        page(ledger, claims, [lost()], T0 + DAY)
    claims.sweep(now=T0 + DAY)
    assert {claims.show(made.claim_id).state for made in (first, second)} == {ClaimState.NEEDS_REVIEW}
    assert order(ledger).state == ("unattributed" if claims_first else "on_review")
    assert held(ledger, "ua") == held(ledger, "ub") == (0, 0)
    assert_clean(ledger)

    claims.resolve(second.claim_id, approve=True, reason="order confirmation shown", now=T0 + 2 * DAY)
    assert order(ledger).user_id == "ub" and held(ledger, "ub") == (Decimal("5.00"), 0)
    assert claims.show(first.claim_id).state == ClaimState.REJECTED
    assert claims.show(first.claim_id).reason == "ANOTHER_CLAIM_APPROVED"
    assert_clean(ledger)


def test_a_second_claim_before_posting_holds_the_order_and_after_posting_is_rejected():
    ledger, claims = world()
    settled_at = T0 + DAY
    page(ledger, claims, [lost(status="settled", at=settled_at)], settled_at)
    first, _ = claims.file(evidence("ua"), now=settled_at)
    assert first.state == ClaimState.RESOLVED and held(ledger, "ua") == (Decimal("5.00"), 0)

    second, _ = claims.file(evidence("ub"), now=settled_at + timedelta(hours=1))
    assert second.state == ClaimState.NEEDS_REVIEW and second.reason == "CONTESTED"
    assert claims.show(first.claim_id).state == ClaimState.NEEDS_REVIEW
    assert order(ledger).state == "on_review" and order(ledger).holding.is_zero
    assert held(ledger, "ua") == held(ledger, "ub") == (0, 0)
    assert_clean(ledger)

    claims.resolve(second.claim_id, approve=False, reason="not the shopper's order", now=settled_at + DAY)
    assert claims.show(first.claim_id).state == ClaimState.RESOLVED
    assert order(ledger).user_id == "ua" and held(ledger, "ua") == (Decimal("5.00"), 0)
    ledger.confirm(now=settled_at + 3 * DAY)
    assert held(ledger, "ua") == (0, Decimal("5.00"))

    third, _ = claims.file(evidence("ux"), now=settled_at + 4 * DAY)
    assert third.state == ClaimState.REJECTED and third.reason == "ORDER_OF_ANOTHER_SHOPPER"
    assert held(ledger, "ua") == (0, Decimal("5.00")) and order(ledger).state == "confirmed"
    assert_clean(ledger)


def test_after_an_agents_approval_a_later_claim_does_not_contest_the_order():
    ledger, claims = world()
    page(ledger, claims, [lost()], T0)
    claim, _ = claims.file(evidence("ua", amount=None, currency=None), now=T0 + DAY)
    claims.resolve(claim.claim_id, approve=True, reason="receipt checked", now=T0 + 2 * DAY)

    later, _ = claims.file(evidence("ub"), now=T0 + 3 * DAY)

    assert later.state == ClaimState.REJECTED and later.reason == "ORDER_OF_ANOTHER_SHOPPER"
    assert order(ledger).user_id == "ua" and held(ledger, "ua") == (Decimal("5.00"), 0)
    assert_clean(ledger)
