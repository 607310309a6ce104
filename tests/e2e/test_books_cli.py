"""`accrual report` and `accrual statement reconcile` as an operator runs them against a stack: a small month ingested,
confirmed and reported (figures worked out by hand), written as HTML, and a payout statement that agrees and one that
does not."""

from __future__ import annotations

import json

from support.cli import operator_cli
from support.ledger import CONFIG

CLICK = {
    "sub_id": "c-bob",
    "user_id": "bob",
    "clicked_at": "2026-03-01T10:00:00Z",
    "partner": "aliexpress",
    "account_currency": "USD",
}
LINE = {
    "partner": "aliexpress",
    "sub_id": "c-bob",
    "status": "settled",
    "status_at": "2026-03-02T00:00:00Z",
    "settled_at": "2026-03-02T00:00:00Z",
    "ordered_at": "2026-03-01T11:00:00Z",
    "paid_at": "2026-03-01T11:05:00Z",
    "amount": "100.00",
    "currency": "USD",
    "category_id": "tools",  # 5%: 5.00 cashback
    "shop_id": "s1",
}


def test_the_months_report_and_a_statement_from_the_cli(stack, tmp_path):
    accrual = operator_cli(stack, tmp_path, {**CONFIG, "version": "v1"}, [CLICK])
    lines = [
        {**LINE, "line_id": "A-1", "order_id": "A", "commission": "7.00"},
        {**LINE, "line_id": "B-1", "order_id": "B", "commission": "1.00"},  # pays 5.00 on 1.00: negative margin
        {**LINE, "line_id": "C-1", "order_id": "C", "commission": "2.00", "shop_id": "plaza"},  # excluded
        {**LINE, "line_id": "D-1", "order_id": "D", "amount": "a lot"},  # quarantined
    ]
    (tmp_path / "lines.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", "2026-03-02T01:00:00Z")
    accrual("confirm", "--now", "2026-03-04T00:00:00Z")  # after the day's hold

    report = json.loads(accrual("report", "--month", "2026-03", "--json", "--html", tmp_path / "books.html").stdout)
    ali = report["partners"]["aliexpress"]
    assert ali["orders"] == {"confirmed": 2, "declined": 1}
    assert ali["cashback_usd"] == {"pending": "0.00", "confirmed": "10.00", "declined": "0.00", "reversed": "0.00"}
    assert ali["commission_usd"] == "8.00" and ali["margin_usd"] == "-2.00"
    assert [(item["order_id"], item["margin_usd"]) for item in report["negative_margin"]] == [("B", "-4.00")]
    assert report["exclusions"] == {"SHOP_EXCLUDED": 1}
    assert report["quarantined"] == {"aliexpress": 1}
    assert report["quarantined_by_reason"] == {"aliexpress": {"amount": 1}}
    assert report["lag"]["settlement_to_confirmed"]["p50_hours"] == "48.00"
    assert "plotly" in (tmp_path / "books.html").read_text(encoding="utf-8")
    assert json.loads(accrual("report", "--month", "2026-02", "--json").stdout)["partners"] == {}

    header = "line_id,order_id,commission,currency,status\n"
    (tmp_path / "agrees.csv").write_text(header + "A-1,A,7.00,USD,settled\nB-1,B,1.00,USD,settled\n")
    agreed = json.loads(
        accrual("statement", "reconcile", tmp_path / "agrees.csv", "--partner", "aliexpress", "--json").stdout
    )
    assert agreed["agree"] is True and agreed["totals"] == {"ledger_usd": "8.00", "statement_usd": "8.00"}

    (tmp_path / "differs.csv").write_text(header + "A-1,A,7.50,USD,settled\nZ-1,Z,3.00,USD,settled\n")
    differs = accrual(
        "statement", "reconcile", tmp_path / "differs.csv", "--partner", "aliexpress", "--month", "2026-03", expect=1
    )
    assert "paid by the partner, unknown to the ledger: Z-1" in differs.stdout
    assert "confirmed in the ledger, not paid by the partner: B-1" in differs.stdout
    assert "commission differs: A-1 ledger 7.00 USD, statement 7.50 USD" in differs.stdout
    assert json.loads(accrual("explain", "A", "--json").stdout)["state"] == "confirmed"  # nothing changed
