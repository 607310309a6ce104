"""`accrual claim …` as an operator runs it: a Russian shopper's order reported without her click, her claim by the
partner's order number, the readable notification, `explain`'s claim part, show and list."""

from __future__ import annotations

import json

import pytest

from support.cli import operator_cli

CONFIG = {
    "version": "claims-1",
    "rate_cards": [
        {
            "partner": "aliexpress",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": None,
            "default_rate": "0.03",
            "non_affiliate_rate": "0.01",
            "categories": {"100001": "0.055"},
        }
    ],
    "promotions": [],
    "excluded_shops": [],
    "virtual_categories": [],
    "vat_rates": {},
    "fx_rates": {"2026-10-01": {"RUB": "90.00"}},
    "cap_usd": "40.00",
    "min_cashback_usd": "0.01",
    "awaiting_payment_days": 3,
    "hold_days": {"aliexpress": 0, "admitad": 0},
}
CLICK = {
    "sub_id": "click-1",
    "user_id": "masha",
    "clicked_at": "2026-11-01T09:00:00Z",
    "partner": "aliexpress",
    "account_currency": "RUB",
    "country": "RU",
}


def normalized(line_id, *, affiliate=True):
    return {
        "partner": "aliexpress",
        "line_id": line_id,
        "order_id": "8000555",
        "partner_order_id": "AE-77",
        "sub_id": "lost",
        "status": "paid",
        "status_at": "2026-11-03T10:05:00Z",
        "ordered_at": "2026-11-03T10:00:00Z",
        "paid_at": "2026-11-03T10:05:00Z",
        "amount": "100.00",
        "shipping": "0",
        "currency": "USD",
        "commission": "5.00",
        "category_id": "100001",
        "is_affiliate": affiliate,
        "is_hot": False,
    }


@pytest.fixture
def accrual(stack, tmp_path):
    return operator_cli(stack, tmp_path, CONFIG, [CLICK])


def test_a_claim_by_the_partner_order_number_is_filed_resolved_explained_and_listed(accrual, tmp_path, stack):
    (tmp_path / "lines.jsonl").write_text(
        json.dumps(normalized("s1")) + "\n" + json.dumps(normalized("s2", affiliate=False)) + "\n"
    )
    accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", "2026-11-04T00:00:00Z")
    assert json.loads(accrual("explain", "8000555", "--json").stdout)["state"] == "unattributed"

    claim = json.loads(
        accrual(
            "claim",
            "file",
            "--user",
            "masha",
            "--order",
            "AE-77",
            "--ordered-at",
            "2026-11-03",
            "--amount",
            "18000",
            "--currency",
            "RUB",
            "--json",
            "--now",
            "2026-11-05T00:00:00Z",
        ).stdout
    )
    assert claim["state"] == "resolved" and claim["order_key"] == "aliexpress#8000555"

    # 100 at 5.5% + 100 non-affiliate at 1% = 6.50 USD = 585.00 RUB
    assert json.loads(accrual("balance", "masha", "--json").stdout)["pending"] == "585.00"
    order = json.loads(accrual("explain", "AE-77", "--json").stdout)
    assert order["user_id"] == "masha" and [item["claim_id"] for item in order["claims"]] == [claim["claim_id"]]
    assert claim["claim_id"] in order["explanation"]

    again = accrual("claim", "file", "--user", "masha", "--order", "AE-77", "--json", "--now", "2026-11-06T00:00:00Z")
    assert json.loads(again.stdout)["claim_id"] == claim["claim_id"] and "already filed" in again.stderr
    shown = json.loads(accrual("claim", "show", claim["claim_id"], "--json").stdout)
    assert shown == json.loads(accrual("claim", "list", "--user", "masha", "--json").stdout)[0]
    assert json.loads(accrual("claim", "list", "--state", "open", "--json").stdout) == []
    accrual("audit")

    # the shopper reads why: in Russian (her click's country), the reduced rate in plain words
    from support.schemas import assert_valid_message
    from support.subscriber import received

    messages = {body["event_type"]: (body, attributes) for body, attributes in received(stack)}
    pending, attributes = messages["cashback.pending"]
    assert_valid_message(pending, attributes)
    assert pending["lang"] == "ru" and "1%, а не 5.5%" in pending["text"]
    resolved, attributes = messages["claim.resolved"]
    assert_valid_message(resolved, attributes)
    assert resolved["lang"] == "ru" and "585.00 RUB" in resolved["text"]


def test_a_claim_for_another_shoppers_order_is_refused(accrual, tmp_path):
    other = {**CLICK, "sub_id": "click-2", "user_id": "petya"}
    (tmp_path / "petya.jsonl").write_text(json.dumps(other) + "\n")
    accrual("clicks", "load", tmp_path / "petya.jsonl")
    (tmp_path / "lines.jsonl").write_text(json.dumps({**normalized("s1"), "sub_id": "click-2"}) + "\n")
    accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", "2026-11-04T00:00:00Z")
    before = accrual("balance", "petya", "--json").stdout

    refused = accrual("claim", "file", "--user", "masha", "--order", "8000555", "--json", expect=2)
    assert json.loads(refused.stdout)["reason"] == "ORDER_OF_ANOTHER_SHOPPER"
    assert accrual("balance", "petya", "--json").stdout == before
    bad = accrual("claim", "file", "--user", "masha", "--order", "8000555", "--amount", "5", expect=2)
    assert "currency" in bad.stderr


def test_an_order_number_alone_waits_for_the_agents_verdict(accrual, tmp_path):
    (tmp_path / "lines.jsonl").write_text(json.dumps(normalized("s1")) + "\n")
    accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", "2026-11-04T00:00:00Z")
    waiting = json.loads(accrual("claim", "file", "--user", "masha", "--order", "AE-77", "--json").stdout)
    assert waiting["state"] == "needs_review" and waiting["reason"] == "NOT_ENOUGH_EVIDENCE"
    assert [
        claim["claim_id"] for claim in json.loads(accrual("claim", "list", "--state", "needs_review", "--json").stdout)
    ] == [waiting["claim_id"]]

    refused = accrual("claim", "resolve", waiting["claim_id"], "--approve", expect=2)
    assert "--reason" in refused.stderr
    approved = accrual("claim", "resolve", waiting["claim_id"], "--approve", "--reason", "receipt checked", "--json")
    resolved = json.loads(approved.stdout)
    assert resolved["state"] == "resolved" and resolved["verdict_reason"] == "receipt checked"
    assert json.loads(accrual("explain", "8000555", "--json").stdout)["user_id"] == "masha"
    again = accrual("claim", "resolve", waiting["claim_id"], "--reject", "--reason", "second thoughts", expect=2)
    assert "nothing left to decide" in again.stderr
