"""Orders read ahead in batches and partner lines found by their claims (instead of a Query per order and a by_line
index Query per new line), orders stored as one packed item, and the migrations that claim the lines of a table
written before claims existed and pack the orders written before packed orders."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta

import boto3
import pytest

from accrual.adapters import ledger_store
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.adapters.ledger_tables import FactsRecord, LineRecord, OrderRecord
from accrual.adapters.migrations import migrate_line_claims, migrate_packed_orders
from accrual.composition import composition
from accrual.ports.ledger import LineWrite, OrderChange
from accrual_dev import cli
from support.ledger import T0, line, load_reference_data, snapshot, to_earlier_form
from support.readers import audit, explain


@pytest.fixture
def ledger(stack):
    load_reference_data(stack, users={"alice": "EUR", "bob": "USD"})
    return composition(stack).ledger()


def _claims(settings) -> dict[str, set[str]]:
    items = boto3.client("dynamodb").scan(TableName=settings.orders_table)["Items"]
    return {item["pk"]["S"]: set(item["homes"]["SS"]) for item in items if item["pk"]["S"].startswith("CLAIM#")}


def _read_ahead_equals_the_query(store: DynamoLedgerStore, keys, lines, monkeypatch) -> list[str]:
    """The orders fetch_ahead served (without a Query) and, for each, the proof it equals the Query's view."""
    expected = {key: store.load_order(key) for key in keys}
    store.fetch_ahead(keys, lines)()

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
    # an order of the earlier form (its decision and lines in items of their own, listed on the order item)
    to_earlier_form(stack, "aliexpress#A")
    served = _read_ahead_equals_the_query(store, ["aliexpress#A", "aliexpress#B"], [settled], monkeypatch)
    assert served == ["aliexpress#A", "aliexpress#B"]


def test_an_order_item_without_its_line_list_is_read_by_the_query_and_packed_at_its_next_change(
    stack, ledger, monkeypatch
):
    ledger.reconcile([line("A", "A-1")], now=T0)
    store = DynamoLedgerStore(stack)
    before = store.load_order("aliexpress#A")
    # an order item as written before orders listed their lines
    to_earlier_form(stack, "aliexpress#A", listed=False)
    loaded = store.load_order("aliexpress#A")
    assert loaded == before and loaded.order is not None
    assert _read_ahead_equals_the_query(store, ["aliexpress#A"], [], monkeypatch) == []
    # its next change packs it with every line (the store read them at the version it writes over)
    store.load_order("aliexpress#A")
    store.apply([OrderChange(loaded.order, lines=(LineWrite(line("A", "A-2")),))])
    assert _read_ahead_equals_the_query(store, ["aliexpress#A"], [], monkeypatch) == ["aliexpress#A"]
    assert len(store.load_order("aliexpress#A").lines) == 2
    assert OrderRecord.get("aliexpress#A", "ORDER").packed is not None


