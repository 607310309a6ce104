"""A partner's payout statement reconciled against the in-memory ledger: an agreeing statement, one with planted
differences (exactly those are reported), the column map, unreadable rows, and a ledger that does not change."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from accrual_dev.books.statement import (
    StatementError,
    column_map,
    describe,
    read_statement,
    reconcile_statement,
)
from support.ledger import T0, line
from support.memory import memory_ledger, store_snapshot

SETTLED = T0 + timedelta(days=10)


@pytest.fixture(scope="module")
def ledger():
    """Confirmed: P (P-1 commission 2.00, P-2 3.00), Q (Q-1 4.00), R (R-1 4.50 EUR at 0.90 = 5.00 USD).
    Pending: S (S-1 6.00, settled but not yet past the hold). All by alice, ordered in March 2026."""
    ledger = memory_ledger()
    settled = [
        line("P", "P-1", status="settled", at=SETTLED, commission="2.00"),
        line("P", "P-2", status="settled", at=SETTLED, commission="3.00"),
        line("Q", "Q-1", status="settled", at=SETTLED, commission="4.00"),
        line("R", "R-1", status="settled", at=SETTLED, commission="4.50", currency="EUR", usd_rate="0.90"),
    ]
    ledger.reconcile(settled, now=SETTLED)
    ledger.confirm(now=SETTLED + timedelta(days=2))
    late = SETTLED + timedelta(days=2)
    ledger.reconcile([line("S", "S-1", status="settled", at=late, commission="6.00")], now=late)
    return ledger


def rows(text: str, columns: str | None = None):
    return read_statement(io.StringIO(text), column_map(columns))


AGREEING = """line_id,order_id,commission,currency,status
P-1,P,2.00,USD,settled
P-2,P,3.00,USD,settled
,Q,4.00,USD,settled
R-1,R,4.52,EUR,settled
"""

DIFFERING = """line_id,order_id,commission,currency,status
P-1,P,2.00,USD,settled
X-1,X,7.00,USD,settled
Q-1,Q,4.10,USD,settled
R-1,R,4.50,EUR,settled
S-1,S,6.00,USD,settled
P-2,P,3.00,USD,pending
"""


def test_an_agreeing_statement_agrees(ledger):
    before = store_snapshot(ledger.store)
    result = reconcile_statement(ledger.store, rows(AGREEING), partner="aliexpress", month="2026-03")
    assert result["agree"] is True
    assert result["unknown_to_ledger"] == [] and result["unpaid_by_partner"] == []
    assert result["commission_differences"] == []  # 4.52 EUR is 5.02 USD, within 0.05 of 5.00
    assert result["totals"] == {"ledger_usd": "14.00", "statement_usd": "14.02"}  # 2 + 3 + 4 + 5
    assert store_snapshot(ledger.store) == before


def test_planted_differences_are_reported_exactly(ledger):
    before = store_snapshot(ledger.store)
    result = reconcile_statement(ledger.store, rows(DIFFERING), partner="aliexpress")
    assert result["agree"] is False
    assert result["unknown_to_ledger"] == ["X-1"]
    assert result["unpaid_by_partner"] == ["P-2"]  # its row is not a payment (status pending)
    assert result["commission_differences"] == [{"id": "Q-1", "ledger_usd": "4.00", "statement_usd": "4.10"}]
    assert result["not_confirmed_in_ledger"] == [{"id": "S-1", "state": "pending", "statement_usd": "6.00"}]
    assert result["totals"] == {"ledger_usd": "14.00", "statement_usd": "24.10"}  # 2 + 7 + 4.10 + 5 + 6
    assert store_snapshot(ledger.store) == before


def test_the_tolerance_is_a_setting(ledger):
    statement = rows(DIFFERING)
    loose = reconcile_statement(ledger.store, statement, partner="aliexpress", tolerance=Decimal("0.10"))
    assert loose["commission_differences"] == []
    strict = reconcile_statement(ledger.store, rows(AGREEING), partner="aliexpress", tolerance=Decimal("0.01"))
    assert strict["commission_differences"] == [{"id": "R-1", "ledger_usd": "5.00", "statement_usd": "5.02"}]


def test_another_month_has_no_confirmed_lines(ledger):
    result = reconcile_statement(ledger.store, rows(AGREEING), partner="aliexpress", month="2026-04")
    assert result["unpaid_by_partner"] == [] and result["totals"]["ledger_usd"] == "0.00"
    assert [item["id"] for item in result["not_confirmed_in_ledger"]] == ["P-1", "P-2", "Q", "R-1"]
    assert result["agree"] is True  # known lines of another month are shown, not counted as disagreement


def test_a_column_map_names_the_partners_headers(ledger):
    text = "Sub Order;Order;Paid;Cur;State\n".replace(";", ",") + "P-1,P,2.00,USD,SETTLED\n"
    statement = rows(text, "line_id=Sub Order,order_id=Order,commission=Paid,currency=Cur,status=State")
    assert [(row.line_id, row.commission, row.paid) for row in statement] == [("P-1", Decimal("2.00"), True)]


def test_unreadable_rows_are_refused_with_their_row_numbers():
    with pytest.raises(StatementError) as refused:
        rows("line_id,order_id,commission,currency,status\nA,O,1;5,USD,settled\n,,1.00,USD,settled\n")
    assert str(refused.value).splitlines() == [
        "row 2: commission '1;5' is not a decimal number like 12.34",
        "row 3: names neither a line nor an order",
    ]
    with pytest.raises(StatementError, match="no column commission"):
        rows("line_id,order_id,amount,currency,status\n")
    with pytest.raises(StatementError, match="FIELD=HEADER"):
        column_map("amount=Paid")


def test_the_documented_example_statement_reads():
    example = Path(__file__).resolve().parents[2] / "events" / "statement-aliexpress-2026-11.csv"
    with example.open(newline="", encoding="utf-8") as source:
        statement = read_statement(source)
    assert [(row.line_id or row.order_id, row.commission, row.currency, row.paid) for row in statement] == [
        ("8191-1", Decimal("7.00"), "USD", True),
        ("8204", Decimal("4.10"), "USD", True),
        ("8230-1", Decimal("415.00"), "RUB", True),
        ("8230-2", Decimal("0.00"), "RUB", False),
    ]


def test_the_readable_lines_say_what_each_row_is(ledger):
    result = reconcile_statement(ledger.store, rows(DIFFERING), partner="aliexpress")
    assert describe(result) == [
        "aliexpress: the statement differs from the ledger",
        "  ledger (confirmed lines) 14.00 USD, statement (paid rows) 24.10 USD",
        "  paid by the partner, unknown to the ledger: X-1",
        "  confirmed in the ledger, not paid by the partner: P-2",
        "  commission differs: Q-1 ledger 4.00 USD, statement 4.10 USD",
        "  paid, but the ledger has not confirmed it: S-1 (pending)",
    ]
    other_month = reconcile_statement(ledger.store, rows(AGREEING), partner="aliexpress", month="2026-04")
    assert "  paid, confirmed in the ledger for another month: Q" in describe(other_month)
