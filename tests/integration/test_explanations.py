"""Explanations read from the ledger tell what happened to the money: a claw-back, an expiry, a refused report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accrual.composition import composition
from support.ledger import T0, line, load_reference_data
from support.readers import explain


@pytest.fixture
def ledger(stack):
    load_reference_data(stack, users={"alice": "USD"})
    return composition(stack).ledger()


def test_a_reversed_order_is_explained_as_confirmed_then_clawed_back(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A", amount="220.00", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    ledger.reconcile(
        [line("A", amount="220.00", status="invalid", status_detail="FullRefund", at=settled_at + timedelta(days=5))],
        now=settled_at + timedelta(days=5),
    )

    english = explain(stack, "A")["explanation"]
    assert "11.00 USD was confirmed and then clawed back" in english.splitlines()[0]
    assert ": 11.00 USD became pending" in english and ": 11.00 USD was confirmed" in english
    assert ": 11.00 USD of confirmed cashback was clawed back" in english
    russian = explain(stack, "A", lang="ru")["explanation"]
    assert "11.00 USD было подтверждено, а затем списано обратно" in russian


def test_an_expired_unpaid_order_is_not_said_to_be_paid(stack, ledger):
    ledger.reconcile([line("A", amount="70.00", status="awaiting_payment", paid_at=None)], now=T0)
    ledger.confirm(now=T0 + timedelta(days=3, seconds=1))

    order = explain(stack, "A")
    assert order["state"] == "declined"
    assert "paid 70.00 USD" not in order["explanation"]
    assert "ordered for 70.00 USD and not paid" in order["explanation"]
    assert "not paid within 3 days" in order["explanation"]


def test_a_refused_report_is_explained_with_its_reason(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    ledger.reconcile([line("A", status="paid", at=settled_at + timedelta(days=2))], now=settled_at + timedelta(days=2))

    english = explain(stack, "A")["explanation"]
    assert "the store's report that item A-1 is paid" in english
    assert "was not applied: confirmed cashback does not go back to pending" in english
    russian = explain(stack, "A", lang="ru")["explanation"]
    assert "подтверждённый кэшбэк не возвращается в ожидание" in russian