def test_every_line_new_to_an_order_is_claimed_before_it_is_placed(stack, ledger):
    ledger.reconcile([line("A", "A-1"), line("B", "B-1")], now=T0)
    ledger.reconcile([line("C", "A-1", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))  # renumbered
    claims = _claims(stack)
    assert claims["CLAIM#aliexpress#A-1"] == {"aliexpress#A", "aliexpress#C"}
    assert claims["CLAIM#aliexpress#B-1"] == {"aliexpress#B"}
    assert explain(stack, "A")["state"] == "moved" and explain(stack, "C")["state"] == "pending"
    # the lines are packed in their order items: no line item (nor the by_line index) is written
    assert list(LineRecord.scan(LineRecord.sk.startswith("LINE#"))) == []
    assert audit(stack)["ok"]


def test_migrate_claims_the_lines_of_an_old_table_resumably_and_the_ledger_then_reads_claims(stack, monkeypatch):
    load_reference_data(stack, users={"alice": "EUR"})
    db = boto3.client("dynamodb")
    # a stack written by a version before claims: no record of them, its lines only in the by_line index
    _forget_migrations(stack, "LINE_CLAIMS", "PACKED_ORDERS")
    composition(stack).ledger().reconcile([line(order, f"{order}-1") for order in ("A", "B", "C")], now=T0)
    for order in ("A", "B", "C"):
        to_earlier_form(stack, f"aliexpress#{order}")
    before = snapshot()
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
    # then every order is packed, reading the same
    assert rest["packed_orders"]["finished"] and rest["packed_orders"]["lines"] == 3
    assert all(record.packed is not None for record in OrderRecord.scan(OrderRecord.sk == "ORDER"))
    assert snapshot() == before
    again = _migrate_command()
    assert again["already_done"] and again["packed_orders"]["already_done"]

    # the ledger now finds a renumbered line by its claim alone (the index is not asked)
    monkeypatch.setattr(LineRecord.by_line, "query", lambda *a, **k: pytest.fail("by_line queried"))
    composition(stack).ledger().reconcile([line("D", "A-1", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    assert explain(stack, "A")["state"] == "moved" and explain(stack, "D")["state"] == "pending"
    assert audit(stack)["ok"]


def _forget_migrations(stack, *steps: str) -> None:
    """The control table as a version before these migrations left it."""
    for step in steps:
        boto3.client("dynamodb").delete_item(
            TableName=stack.control_table, Key={"pk": {"S": "MIGRATION"}, "sk": {"S": step}}
        )


def _migrate_command(*options: str) -> dict:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["migrate", *options, "--json"]) == 0
    return json.loads(printed.getvalue())


def test_a_new_order_is_one_item_with_its_lines_and_decision_packed(stack, ledger):
    ledger.reconcile([line("A", "A-2"), line("A", "A-1")], now=T0)
    items = boto3.client("dynamodb").query(
        TableName=stack.orders_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "aliexpress#A"}},
    )["Items"]
    assert sorted(item["sk"]["S"] for item in items if not item["sk"]["S"].startswith("ENTRY#")) == ["ORDER"]
    loaded = DynamoLedgerStore(stack).load_order("aliexpress#A")
    assert [json.loads(item.body)["line_id"] for item in loaded.lines] == ["A-1", "A-2"]
    assert json.loads(loaded.decision)["order_id"] == "A"


def test_the_packing_migration_stops_and_goes_on_and_loses_no_change_made_meanwhile(stack, ledger):
    ledger.reconcile([line(order, f"{order}-1") for order in ("A", "B", "C")], now=T0)
    for order in ("A", "B", "C"):
        to_earlier_form(stack, f"aliexpress#{order}")
    _forget_migrations(stack, "PACKED_ORDERS")
    assert not DynamoLedgerStore(stack).packed_complete()
    first = migrate_packed_orders(stack, now=T0, page_size=1, max_pages=1)
    assert not first.finished
    # a running ledger changes an order of the earlier form: it packs it with the new line
    ledger.reconcile([line("C", "C-2")], now=T0 + timedelta(hours=1))
    rest = migrate_packed_orders(stack, now=T0, page_size=1)
    assert rest.finished and rest.resumed and DynamoLedgerStore(stack).packed_complete()
    assert all(record.packed is not None for record in OrderRecord.scan(OrderRecord.sk == "ORDER"))
    assert len(DynamoLedgerStore(stack).load_order("aliexpress#C").lines) == 2
    assert explain(stack, "C")["state"] == "pending" and audit(stack)["ok"]


def test_an_order_is_found_by_its_number_its_partners_number_or_its_key(stack, ledger):
    ledger.reconcile([line("A", "A-1", partner_order_id="P-9"), line("B", "B-1", partner_order_id="B")], now=T0)
    store = DynamoLedgerStore(stack)
    assert store.find_orders("A") == ["aliexpress#A"]  # the key of each configured partner, read in one batch
    assert store.find_orders("P-9") == ["aliexpress#A"]  # the by_partner_order_id index
    assert store.find_orders("B") == ["aliexpress#B"]
    assert store.find_orders("aliexpress#B") == ["aliexpress#B"]
    assert store.find_orders("nothing") == []
    # the partner's number is indexed only where it is not the order number itself
    assert OrderRecord.get("aliexpress#A", "ORDER").partner_order_id == "P-9"
    assert OrderRecord.get("aliexpress#B", "ORDER").partner_order_id is None
    assert store.load_order("aliexpress#B").order.partner_order_id == "B"


def test_once_every_order_is_packed_the_read_ahead_asks_for_no_line_item(stack, ledger, monkeypatch):
    ledger.reconcile([line("A", "A-1")], now=T0)
    incoming = [line("A", "A-2"), line("NEW", "N-1")]

    def keys_asked(store: DynamoLedgerStore) -> list[tuple[str, str]]:
        asked: list[tuple[str, str]] = []
        original = store._batch_get
        monkeypatch.setattr(store, "_batch_get", lambda keys: asked.extend(keys) or original(keys))
        store.fetch_ahead(["aliexpress#A", "aliexpress#NEW"], incoming)()
        return asked

    packed = DynamoLedgerStore(stack)  # a new stack: recorded packed when provisioned
    assert not [key for key in keys_asked(packed) if key[1].startswith("LINE#")]
    assert len(packed.load_order("aliexpress#A").lines) == 1 and packed.load_order("aliexpress#NEW").order is None
    assert "CLAIM#aliexpress#A-2" in _claims(stack) and "CLAIM#aliexpress#N-1" in _claims(stack)
    _forget_migrations(stack, "PACKED_ORDERS")
    earlier = DynamoLedgerStore(stack)
    assert ("aliexpress#NEW", "LINE#N-1") in keys_asked(earlier)
