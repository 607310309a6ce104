"""The margin on every order: the decision records the partner's commission on the lines that earn and what is left
of it after the cashback; `max_cashback_share` holds an order whose cashback would be above that share of its
commission for review (OVER_COMMISSION_SHARE), and the trail, the explanation and the review path say so."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from accrual.domain.config_diff import diff
from accrual.domain.decision import Code, Outcome
from accrual.domain.lifecycle import ReviewVerdict
from accrual.domain.rules import decide_order
from accrual.domain.trail import render_trail
from accrual.service.ledger import Ledger
from support import ledger as ledger_support
from support.builders import NOW, click, config, line
from support.memory import config as memory_config
from support.memory import memory_ledger
from support.readers import audit, explain

D = Decimal


def test_the_commission_of_the_earning_lines_and_the_margin_are_recorded():
    decision = decide_order(
        [
            line("a", amount="100.00", commission="7.00"),  # 3% default rate: 3.00 cashback
            line("b", amount="50.00", commission="4.00", shop_id="plaza"),  # excluded: its commission is not counted
            line("c", amount="20.00", commission="1.30"),  # 0.60 cashback
        ],
        click(),
        config(excluded_shops=["plaza"]),
        now=NOW,
    )
    assert decision.cashback_usd == D("3.60")
    assert decision.commission_usd == D("8.30")
    assert decision.margin_usd == D("4.70")
    assert decision.outcome == Outcome.EARNS


def test_a_commission_in_another_currency_is_converted_at_the_lines_rate():
    decision = decide_order(
        [line(amount="927.00", currency="RUB", usd_rate="92.7", commission="46.35")], click(), config(), now=NOW
    )
    assert decision.commission_usd == D("0.50")  # 46.35 / 92.7
    assert decision.cashback_usd == D("0.30")
    assert decision.margin_usd == D("0.20")


@pytest.mark.parametrize(
    ("share", "commission", "held"),
    [
        (None, "1.00", False),  # absent by default: never held
        ("1.0", "3.00", False),  # cashback 3.00 equals the commission: not strictly above
        ("1.0", "2.99", True),
        ("0.5", "6.00", False),  # 3.00 is exactly half
        ("0.5", "5.99", True),
        ("1.0", "0", True),  # a partner that reports no commission pays nothing: any cashback is above it
    ],
)
def test_an_order_above_the_share_of_its_commission_is_held_for_review(share, commission, held):
    changes = {} if share is None else {"max_cashback_share": share}
    decision = decide_order([line(commission=commission)], click(), config(**changes), now=NOW)
    assert decision.cashback_usd == D("3.00")  # the amount is kept, so an operator can release it
    assert (decision.outcome == Outcome.ON_REVIEW) is held
    assert (Code.OVER_COMMISSION_SHARE.value in decision.reasons) is held
    steps = [step for step in decision.trail if step.rule == "commission_share"]
    assert len(steps) == held
    if held:
        assert steps[0].code == "OVER_COMMISSION_SHARE"
        assert steps[0].numbers["commission_usd"] == str(D(commission).quantize(D("0.01")))


def test_an_order_that_earns_nothing_is_never_held_for_its_commission():
    decision = decide_order([line(shop_id="plaza", commission="0")], click(), config(max_cashback_share="1.0"), now=NOW)
    assert decision.outcome == Outcome.NOTHING and Code.OVER_COMMISSION_SHARE.value not in decision.reasons


@settings(max_examples=100, deadline=None)
@given(
    amount=st.decimals(min_value=1, max_value=3000, places=2),
    commission=st.decimals(min_value=0, max_value=200, places=2),
    share=st.decimals(min_value=0, max_value=3, places=2),
)
def test_the_hold_fires_exactly_when_the_cashback_is_strictly_above_the_share(amount, commission, share):
    decision = decide_order(
        [line(amount=str(amount), commission=str(commission))],
        click(),
        config(max_cashback_share=str(share)),
        now=NOW,
    )
    expected_cashback = min((amount * D("0.03")).quantize(D("0.01"), rounding="ROUND_HALF_UP"), D("40.00"))
    assert decision.cashback_usd == expected_cashback
    assert decision.margin_usd == commission - expected_cashback
    assert (decision.outcome == Outcome.ON_REVIEW) is (expected_cashback > share * commission)


def test_the_explanation_says_why_the_order_is_held_in_both_languages():
    decision = decide_order([line(commission="1.00")], click(), config(max_cashback_share="1.0"), now=NOW)
    english, russian = render_trail(decision, "en"), render_trail(decision, "ru")
    assert "above 1.0 of the store's commission 1.00 USD" in english and "held for review" in english
    assert "комиссии магазина 1.00 USD" in russian and "на проверке" in russian


def test_the_share_is_checked_and_shown_in_the_configuration_diff():
    with pytest.raises(ValidationError, match="max_cashback_share"):
        config(max_cashback_share="-1")
    changes = diff(config(), config(max_cashback_share="1.0"))["changes"]
    assert {"section": "limits", "path": ["limits", "max_cashback_share"], "change": "added", "to": "1.0"} in changes


def test_the_ledger_holds_the_order_and_an_operator_releases_it():
    ledger = memory_ledger(max_cashback_share="1.0")
    now = ledger_support.T0 + timedelta(hours=1)
    ledger.reconcile(
        [ledger_support.line("A", commission="1.00"), ledger_support.line("B", commission="9.00")], now=now
    )
    held, earning = explain(ledger.store, "A"), explain(ledger.store, "B")
    assert held["state"] == "on_review" and "OVER_COMMISSION_SHARE" in held["reasons"]
    assert held["held"]["pending_usd"] == "0.00"
    assert held["commission_usd"] == "1.00" and held["margin_usd"] == "-4.00"  # 5% of 100.00 is 5.00
    assert "held for review" in held["explanation"]
    assert earning["state"] == "pending" and earning["margin_usd"] == "4.00"
    assert ledger.review("aliexpress#A", ReviewVerdict.RELEASED, now=now) == "pending"
    assert explain(ledger.store, "A")["held"]["pending_usd"] == "5.00"
    assert audit(ledger.store)["ok"]


def test_a_hold_never_claws_back_confirmed_money():
    """A configuration that sets the share after an order was confirmed holds the decision for review, but the money
    already confirmed stays: only a refund, dispute or chargeback reverses it."""
    ledger = memory_ledger()
    settled = ledger_support.T0 + timedelta(days=10)
    ledger.reconcile([ledger_support.line("A", status="settled", at=settled, commission="1.00")], now=settled)
    ledger.confirm(now=settled + timedelta(days=2))
    ledger.store.save_config(memory_config(version="ledger-2", max_cashback_share="1.0"))
    later = settled + timedelta(days=3)
    Ledger(store=ledger.store).reconcile(
        [ledger_support.line("A", status="settled", at=later, commission="1.00")], now=later
    )
    explained = explain(ledger.store, "A")
    assert explained["state"] == "confirmed" and explained["held"]["confirmed_usd"] == "5.00"
    assert "OVER_COMMISSION_SHARE" in explained["reasons"]
    assert audit(ledger.store)["ok"]
