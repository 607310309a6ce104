"""Orders read ahead in batches and partner lines found by their claims (instead of a Query per order and a by_line
index Query per new line), and the migration that claims the lines of a table written before claims existed."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta

import boto3
import pytest

from accrual.adapters import ledger_store
from accrual.adapters.ledger_store import DynamoLedgerStore, LineWrite, OrderChange
from accrual.adapters.ledger_tables import FactsRecord, LineRecord
from accrual.adapters.migrations import migrate_line_claims
from accrual.composition import composition
from accrual_dev import cli
from support.ledger import T0, line, load_reference_data
from support.readers import audit, explain


@pytest.fixture
def ledger(stack):
    load_reference_data(stack, users={"alice": "EUR", "bob": "USD"})
    return composition(stack).ledger()


def _claims(settings) -> dict[str, set[str]]:
    items = boto3.client("dynamodb").scan(TableName=settings.orders_table)["Items"]
    return {item["pk"]["S"]: set(item["homes"]["SS"]) for item in items if item["pk"]["S"].startswith("CLAIM#")}


def _read_ahead_equals_the_query(store: DynamoLedgerStore, keys, lines, monkeypatch) -> list[str]:
    """The orders read_ahead served (without a Query) and, for each, the proof it equals the Query's view."""
    expected = {key: store.load_order(key) for key in keys}
    store.read_ahead(keys, lines)

    def no_query(key):
        raise AssertionError(f"{key} was queried")

    served = []
    with monkeypatch.context() as patch:
        patch.setattr(ledger_store, "load_order_items", no_query)
        for key in keys:
            try:
                loaded = store.load_order(key)
            except AssertionError:
                continue
            assert loaded == expected[key]
            served.append(key)
    return served


def test_read_ahead_serves_what_the_query_would_and_leaves_the_rest_to_it(stack, ledger, monkeypatch):
    ledger.reconcile([line("A", "A-1"), line("A", "A-2"), line("B", "B-1")], now=T0)
    store = DynamoLedgerStore(stack)
    new, settled = line("NEW", "N-1"), line("A", "A-1", status="settled", at=T0 + timedelta(hours=1))
    served = _read_ahead_equals_the_query(
        store, ["aliexpress#A", "aliexpress#B", "aliexpress#NEW"], [new, settled], monkeypatch
    )
    assert served == ["aliexpress#A", "aliexpress#B", "aliexpress#NEW"]

    # a large order's lines written ahead of its unfinished transaction: the Query reads that order
    version = store.load_order("aliexpress#B").order.version
    FactsRecord("aliexpress#B", version=version).save()
    served = _read_ahead_equals_the_query(store, ["aliexpress#A", "aliexpress#B"], [], monkeypatch)
    assert served == ["aliexpress#A"]
    # its transaction wrote the order past that version: read ahead again
    FactsRecord("aliexpress#B", version=version - 1).save()
    served = _read_ahead_equals_the_query(store, ["aliexpress#A", "aliexpress#B"], [], monkeypatch)
    assert served == ["aliexpress#A", "aliexpress#B"]


def test_an_order_item_without_its_line_list_is_read_by_the_query(stack, ledger, monkeypatch):
    ledger.reconcile([line("A", "A-1")], now=T0)
    store = DynamoLedgerStore(stack)
    loaded = store.load_order("aliexpress#A")
    assert loaded.order is not None
    # an order item as written before orders listed their lines
    boto3.client("dynamodb").update_item(
        TableName=stack.orders_table,
        Key={"pk": {"S": "aliexpress#A"}, "sk": {"S": "ORDER"}},
        UpdateExpression="REMOVE line_ids",
    )
    assert _read_ahead_equals_the_query(store, ["aliexpress#A"], [], monkeypatch) == []
    # its next change lists them again (the store read them at the version it writes over)
    store.load_order("aliexpress#A")
    store.apply([OrderChange(loaded.order, lines=(LineWrite(line("A", "A-2")),))])
    assert _read_ahead_equals_the_query(store, ["aliexpress#A"], [], monkeypatch) == ["aliexpress#A"]


def test_every_line_new_to_an_order_is_claimed_before_it_is_placed(stack, ledger):
    ledger.reconcile([line("A", "A-1"), line("B", "B-1")], now=T0)
    ledger.reconcile([line("C", "A-1", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))  # renumbered
    claims = _claims(stack)
    assert claims["CLAIM#aliexpress#A-1"] == {"aliexpress#A", "aliexpress#C"}
    assert claims["CLAIM#aliexpress#B-1"] == {"aliexpress#B"}
    assert explain(stack, "A")["state"] == "moved" and explain(stack, "C")["state"] == "pending"
    # on a table whose lines are all claimed the by_line index is not written any more
    assert all(item.line_ref is None for item in LineRecord.scan(LineRecord.sk.startswith("LINE#")))
    assert audit(stack)["ok"]


def test_migrate_claims_the_lines_of_an_old_table_resumably_and_the_ledger_then_reads_claims(stack, monkeypatch):
    load_reference_data(stack, users={"alice": "EUR"})
    db = boto3.client("dynamodb")
    # a stack written by a version before claims: no record of them, its lines only in the by_line index
    db.delete_item(TableName=stack.control_table, Key={"pk": {"S": "MIGRATION"}, "sk": {"S": "LINE_CLAIMS"}})
    composition(stack).ledger().reconcile([line(order, f"{order}-1") for order in ("A", "B", "C")], now=T0)
    lines = LineRecord.scan(LineRecord.sk.startswith("LINE#"))
    assert {item.line_ref for item in lines} == {f"aliexpress#{order}-1" for order in ("A", "B", "C")}
    for ref in _claims(stack):
        db.delete_item(TableName=stack.orders_table, Key={"pk": {"S": ref}, "sk": {"S": "CLAIM"}})
    assert not DynamoLedgerStore(stack).claims_complete()

    first = migrate_line_claims(stack, now=T0, page_size=1, max_pages=2)
    assert not first.finished and first.pages == 2
    assert not DynamoLedgerStore(stack).claims_complete()
    rest = _migrate_command("--page-size", "1")  # the operator's command goes on from the saved position
    assert rest["finished"] and rest["resumed"] and first.lines + rest["lines"] == 3
    assert _claims(stack) == {f"CLAIM#aliexpress#{order}-1": {f"aliexpress#{order}"} for order in ("A", "B", "C")}
    assert _migrate_command()["already_done"]

    # the ledger now finds a renumbered line by its claim alone (the index is not asked)
    monkeypatch.setattr(LineRecord.by_line, "query", lambda *a, **k: pytest.fail("by_line queried"))
    composition(stack).ledger().reconcile([line("D", "A-1", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    assert explain(stack, "A")["state"] == "moved" and explain(stack, "D")["state"] == "pending"
    assert audit(stack)["ok"]


def _migrate_command(*options: str) -> dict:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["migrate", *options, "--json"]) == 0
    return json.loads(printed.getvalue())


def test_a_new_order_item_is_stored_with_its_lines_listed(stack, ledger):
    ledger.reconcile([line("A", "A-2"), line("A", "A-1")], now=T0)
    item = boto3.client("dynamodb").get_item(
        TableName=stack.orders_table, Key={"pk": {"S": "aliexpress#A"}, "sk": {"S": "ORDER"}}
    )["Item"]
    assert [value["S"] for value in item["line_ids"]["L"]] == ["A-1", "A-2"]
