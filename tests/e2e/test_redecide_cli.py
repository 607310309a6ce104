"""`accrual redecide` as an operator runs it: a configuration that wrongly excluded a shop, fixed, applied with a
dry run first."""

from __future__ import annotations

import json
import os
import subprocess

from support.cli import CLI
from support.ledger import CONFIG

CLICK = {
    "sub_id": "c-alice",
    "user_id": "alice",
    "clicked_at": "2026-03-01T10:00:00Z",
    "partner": "aliexpress",
    "account_currency": "EUR",
    "country": "DE",
}
LINE = {
    "partner": "aliexpress",
    "line_id": "A-1",
    "order_id": "A",
    "sub_id": "c-alice",
    "status": "paid",
    "status_at": "2026-03-01T11:00:00Z",
    "ordered_at": "2026-03-01T11:00:00Z",
    "paid_at": "2026-03-01T11:05:00Z",
    "amount": "100.00",
    "shipping": "0",
    "currency": "USD",
    "commission": "1.00",
    "category_id": "tools",
    "product_id": "p1",
    "shop_id": "s1",
    "is_affiliate": True,
    "is_hot": False,
    "buyer_account": "a",
    "ship_to_country": "FR",
}
NOW = "2026-03-01T12:00:00Z"


def test_a_fixed_configuration_is_applied_with_redecide_after_a_dry_run(stack, tmp_path):
    env = {**os.environ, "ACCRUAL_STACK": stack.stack}

    def accrual(*args, expect=0):
        result = subprocess.run([str(CLI), *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == expect, (args, result.stdout[-2000:], result.stderr[-2000:])
        return result.stdout

    (tmp_path / "bad.json").write_text(json.dumps({**CONFIG, "version": "v1", "excluded_shops": ["s1"]}))
    (tmp_path / "good.json").write_text(json.dumps({**CONFIG, "version": "v2"}))
    (tmp_path / "clicks.jsonl").write_text(json.dumps(CLICK) + "\n")
    (tmp_path / "lines.jsonl").write_text(
        json.dumps(LINE) + "\n" + json.dumps({**LINE, "line_id": "B-1", "order_id": "B"}) + "\n"
    )
    accrual("config", "load", tmp_path / "bad.json")
    accrual("clicks", "load", tmp_path / "clicks.jsonl")
    accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", NOW)
    assert json.loads(accrual("explain", "A", "--json"))["state"] == "declined"
    accrual("config", "load", tmp_path / "good.json")
    accrual("redecide", expect=2)  # nothing selected

    planned = json.loads(accrual("redecide", "--user", "alice", "--dry-run", "--json", "--now", NOW))
    assert planned["dry_run"] and planned["config_version"] == "v2" and planned["selected"] == 2
    assert [
        (item["order"], item["outcome"], item["state_to"], item["config_version_from"]) for item in planned["orders"]
    ] == [("aliexpress#A", "changed", "pending", "v1"), ("aliexpress#B", "changed", "pending", "v1")]
    assert json.loads(accrual("explain", "A", "--json"))["state"] == "declined"  # the dry run wrote nothing

    text = accrual("redecide", "aliexpress#A", "--now", NOW)
    assert "aliexpress#A: changed declined → pending" in text and "decided by v2 (was v1)" in text
    explained = json.loads(accrual("explain", "A", "--json"))
    assert explained["state"] == "pending" and explained["config_version"] == "v2"
    by_time = json.loads(
        accrual(
            "redecide", "--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z", "--json", "--now", NOW
        )
    )
    assert [(item["order"], item["outcome"], item["changes_money"]) for item in by_time["orders"]] == [
        ("aliexpress#B", "changed", True),  # the orders whose money changes come first
        ("aliexpress#A", "unchanged", False),
    ]
    assert json.loads(accrual("balance", "alice", "--json"))["pending_usd"] == "10.00"
    accrual("audit")


def test_redecide_lists_the_orders_whose_money_changes_and_counts_the_rest(stack, tmp_path):
    env = {**os.environ, "ACCRUAL_STACK": stack.stack}

    def accrual(*args, expect=0):
        result = subprocess.run([str(CLI), *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == expect, (args, result.stdout[-2000:], result.stderr[-2000:])
        return result

    (tmp_path / "v1.json").write_text(json.dumps({**CONFIG, "version": "v1", "excluded_shops": ["s1"]}))
    (tmp_path / "v2.json").write_text(json.dumps({**CONFIG, "version": "v2"}))
    (tmp_path / "clicks.jsonl").write_text(json.dumps(CLICK) + "\n")
    lines = [LINE, {**LINE, "line_id": "C-1", "order_id": "C", "shop_id": "s2", "category_id": "toys"}]
    (tmp_path / "lines.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    accrual("config", "load", tmp_path / "v1.json")
    accrual("clicks", "load", tmp_path / "clicks.jsonl")
    accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", NOW)
    accrual("config", "load", tmp_path / "v2.json")

    text = accrual("redecide", "--user", "alice", "--dry-run", "--now", NOW).stdout.splitlines()
    assert text[0].startswith("aliexpress#A: would change declined → pending")
    assert not any(line.startswith("aliexpress#C") for line in text)  # only its configuration version changes
    assert "1 in money or state, 1 only in configuration version or reason codes" in text[-1] and "--all" in text[-1]
    every = accrual("redecide", "--user", "alice", "--dry-run", "--all", "--now", NOW).stdout
    assert "aliexpress#C: would change pending → pending" in every

    def selected(*selectors):
        chosen = json.loads(accrual("redecide", *selectors, "--dry-run", "--json", "--now", NOW).stdout)
        return [item["order"] for item in chosen["orders"]]

    assert selected("--shop", "s1") == ["aliexpress#A"]
    assert selected("--category", "toys") == ["aliexpress#C"]
    assert selected("--reason", "SHOP_EXCLUDED", "--user", "alice") == ["aliexpress#A"]
    assert selected("--shop", "s1", "--category", "toys") == []
    refused = accrual("redecide", "--reason", "SHOP_EXCLUDE", expect=2).stderr
    assert "not a reason code; did you mean SHOP_EXCLUDED?" in refused
