"""The operator CLI as an operator runs it: the console script against the local stack, with partner pages in the
shapes the partners publish."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from support.cli import operator_cli

CONFIG = {
    "version": "cli-1",
    "rate_cards": [
        {
            "partner": "aliexpress",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": None,
            "default_rate": "0.03",
            "non_affiliate_rate": "0.01",
            "hot_product_rate": "0.12",
            "categories": {"100001": "0.055"},
        },
        {
            "partner": "admitad",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": None,
            "default_rate": "0.04",
            "categories": {"100001": "0.06"},
        },
    ],
    "promotions": [
        {
            "partner": "aliexpress",
            "categories": ["100001"],
            "rate": "0.08",
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2026-11-02T00:00:00Z",
        }
    ],
    "excluded_shops": [],
    "virtual_categories": ["gift_cards"],
    "vat_rates": {"RU": "0.20"},
    "fx_rates": {"2026-10-01": {"RUB": "90.00"}},
    "cap_usd": "40.00",
    "min_cashback_usd": "0.01",
    "awaiting_payment_days": 3,
    "hold_days": {"aliexpress": 0, "admitad": 0},
}
CLICKS = [
    {
        "sub_id": "click-1",
        "user_id": "masha",
        "clicked_at": "2026-11-01T09:00:00Z",
        "partner": "aliexpress",
        "account_currency": "RUB",
        "country": "RU",
    },
    {
        "sub_id": "click-2",
        "user_id": "masha",
        "clicked_at": "2026-11-03T17:50:00Z",
        "partner": "admitad",
        "account_currency": "RUB",
        "country": "RU",
    },
]


def aliexpress_order(sub_order_id, **overrides):
    order = {
        "order_id": 8000123456789,
        "sub_order_id": sub_order_id,
        "order_status": "Payment Completed",
        "paid_amount": 12000,
        "finished_amount": 0,
        "estimated_paid_commission": 840,
        "commission_rate": "7.00%",
        "settled_currency": "USD",
        "is_hot_product": "N",
        "is_affiliate_product": "Y",
        "category_id": 100001,
        "product_id": 1005001234,
        "product_count": 1,
        "tracking_id": "default",
        "custom_parameters": '{"sub_id":"click-1"}',
        "ship_to_country": "RU",
        "created_time": "2026-11-03 10:00:00",
        "paid_time": "2026-11-03 10:05:00",
    }
    order.update(overrides)
    return order


def aliexpress_page(*orders):
    return {
        "aliexpress_affiliate_order_listbyindex_response": {
            "resp_result": {
                "resp_code": 200,
                "resp_msg": "call succeeds",
                "result": {
                    "current_record_count": len(orders),
                    "max_query_index_id": "9",
                    "min_query_index_id": "1",
                    "orders": {"order": list(orders)},
                },
            },
            "request_id": "0ba2887315178178017221014",
        }
    }


@pytest.fixture
def accrual(stack, tmp_path):
    return operator_cli(stack, tmp_path, CONFIG, CLICKS)


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
    counts = json.loads(
        accrual("ingest", tmp_path / "page.json", "--partner", "aliexpress", "--now", "2026-11-04T00:00:00Z").stdout
    )
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

    again = json.loads(
        accrual("ingest", tmp_path / "page.json", "--partner", "aliexpress", "--now", "2026-11-04T01:00:00Z").stdout
    )
    assert again["reconciled"].get("orders_changed", 0) == 0
    assert json.loads(accrual("balance", "masha", "--json").stdout) == balance


def test_an_admitad_page_is_ingested_and_confirmed_when_approved(accrual, tmp_path):
    def action(status, updated):
        return {
            "id": 31,
            "action_id": 555001,
            "order_id": "A-1001",
            "status": status,
            "cart": "50.00",
            "payment": "3.00",
            "currency": "USD",
            "subid": "click-2",
            "promocode": "",
            "action_date": "2026-11-03 18:00:00",
            "click_date": "2026-11-03 17:50:00",
            "closing_date": "2026-12-03 18:00:00",
            "status_updated": updated,
            "processed": 0,
            "paid": 0,
            "positions": [
                {
                    "id": 1,
                    "amount": "50.00",
                    "payment": "3.00",
                    "rate": "6",
                    "percentage": True,
                    "product_id": "p1",
                    "product_category_id": "100001",
                    "datetime": "2026-11-03 18:00:00",
                }
            ],
        }

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


def _jsonl(path, *records) -> Path:
    path.write_text("".join((record if isinstance(record, str) else json.dumps(record)) + "\n" for record in records))
    return path


def test_a_stored_click_is_a_fact_and_a_file_may_not_contradict_itself(accrual, tmp_path):
    changed = {**CLICKS[0], "user_id": "petya"}
    new = {**CLICKS[0], "sub_id": "click-3"}
    twice = {**CLICKS[0], "sub_id": "click-4"}
    clash = {**CLICKS[0], "sub_id": "click-5"}
    result = accrual(
        "clicks",
        "load",
        _jsonl(
            tmp_path / "more.jsonl",
            changed,
            new,
            twice,
            twice,
            clash,
            {**clash, "clicked_at": "2026-11-02T09:00:00Z"},
            CLICKS[1],
        ),
        expect=2,
    )
    counts = json.loads(result.stdout)
    assert (counts["stored"], counts["unchanged"], counts["repeated"], counts["refused"]) == (2, 1, 1, 3)
    assert [refusal["line"] for refusal in counts["refusals"]] == [1, 5, 6]
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert "line 1:" in lines[0] and "'click-1'" in lines[0] and "'masha' → 'petya'" in lines[0]
    assert all("'click-5'" in line and "different content" in line for line in lines[1:])

    again = json.loads(accrual("clicks", "load", tmp_path / "clicks.jsonl").stdout)  # the same facts again
    assert (again["stored"], again["unchanged"], again["refused"]) == (0, 2, 0)


def test_a_shopper_keeps_one_account_currency(accrual, tmp_path):
    result = accrual(
        "clicks",
        "load",
        _jsonl(
            tmp_path / "currencies.jsonl",
            {**CLICKS[0], "sub_id": "click-6", "account_currency": "USD"},
            {**CLICKS[0], "sub_id": "click-7", "user_id": "petya", "account_currency": "EUR"},
            {**CLICKS[0], "sub_id": "click-8", "user_id": "petya", "account_currency": "USD"},
            {**CLICKS[0], "sub_id": "click-9", "user_id": "petya", "account_currency": "EUR"},
        ),
        expect=2,
    )
    counts = json.loads(result.stdout)
    assert (counts["stored"], counts["refused"]) == (2, 2)
    first, second = result.stderr.splitlines()
    assert all(word in first for word in ("'click-6'", "'masha'", "RUB", "USD"))
    assert all(word in second for word in ("'click-8'", "'petya'", "EUR", "USD", "line 2"))
    later = accrual(
        "clicks",
        "load",
        _jsonl(
            tmp_path / "later.jsonl", {**CLICKS[0], "sub_id": "click-10", "user_id": "petya", "account_currency": "KZT"}
        ),
        expect=2,
    )
    assert "'click-10'" in later.stderr and "EUR" in later.stderr and "KZT" in later.stderr


def test_clicks_outside_the_limits_are_refused_and_the_rest_stored(accrual, tmp_path):
    result = accrual(
        "clicks",
        "load",
        _jsonl(
            tmp_path / "limits.jsonl",
            {**CLICKS[0], "sub_id": "x" * 257},
            {**CLICKS[0], "sub_id": "click-11", "partner": "AliExpress"},
            {**CLICKS[0], "sub_id": "click-12", "account_currency": "ABC"},
            {**CLICKS[0], "sub_id": "click-13", "clicked_at": "1999-01-01T00:00:00Z"},
            {**CLICKS[0], "sub_id": "click-14"},
        ),
        expect=2,
    )
    counts = json.loads(result.stdout)
    assert (counts["stored"], counts["refused"]) == (1, 4)
    assert "257 bytes" in result.stderr and "'aliexpress'" in result.stderr and "'ABC'" in result.stderr
    assert "1999" in result.stderr


def test_a_configuration_is_checked_against_the_world(accrual, tmp_path):
    card = CONFIG["rate_cards"][0]
    bad = {
        **CONFIG,
        "version": "cli-2",
        "rate_cards": [{**card, "partner": "AliExpress", "hot_product_rate": "0.5"}],
        "hold_days": {"aliexpress": -1},
        "awaiting_payment_days": 2.5,
        "fx_rates": {"2026-10-01": {"RUB": "HUGE", "XYZ": "1", "EUR": "0"}},
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad).replace('"HUGE"', "1e400"))
    errors = accrual("config", "load", tmp_path / "bad.json", expect=2).stderr
    for expected in (
        "rate_cards.0.partner",
        "did you mean 'aliexpress'",
        "rate_cards.0.hot_product_rate",
        "0.5",
        "hold_days.aliexpress",
        "awaiting_payment_days",
        "fx_rates.2026-10-01.RUB",
        "'XYZ'",
        "fx_rates.2026-10-01.EUR",
    ):
        assert expected in errors, expected

    unknown = {**CONFIG, "version": "cli-2", "promotions": [{**CONFIG["promotions"][0], "partner": "amazon"}]}
    (tmp_path / "unknown.json").write_text(json.dumps(unknown))
    errors = accrual("config", "load", tmp_path / "unknown.json", expect=2).stderr
    assert "promotions.0.partner" in errors and "'amazon'" in errors
    (tmp_path / "known.json").write_text(json.dumps({**unknown, "partners": ["aliexpress", "admitad", "amazon"]}))
    accrual("config", "diff", tmp_path / "known.json")


def test_an_fx_rate_far_from_the_current_version_needs_force_and_a_reason(accrual, tmp_path):
    jump = {**CONFIG, "version": "cli-2", "fx_rates": {**CONFIG["fx_rates"], "2026-11-01": {"RUB": "300.00"}}}
    (tmp_path / "jump.json").write_text(json.dumps(jump))
    refused = accrual("config", "load", tmp_path / "jump.json", expect=2).stderr
    assert "fx_rates.2026-11-01.RUB" in refused and "300.00" in refused and "90.00" in refused
    assert "--force-fx" in refused
    accrual("config", "diff", tmp_path / "jump.json", expect=2)
    accrual("config", "load", tmp_path / "jump.json", "--force-fx", expect=2)  # no reason
    loaded = accrual("config", "load", tmp_path / "jump.json", "--force-fx", "--reason", "RUB devalued overnight")
    assert "cli-2 stored" in loaded.stdout and "RUB devalued overnight" in loaded.stdout
    from accrual.adapters import reference_data
    from accrual.adapters.ledger_tables import bind_ledger_tables
    from accrual.settings import Settings

    bind_ledger_tables(Settings.from_env())
    assert reference_data.config_reason("cli-2") == "RUB devalued overnight"
    assert reference_data.config_reason("cli-1") is None


def test_config_diff_shows_what_a_document_changes_without_loading_it(accrual, tmp_path):
    card = CONFIG["rate_cards"][0]
    new = {
        **CONFIG,
        "version": "cli-2",
        "rate_cards": [{**card, "categories": {"100001": "0.06", "200002": "0.07"}}, CONFIG["rate_cards"][1]],
        "promotions": [],
        "virtual_categories": ["software"],
        "own_promo_codes": ["CASHBACK10"],
        "fx_rates": {**CONFIG["fx_rates"], "2026-11-01": {"RUB": "95.00"}},
        "hold_days": {"aliexpress": 14, "admitad": 0},
    }
    (tmp_path / "new.json").write_text(json.dumps(new))
    result = json.loads(accrual("config", "diff", tmp_path / "new.json", "--json").stdout)
    assert (result["from_version"], result["to_version"]) == ("cli-1", "cli-2")
    changes = {
        (" › ".join(change["path"]), change["change"], json.dumps(change.get("from")), json.dumps(change.get("to")))
        for change in result["changes"]
    }
    card_key = "rate_cards › aliexpress from 2026-01-01T00:00:00+00:00 › categories"
    assert (f"{card_key} › 100001", "changed", '"0.055"', '"0.06"') in changes
    assert (f"{card_key} › 200002", "added", "null", '"0.07"') in changes
    assert ("exclusions › virtual_categories", "removed", '"gift_cards"', "null") in changes
    assert ("exclusions › virtual_categories", "added", "null", '"software"') in changes
    assert ("exclusions › own_promo_codes", "added", "null", '"CASHBACK10"') in changes
    assert ("fx_rates › 2026-11-01", "added", "null", '{"RUB": "95.00"}') in changes
    assert ("days › hold_days › aliexpress", "changed", "0", "14") in changes
    assert any(change[0].startswith("promotions › aliexpress") and change[1] == "removed" for change in changes)
    assert len(changes) == 8

    words = accrual("config", "diff", tmp_path / "new.json").stdout
    assert "cli-1" in words and "~ days › hold_days › aliexpress: 0 → 14" in words
    assert json.loads(accrual("config", "diff", tmp_path / "config.json", "--json").stdout)["changes"] == []
    bad = {**new, "rate_cards": [{**card, "default_rate": "0.9"}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert "rate_cards.0.default_rate" in accrual("config", "diff", tmp_path / "bad.json", expect=2).stderr


def test_the_services_own_promo_code_earns_and_another_code_does_not(accrual, tmp_path):
    (tmp_path / "own.json").write_text(json.dumps({**CONFIG, "version": "cli-2", "own_promo_codes": ["CASHBACK10"]}))
    accrual("config", "load", tmp_path / "own.json")

    def admitad_line(order_id, code):  # as the Admitad adapter normalises an action: a code without a kind
        return {
            "partner": "admitad",
            "line_id": f"act-{order_id}",
            "order_id": order_id,
            "sub_id": "click-2",
            "status": "paid",
            "status_at": "2026-11-03T18:05:00Z",
            "ordered_at": "2026-11-03T18:00:00Z",
            "paid_at": "2026-11-03T18:00:00Z",
            "amount": "50.00",
            "shipping": "0",
            "currency": "USD",
            "commission": "3.00",
            "category_id": "100001",
            "product_id": "p1",
            "is_affiliate": True,
            "promo_code": code,
        }

    lines = _jsonl(tmp_path / "lines.jsonl", admitad_line("A-2001", " cashback10 "), admitad_line("A-2002", "SALE"))
    accrual("ingest", lines, "--partner", "normalized", "--now", "2026-11-04T00:00:00Z")
    own = json.loads(accrual("explain", "A-2001", "--json").stdout)
    assert own["state"] == "pending" and own["cashback_usd"] == "3.00"
    assert "PROMO_CODE_NOT_ALLOWED" not in own["reasons"]
    other = json.loads(accrual("explain", "A-2002", "--json").stdout)
    assert other["state"] == "declined" and "PROMO_CODE_NOT_ALLOWED" in other["reasons"]
