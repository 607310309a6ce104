"""The operator CLI as an operator runs it: the console script against the local stack, with partner pages in the
shapes the partners publish."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "accrual"
CONFIG = {
    "version": "cli-1",
    "rate_cards": [
        {"partner": "aliexpress", "valid_from": "2026-01-01T00:00:00Z", "valid_to": None, "default_rate": "0.03",
         "non_affiliate_rate": "0.01", "hot_product_rate": "0.12", "categories": {"100001": "0.055"}},
        {"partner": "admitad", "valid_from": "2026-01-01T00:00:00Z", "valid_to": None, "default_rate": "0.04",
         "categories": {"100001": "0.06"}},
    ],
    "promotions": [{"partner": "aliexpress", "categories": ["100001"], "rate": "0.08",
                    "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-11-02T00:00:00Z"}],
    "excluded_shops": [], "virtual_categories": ["gift_cards"], "vat_rates": {"RU": "0.20"},
    "fx_rates": {"2026-10-01": {"RUB": "90.00"}}, "cap_usd": "40.00", "min_cashback_usd": "0.01",
    "awaiting_payment_days": 3, "hold_days": {"aliexpress": 0, "admitad": 0},
}
CLICKS = [
    {"sub_id": "click-1", "user_id": "masha", "clicked_at": "2026-11-01T09:00:00Z", "partner": "aliexpress",
     "account_currency": "RUB", "country": "RU"},
    {"sub_id": "click-2", "user_id": "masha", "clicked_at": "2026-11-03T17:50:00Z", "partner": "admitad",
     "account_currency": "RUB", "country": "RU"},
]


def aliexpress_order(sub_order_id, **overrides):
    order = {"order_id": 8000123456789, "sub_order_id": sub_order_id, "order_status": "Payment Completed",
             "paid_amount": 12000, "finished_amount": 0, "estimated_paid_commission": 840,
             "commission_rate": "7.00%", "settled_currency": "USD", "is_hot_product": "N",
             "is_affiliate_product": "Y", "category_id": 100001, "product_id": 1005001234, "product_count": 1,
             "tracking_id": "default", "custom_parameters": "{\"sub_id\":\"click-1\"}", "ship_to_country": "RU",
             "created_time": "2026-11-03 10:00:00", "paid_time": "2026-11-03 10:05:00"}
    order.update(overrides)
    return order


def aliexpress_page(*orders):
    return {"aliexpress_affiliate_order_listbyindex_response": {"resp_result": {
        "resp_code": 200, "resp_msg": "call succeeds",
        "result": {"current_record_count": len(orders), "max_query_index_id": "9", "min_query_index_id": "1",
                   "orders": {"order": list(orders)}}}, "request_id": "0ba2887315178178017221014"}}


@pytest.fixture
def accrual(stack, tmp_path):
    env = {**os.environ, "ACCRUAL_STACK": stack.stack}

    def run(*args, expect: int = 0):
        result = subprocess.run([str(CLI), *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == expect, (args, result.stdout[-2000:], result.stderr[-2000:])
        return result

    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "clicks.jsonl").write_text("".join(json.dumps(click) + "\n" for click in CLICKS))
    run("config", "load", tmp_path / "config.json")
    run("clicks", "load", tmp_path / "clicks.jsonl")
    return run


def test_a_bad_configuration_is_refused_naming_the_field_and_the_value(accrual, tmp_path):
    bad = {**CONFIG, "version": "cli-2", "cap_usd": "-5"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    result = accrual("config", "load", tmp_path / "bad.json", expect=2)
    assert "cap_usd" in result.stderr and "-5" in result.stderr


def test_an_aliexpress_page_is_ingested_explained_and_its_bad_line_quarantined(accrual, tmp_path):
    page = aliexpress_page(
        aliexpress_order(8000123456790),  # 120.00 USD to Russia, VAT 20% inside: base 100.00 at the promo 8%
        aliexpress_order(8000123456791, is_affiliate_product="N", paid_amount=5000),  # 50.00 / 1.2 at 1%
        aliexpress_order(8000123456792, paid_amount="twelve"),
    )
    (tmp_path / "page.json").write_text(json.dumps(page))
    counts = json.loads(accrual("ingest", tmp_path / "page.json", "--partner", "aliexpress", "--now",
                                "2026-11-04T00:00:00Z").stdout)
    assert (counts["read"], counts["accepted"], counts["quarantined"]) == (3, 2, 1)
    assert "paid_amount" in counts["quarantine_reasons"][0]

    order = json.loads(accrual("explain", "8000123456789", "--json").stdout)
    assert order["state"] == "pending" and order["cashback_usd"] == "8.42"  # 8.00 + 0.4167 → 0.42
    assert {"PROMO_RATE_AT_CLICK", "VAT_EXCLUDED", "NON_AFFILIATE_RATE", "FX_CONVERTED"} <= set(order["reasons"])
    assert order["account_currency"] == "RUB" and order["cashback"] == "757.80"
    words = accrual("explain", "8000123456789", "--lang", "ru").stdout
    assert "8.42" in words and any("а" <= letter <= "я" for letter in words)

    balance = json.loads(accrual("balance", "masha", "--json").stdout)
    assert (balance["pending_usd"], balance["pending"], balance["confirmed_usd"]) == ("8.42", "757.80", "0.00")
    accrual("audit")

    again = json.loads(accrual("ingest", tmp_path / "page.json", "--partner", "aliexpress", "--now",
                               "2026-11-04T01:00:00Z").stdout)
    assert again["reconciled"].get("orders_changed", 0) == 0
    assert json.loads(accrual("balance", "masha", "--json").stdout) == balance


def test_an_admitad_page_is_ingested_and_confirmed_when_approved(accrual, tmp_path):
    def action(status, updated):
        return {"id": 31, "action_id": 555001, "order_id": "A-1001", "status": status, "cart": "50.00",
                "payment": "3.00", "currency": "USD", "subid": "click-2", "promocode": "",
                "action_date": "2026-11-03 18:00:00", "click_date": "2026-11-03 17:50:00",
                "closing_date": "2026-12-03 18:00:00", "status_updated": updated, "processed": 0, "paid": 0,
                "positions": [{"id": 1, "amount": "50.00", "payment": "3.00", "rate": "6", "percentage": True,
                               "product_id": "p1", "product_category_id": "100001",
                               "datetime": "2026-11-03 18:00:00"}]}

    for status, updated in (("approved", "2026-11-20 10:00:00"), ("pending", "2026-11-03 18:05:00")):
        page = {"results": [action(status, updated)], "_meta": {"count": 1, "limit": 100, "offset": 0}}
        (tmp_path / f"{status}.json").write_text(json.dumps(page))
        accrual("ingest", tmp_path / f"{status}.json", "--partner", "admitad", "--now", "2026-11-21T00:00:00Z")
    assert json.loads(accrual("explain", "A-1001", "--json").stdout)["state"] == "pending"
    accrual("confirm", "--now", "2026-11-21T00:00:00Z")
    order = json.loads(accrual("explain", "555001", "--json").stdout)  # the partner's number finds it too
    assert order["state"] == "confirmed" and order["cashback_usd"] == "3.00"
    balance = json.loads(accrual("balance", "masha", "--json").stdout)
    assert Decimal(balance["confirmed_usd"]) == Decimal("3.00") and Decimal(balance["pending_usd"]) == 0
    audit = json.loads(accrual("audit", "--json").stdout)
    assert audit["ok"] and audit["orders"] == 1
