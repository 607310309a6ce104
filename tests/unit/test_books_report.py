"""The month's report on the in-memory ledger: a month of orders whose answers are worked out by hand here (5% of
100.00 is 5.00; the commission each line reports), against the figures the report reads from the ledger."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from accrual.domain.claims import Claim, ClaimState
from accrual.domain.lifecycle import ReviewVerdict
from accrual_dev.books.report import (
    LagHistogram,
    Quarantined,
    merged_books,
    month_books,
    month_bounds,
    month_report,
    quarantined_line,
    reason_kind,
)
from support.books import march_ledger
from support.ledger import T0, line
from support.memory import memory_ledger

D = Decimal


@pytest.fixture(scope="module")
def month():
    return march_ledger()


def quarantine_and_claims():
    quarantined = [
        Quarantined("aliexpress", T0),
        Quarantined("aliexpress", T0 + timedelta(days=30, hours=12)),  # 31 March: still March
        Quarantined("admitad", T0 + timedelta(days=2)),
        Quarantined("admitad", T0 + timedelta(days=31)),  # 1 April
    ]

    def claim(number: str, state: ClaimState, filed: datetime, order_key: str | None = None) -> Claim:
        return Claim(number, "bob", number, filed, filed + timedelta(days=12), state, order_key=order_key)

    claims = [
        claim("c1", ClaimState.RESOLVED, T0, "aliexpress#A"),
        claim("c2", ClaimState.ESCALATED, T0 + timedelta(days=3)),
        claim("c3", ClaimState.OPEN, T0 - timedelta(days=2)),  # February
        # filed in April about an order the shopper says was placed on 30 March: March's
        replace(claim("c4", ClaimState.ESCALATED, T0 + timedelta(days=35)), ordered_on=date(2026, 3, 30)),
        # filed in March about a February order: February's
        replace(claim("c5", ClaimState.OPEN, T0), ordered_at=T0 - timedelta(days=3)),
    ]
    return quarantined, claims


def test_the_months_figures_equal_the_hand_worked_answers(month):
    quarantined, claims = quarantine_and_claims()
    report = month_report(month.store, "2026-03", quarantined=quarantined, claims=claims)
    ali = report["partners"]["aliexpress"]
    assert ali["orders"] == {"confirmed": 1, "declined": 2, "pending": 2, "reversed": 1}
    assert ali["cashback_usd"] == {
        "pending": "10.00",  # A 5.00 + F 5.00
        "confirmed": "5.00",  # B
        "declined": "5.00",  # D's pending voided (C never had any)
        "reversed": "5.00",  # E's confirmed clawed back
    }
    assert ali["by_currency"]["EUR"] == {"pending": "4.50", "confirmed": "0.00", "declined": "0.00", "reversed": "4.50"}
    assert ali["by_currency"]["USD"] == {"pending": "5.00", "confirmed": "5.00", "declined": "5.00", "reversed": "0.00"}
    # A 7.00 + B 1.00 + F 2.00 (its excluded line's 9.00 is not earned from)
    assert ali["commission_usd"] == "10.00"
    assert ali["margin_usd"] == "-5.00"  # 10.00 - (5.00 + 5.00 + 5.00)
    assert ali["lines"] == {"invalid": 2, "paid": 4, "settled": 1}
    assert report["partners"]["admitad"]["orders"] == {"declined": 1}
    assert report["negative_margin"] == [
        {
            "order_id": "B",
            "partner": "aliexpress",
            "state": "confirmed",
            "cashback_usd": "5.00",
            "commission_usd": "1.00",
            "margin_usd": "-4.00",
        },
        {
            "order_id": "F",
            "partner": "aliexpress",
            "state": "pending",
            "cashback_usd": "5.00",
            "commission_usd": "2.00",
            "margin_usd": "-3.00",
        },
    ]
    assert report["exclusions"] == {"NO_RATE_CARD": 1, "PARTNER_INVALID": 1, "SHOP_EXCLUDED": 1}
    assert report["exclusions_by_shop"] == [
        {"shop": "s1", "orders": 2, "reasons": {"NO_RATE_CARD": 1, "PARTNER_INVALID": 1}},
        {"shop": "plaza", "orders": 1, "reasons": {"SHOP_EXCLUDED": 1}},
    ]
    assert report["quarantined"] == {"admitad": 1, "aliexpress": 2}
    assert report["claims"] == {"escalated": 2, "resolved": 1}
    assert report["totals"]["orders"] == 7
    assert report["totals"]["cashback_usd"]["pending"] == "10.00"


def test_the_lags_are_read_from_the_journal(month):
    lag = month_report(month.store, "2026-03")["lag"]
    # A, B, D, E and F became pending 2 hours after the order (T0 + 2 h)
    assert lag["order_to_pending"] == {
        "orders": 5,
        "p50_hours": "2.00",
        "p90_hours": "2.00",
        "p99_hours": "2.00",
        "max_hours": "2.00",
    }
    # B and E confirmed by the cycle 1 day 3 hours after their settlement
    assert lag["settlement_to_confirmed"]["orders"] == 1  # E's lines are invalid now: only B still has a settlement
    assert lag["settlement_to_confirmed"]["p50_hours"] == "27.00"


def test_one_partner_and_another_month():
    ledger = memory_ledger(partners=["aliexpress", "admitad"])
    ledger.reconcile([line("A"), line("H", partner="admitad")], now=T0)
    only = month_report(ledger.store, "2026-03", partner="admitad")
    assert list(only["partners"]) == ["admitad"] and only["partner"] == "admitad"
    april = month_report(ledger.store, "2026-04")
    assert april["partners"] == {} and april["totals"]["orders"] == 0 and len(april["daily"]) == 30


def test_the_report_is_the_same_on_every_run_whatever_the_scan_order_and_the_threads(month):
    first = json.dumps(month_report(month.store, "2026-03"), sort_keys=True)
    store = month.store
    keys = list(store.orders_placed("2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z"))
    reversed_store = _ReversedScan(store, keys[::-1])
    assert json.dumps(month_report(reversed_store, "2026-03"), sort_keys=True) == first
    assert json.dumps(month_report(reversed_store, "2026-03", workers=4), sort_keys=True) == first


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_the_books_read_in_parts_and_added_up_are_the_books_read_whole(month, parts):
    """`accrual report` reads a month in several processes, each a share of the orders, and adds their books up."""
    whole = json.dumps(month_report(month.store, "2026-03"), sort_keys=True)
    keys = list(month.store.orders_placed("2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z"))
    assert len(keys) > parts
    shares = [month_books(month.store, "2026-03", keys=keys[part::parts]) for part in range(parts)]
    added = json.dumps(month_report(month.store, "2026-03", books=merged_books(shares[::-1])), sort_keys=True)
    assert added == whole
    # the processes' shares of the store's month scan, each read by threads of its own
    for threads in (1, 2):
        scanned = [month_books(month.store, "2026-03", part=(part, parts), workers=threads) for part in range(parts)]
        assert json.dumps(month_report(month.store, "2026-03", books=merged_books(scanned)), sort_keys=True) == whole


class _ReversedScan:
    def __init__(self, store, keys):
        self._store, self._keys = store, keys

    def __getattr__(self, name):
        return getattr(self._store, name)

    def month_orders(self, since, until, *, partner=None, part=None):
        orders = list(self._store.month_orders(since, until, partner=partner, part=part))
        yield from sorted(orders, key=lambda order: self._keys.index(order[0].order.key))


def test_held_and_released_orders_count_by_their_state():
    ledger = memory_ledger(max_cashback_share="1.0")
    ledger.reconcile([line("A", commission="1.00"), line("B", commission="2.00")], now=T0)
    ledger.review("aliexpress#B", ReviewVerdict.DECLINED, now=T0)
    report = month_report(ledger.store, "2026-03")
    assert report["partners"]["aliexpress"]["orders"] == {"declined": 1, "on_review": 1}
    assert report["exclusions"] == {"OVER_COMMISSION_SHARE": 1}
    assert report["negative_margin"] == []  # neither earns


def test_daily_accruals_cover_every_day_of_the_month(month):
    daily = month_report(month.store, "2026-03")["daily"]
    assert [day["day"] for day in daily][:2] == ["2026-03-01", "2026-03-02"] and len(daily) == 31
    assert daily[0] == {"day": "2026-03-01", "orders": 7, "pending_usd": "10.00", "confirmed_usd": "5.00"}


def test_percentiles_by_nearest_rank():
    histogram = LagHistogram()
    for minutes in range(1, 101):  # 1 .. 100 minutes
        histogram.add(timedelta(minutes=minutes))
    assert histogram.percentile(50) == 50 and histogram.percentile(90) == 90 and histogram.percentile(99) == 99
    assert histogram.as_dict()["max_hours"] == "1.67"


def test_a_month_is_yyyy_mm():
    assert month_bounds("2024-02")[1] == datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2024-13")


def test_a_quarantined_line_counts_for_the_partner_and_the_order_month_it_names():
    quarantined_at = datetime(2026, 4, 2, tzinfo=UTC)
    partners = ["aliexpress", "admitad"]
    normalised = '{"partner": "admitad", "ordered_at": "2026-03-31T23:00:00-02:00", "amount": "a lot"}'
    assert quarantined_line("normalized", normalised, quarantined_at, partners) == Quarantined(
        "admitad", datetime(2026, 4, 1, 1, tzinfo=UTC)
    )
    aliexpress = '{"order_id": 1, "created_time": "2026-03-30 10:00:00", "paid_amount": "x"}'
    assert quarantined_line("aliexpress", aliexpress, quarantined_at, partners).at == datetime(
        2026, 3, 30, 10, tzinfo=UTC
    )
    unknown_partner = '{"partner": "nobody", "ordered_at": "not a time"}'
    assert quarantined_line("normalized", unknown_partner, quarantined_at, partners) == Quarantined(
        "normalized", quarantined_at
    )
    assert quarantined_line("csv-shop", "a;broken;row", quarantined_at, partners) == Quarantined(
        "csv-shop", quarantined_at
    )
    report = month_report(
        memory_ledger().store,
        "2026-03",
        quarantined=[quarantined_line("aliexpress", aliexpress, quarantined_at, partners)],
    )
    assert report["quarantined"] == {"aliexpress": 1}


def test_quarantined_lines_by_the_field_their_reason_names():
    assert reason_kind("amount='a lot': not a decimal number") == "amount"
    assert reason_kind("lines[0].currency='RUR': not an active ISO 4217 code") == "lines[0].currency"
    assert (
        reason_kind("page of an unexpected shape, quarantined whole: no orders")
        == "page of an unexpected shape, quarantined whole"
    )
    at = datetime(2026, 3, 5, tzinfo=UTC)
    report = month_report(
        memory_ledger().store,
        "2026-03",
        quarantined=[
            Quarantined("aliexpress", at, "amount"),
            Quarantined("aliexpress", at, "amount"),
            Quarantined("aliexpress", at, "currency"),
            Quarantined("admitad", at, "partner"),
        ],
    )
    assert report["quarantined"] == {"admitad": 1, "aliexpress": 3}
    assert report["quarantined_by_reason"] == {"admitad": {"partner": 1}, "aliexpress": {"amount": 2, "currency": 1}}
