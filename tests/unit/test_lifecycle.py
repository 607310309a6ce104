"""The order lifecycle table: every allowed and refused transition, as pure functions (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accrual.domain.decision import LineDecision, OrderDecision, Outcome
from accrual.domain.lifecycle import (
    NOTHING,
    EventType,
    Holding,
    OrderState,
    ReviewVerdict,
    Transition,
    event_of,
    latest_lines,
    next_step,
    transition_of,
)
from accrual.domain.models import OrderLine

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
D = Decimal


def line(line_id="L1", status="paid", at=T0, amount="100.00", **extra) -> OrderLine:
    data = dict(
        partner="aliexpress",
        line_id=line_id,
        order_id="O1",
        sub_id="s",
        status=status,
        status_at=at.isoformat(),
        ordered_at=T0.isoformat(),
        amount=amount,
        shipping="0",
        currency="USD",
    )
    data.update(extra)
    return OrderLine.model_validate(data)


def decision(*shares: tuple[str, str], outcome=Outcome.EARNS) -> OrderDecision:
    lines = tuple(
        LineDecision(
            line_id=line_id,
            status="paid",
            base_usd=D("100"),
            rate=D("0.05"),
            rate_source="default",
            raw_cashback_usd=D(cashback),
            cashback_usd=D(cashback),
            exclusion=None,
            reasons=(),
        )
        for line_id, cashback in shares
    )
    total = sum((share.cashback_usd for share in lines), D("0"))
    return OrderDecision(
        partner="aliexpress",
        order_id="O1",
        user_id="u",
        config_version="v",
        outcome=outcome,
        cashback_usd=total,
        account_currency="EUR",
        fx_rate=D("0.90"),
        fx_day=None,
        cashback=total * D("0.90"),
        commission_usd=D("0.00"),
        margin_usd=-total,
        reasons=(),
        lines=lines,
        trail=(),
    )


def step(current, held, the_decision, lines, *, confirming=False, now=T0 + timedelta(days=10), hold_days=0):
    return next_step(
        current,
        held,
        the_decision,
        {item.line_id: item for item in lines},
        fx_rate=D("0.90"),
        hold_days=hold_days,
        awaiting_payment_days=3,
        now=now,
        confirming=confirming,
    )


def pending(usd: str) -> Holding:
    return Holding(pending_usd=D(usd), pending=(D(usd) * D("0.90")).quantize(D("0.01")))


def confirmed(usd: str) -> Holding:
    return Holding(confirmed_usd=D(usd), confirmed=(D(usd) * D("0.90")).quantize(D("0.01")))


def test_a_paid_order_becomes_pending_with_its_cashback_in_both_currencies():
    result = step(None, NOTHING, decision(("L1", "5.00")), [line()])
    assert (result.state, result.holding) == (OrderState.PENDING, Holding(D("5.00"), D("0"), D("4.50"), D("0")))
    assert transition_of(NOTHING, result.holding) == Transition.PENDING
    assert event_of(None, result.state, Transition.PENDING) == EventType.PENDING


def test_an_order_awaiting_payment_holds_nothing_and_is_due_when_the_wait_expires():
    result = step(None, NOTHING, decision(("L1", "5.00")), [line(status="awaiting_payment")])
    assert result.state == OrderState.AWAITING_PAYMENT and result.holding == NOTHING
    assert result.due_at == T0 + timedelta(days=3, microseconds=1)
    assert event_of(None, result.state, None) is None


def test_settled_stays_pending_outside_the_confirmation_cycle_and_is_due_after_the_hold():
    settled = line(status="settled", settled_at=(T0 + timedelta(days=1)).isoformat())
    result = step(OrderState.PENDING, pending("5.00"), decision(("L1", "5.00")), [settled], hold_days=2)
    assert result.state == OrderState.PENDING and result.due_at == T0 + timedelta(days=3)


def test_the_confirmation_cycle_posts_pending_to_confirmed_once_the_hold_has_passed():
    settled = line(status="settled", settled_at=(T0 + timedelta(days=1)).isoformat())
    before_hold = step(
        OrderState.PENDING, pending("5.00"), decision(("L1", "5.00")), [settled], confirming=True, hold_days=30
    )
    assert before_hold.state == OrderState.PENDING
    result = step(OrderState.PENDING, pending("5.00"), decision(("L1", "5.00")), [settled], confirming=True)
    assert (result.state, result.holding) == (OrderState.CONFIRMED, confirmed("5.00"))
    assert transition_of(pending("5.00"), result.holding) == Transition.POST
    assert event_of(OrderState.PENDING, result.state, Transition.POST) == EventType.CONFIRMED


def test_a_buyer_confirmed_receipt_alone_keeps_the_order_pending():
    result = step(
        OrderState.PENDING, pending("5.00"), decision(("L1", "5.00")), [line(status="received")], confirming=True
    )
    assert result.state == OrderState.PENDING and result.due_at is None


def test_a_changed_amount_adjusts_pending():
    result = step(OrderState.PENDING, pending("5.00"), decision(("L1", "4.00")), [line()])
    assert result.holding == pending("4.00")
    assert transition_of(pending("5.00"), result.holding) == Transition.ADJUST
    assert event_of(OrderState.PENDING, result.state, Transition.ADJUST) == EventType.UPDATED


def test_an_invalidated_pending_order_is_declined_and_its_pending_voided():
    result = step(
        OrderState.PENDING, pending("5.00"), decision(("L1", "0"), outcome=Outcome.NOTHING), [line(status="invalid")]
    )
    assert (result.state, result.holding) == (OrderState.DECLINED, NOTHING)
    assert transition_of(pending("5.00"), NOTHING) == Transition.VOID
    assert event_of(OrderState.PENDING, result.state, Transition.VOID) == EventType.DECLINED


def test_a_declined_order_comes_back_when_a_newer_line_says_it_is_paid():
    result = step(OrderState.DECLINED, NOTHING, decision(("L1", "5.00")), [line()])
    assert result.state == OrderState.PENDING


def test_an_invalidated_confirmed_order_is_reversed_by_the_whole_confirmed_amount():
    result = step(
        OrderState.CONFIRMED,
        confirmed("5.00"),
        decision(("L1", "0"), outcome=Outcome.NOTHING),
        [line(status="invalid")],
    )
    assert (result.state, result.holding) == (OrderState.REVERSED, NOTHING)
    assert transition_of(confirmed("5.00"), NOTHING) == Transition.REVERSE
    assert event_of(OrderState.CONFIRMED, result.state, Transition.REVERSE) == EventType.REVERSED


def test_a_partial_refund_after_confirmation_claws_back_only_the_refunded_part():
    result = step(
        OrderState.CONFIRMED,
        confirmed("5.00"),
        decision(("L1", "3.00"), ("L2", "0")),
        [line(status="settled"), line("L2", status="invalid")],
    )
    assert (result.state, result.holding) == (OrderState.CONFIRMED, confirmed("3.00"))


@pytest.mark.parametrize(
    "the_decision, lines, reason",
    [
        (decision(("L1", "5.00")), [line(status="paid")], "confirmed does not go back to pending"),
        (decision(("L1", "6.00")), [line(status="settled")], "confirmed amount does not grow"),
    ],
)
def test_refused_transitions_of_a_confirmed_order_change_nothing(the_decision, lines, reason):
    result = step(OrderState.CONFIRMED, confirmed("5.00"), the_decision, lines)
    assert (result.state, result.holding, result.refused) == (OrderState.CONFIRMED, confirmed("5.00"), reason)


def test_a_reversed_order_is_final():
    result = step(OrderState.REVERSED, NOTHING, decision(("L1", "5.00")), [line(status="settled")], confirming=True)
    assert (result.state, result.holding, result.refused) == (OrderState.REVERSED, NOTHING, "reversed is final")


def test_unattributed_and_on_review_hold_nothing():
    assert (
        step(None, NOTHING, decision(("L1", "0"), outcome=Outcome.UNATTRIBUTED), [line()]).state
        == OrderState.UNATTRIBUTED
    )
    held = step(OrderState.PENDING, pending("5.00"), decision(("L1", "5.00"), outcome=Outcome.ON_REVIEW), [line()])
    assert (held.state, held.holding) == (OrderState.ON_REVIEW, NOTHING)
    assert event_of(OrderState.PENDING, held.state, Transition.VOID) == EventType.UPDATED
    assert event_of(None, OrderState.UNATTRIBUTED, None) is None


def test_only_lines_past_payment_count_in_pending():
    result = step(None, NOTHING, decision(("L1", "5.00"), ("L2", "3.00")), [line(), line("L2", "awaiting_payment")])
    assert result.holding == pending("5.00")


def test_an_older_status_arriving_after_a_newer_one_changes_nothing():
    newer = line(status="settled", at=T0 + timedelta(days=2))
    older = line(status="paid", at=T0 + timedelta(days=1))
    merged, changed, stale = latest_lines({"L1": newer}, [older])
    assert merged["L1"] == newer and changed == [] and stale == [older]


def test_a_repeated_line_changes_nothing_and_a_newer_one_replaces_it():
    current = line()
    merged, changed, stale = latest_lines({"L1": current}, [current])
    assert (changed, stale) == ([], [])
    newer = line(status="settled", at=T0 + timedelta(hours=1))
    merged, changed, _ = latest_lines({"L1": current}, [newer])
    assert merged["L1"] == newer and changed == [newer]


def test_two_versions_with_the_same_time_end_the_same_whatever_arrives_first():
    first, second = line(amount="10.00"), line(amount="12.00")
    one, _, _ = latest_lines({}, [first, second])
    other, _, _ = latest_lines({}, [second, first])
    assert one == other


def test_a_pending_order_with_a_sub_order_awaiting_payment_is_due_when_that_wait_expires():
    result = step(None, NOTHING, decision(("L1", "5.00"), ("L2", "3.00")), [line(), line("L2", "awaiting_payment")])
    assert result.due_at == T0 + timedelta(days=3, microseconds=1)


def test_a_verdict_releases_or_declines_an_order_held_for_review():
    held = decision(("L1", "5.00"), outcome=Outcome.ON_REVIEW)
    released = next_step(
        OrderState.ON_REVIEW,
        NOTHING,
        held,
        {"L1": line()},
        fx_rate=D("0.90"),
        hold_days=0,
        awaiting_payment_days=3,
        now=T0,
        confirming=False,
        review=ReviewVerdict.RELEASED,
    )
    assert (released.state, released.holding) == (OrderState.PENDING, pending("5.00"))
    declined = next_step(
        OrderState.ON_REVIEW,
        NOTHING,
        held,
        {"L1": line()},
        fx_rate=D("0.90"),
        hold_days=0,
        awaiting_payment_days=3,
        now=T0,
        confirming=False,
        review=ReviewVerdict.DECLINED,
    )
    assert (declined.state, declined.holding) == (OrderState.DECLINED, NOTHING)
