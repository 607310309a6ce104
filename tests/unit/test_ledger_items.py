"""The ledger's transaction builds its items as DynamoDB JSON without PynamoDB models: each must be the item the
model's own save would write (same attributes, same serialised values, the order's version incremented)."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pynamodb.models import Model

from accrual.adapters.ledger_items import (
    SHARED_BYTES,
    _entry_item,
    _item,
    _order_item,
    _order_item_values,
    _outbox_item,
    due_shard,
    outbox_items,
    outbox_messages,
    outbox_record,
    stored_order,
)
from accrual.adapters.ledger_packing import pack_order, written_line
from accrual.adapters.ledger_tables import (
    ORDER_SK,
    SHARED_PREFIX,
    JournalEntryRecord,
    OrderRecord,
    OutboxRecord,
)
from accrual.domain.lifecycle import Holding
from accrual.domain.models import OrderLine
from accrual.ports.ledger import JournalEntry, OrderItem, OrderTooLarge, OutboxMessage, StoredLine
from accrual.ports.notify import PUBLISH_BATCH

T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)


def saved(record: Model) -> dict:
    """The item PynamoDB's save (and TransactWrite.save) sends for a model: its attributes with the keys."""
    (hash_key,), kwargs = record._get_save_args()
    item = dict(kwargs["attributes"])
    item[record._hash_key_attribute().attr_name] = {"S": hash_key}
    if "range_key" in kwargs:
        item[record._range_key_attribute().attr_name] = {"S": kwargs["range_key"]}
    return item


def a_line(**changes) -> OrderLine:
    values = {
        "partner": "aliexpress",
        "order_id": "A1",
        "line_id": "A1#1",
        "sub_id": "s1",
        "status": "settled",
        "status_at": T0,
        "ordered_at": T0,
        "currency": "USD",
        "amount": Decimal("12.50"),
        "commission": Decimal("1.25"),
    }
    return OrderLine.model_validate({**values, **changes})


def an_order(**changes) -> OrderItem:
    values = {
        "partner": "aliexpress",
        "order_id": "A1",
        "user_id": "alice",
        "sub_id": "s1",
        "ordered_at": "2026-05-04T10:00:00.000000Z",
        "state": "pending",
        "decided_at": "2026-05-04T10:00:00.000000Z",
        "review_accounts": ["x", "y"],
        "account_currency": "EUR",
        "fx_rate": Decimal("0.912345"),
        "fx_day": "2026-05-04",
        "pending_usd": Decimal("1.10"),
        "pending": Decimal("1.00"),
        "confirmed": Decimal("0.00"),
        "entries": 3,
        "lines_digest": "d1g35t",
        "updated_at": "2026-05-04T10:00:00.000000Z",
    }
    return OrderItem("aliexpress#A1", **{**values, **changes})


@pytest.mark.parametrize("version", [None, 0, 7])
@pytest.mark.parametrize("due_at", [None, "2026-06-01T00:00:00.000000Z"])
@pytest.mark.parametrize("partner_order_id", [None, "A1", "P-9"])
def test_the_order_item_is_the_models_with_its_version_incremented(version, due_at, partner_order_id):
    order = an_order(due_at=due_at, version=version, partner_order_id=partner_order_id)
    packed = pack_order(order, '{"decision": 1}', [])
    record = OrderRecord(
        order.key,
        ORDER_SK,
        user_id="alice",
        sub_id="s1",
        ordered_at=order.ordered_at,
        partner_order_id="P-9" if partner_order_id == "P-9" else None,  # the key finds the order number itself
        due_at=due_at,
        due_shard=due_shard(order.key) if due_at else None,
        packed=packed,
    )
    if version is not None:
        record.version = version
    mine = _order_item_values(order, packed)
    mine.update(version=1 if version is None else version + 1)
    assert _item(OrderRecord, mine) == saved(record)


@pytest.mark.parametrize("version", [None, 4])
@pytest.mark.parametrize("partner_order_id", [None, "A1", "P-9"])
def test_a_packed_order_reads_back_as_written(version, partner_order_id):
    order = an_order(version=version, partner_order_id=partner_order_id, due_at="2026-06-01T00:00:00.000000Z")
    lines = [
        a_line(),
        a_line(line_id="A1#2", shipping=Decimal("0.00"), tax=Decimal("0"), is_affiliate=False, status_detail="é"),
        a_line(line_id="A1#3", order_id="OTHER", currency="EUR", usd_rate=Decimal("1.08"), promo_code="X"),
    ]
    written = [written_line(order.key, line, "aliexpress#B" if line.line_id == "A1#3" else None) for line in lines]
    decision = '{"trail":[{"note":"base x rate, rounded half up to cents"}],"z":"ü"}'
    item = _item(OrderRecord, {**_order_item_values(order, pack_order(order, decision, written)), "version": version})
    record = OrderRecord.from_raw_data(item)
    stored, text, read = stored_order(record)
    assert stored == order and text == decision
    assert [line.stored for line in read] == [
        StoredLine(line.model_dump_json(), "aliexpress#B" if line.line_id == "A1#3" else None) for line in lines
    ]
    assert _order_item(record) == order


def test_a_typical_order_packs_under_a_kilobyte():
    order = an_order(partner_order_id="P-9")
    lines = [a_line(), a_line(line_id="A1#2", amount=Decimal("51.44"), category_id="66", product_id="2774101")]
    decision = (Path(__file__).parent.parent / "golden" / "month.jsonl").read_text().splitlines()[0]
    decision_text = json.dumps(json.loads(decision)["decision"], sort_keys=True, separators=(",", ":"))
    packed = pack_order(order, decision_text, [written_line(order.key, line, None) for line in lines])
    assert len(zlib.compress(decision_text.encode())) > 1.5 * len(packed)  # the dictionary's part
    assert item_bytes(_item(OrderRecord, {**_order_item_values(order, packed), "version": 1})) < 1024


def test_an_order_too_large_even_packed_is_refused():
    lines = [a_line(line_id=f"A1#{index}", status_detail=os.urandom(400).hex()) for index in range(1000)]
    with pytest.raises(OrderTooLarge):
        pack_order(an_order(), None, [written_line("aliexpress#A1", line, None) for line in lines])


def item_bytes(item: dict) -> int:
    """DynamoDB's size of an item: names and values (binary as bytes, numbers about their digits)."""
    size = 0
    for name, value in item.items():
        ((kind, data),) = value.items()
        size += len(name.encode()) + (len(data) if kind == "B" else len(str(data).encode()))
    return size


@pytest.mark.parametrize("fact_at", [None, "2026-05-04T09:00:00+00:00"])
def test_a_journal_entry_item_is_the_models(fact_at):
    entry = JournalEntry(
        "aliexpress#A1",
        2,
        "pending",
        "alice",
        "EUR",
        Decimal("0.912345"),
        Holding(Decimal("1.10"), Decimal("0"), Decimal("1.00"), Decimal("0.00")),
        None,
        "pending",
        "d1g35t",
        "2026-05-04T10:00:00+00:00",
        fact_at,
    )
    record = JournalEntryRecord(
        entry.key,
        "ENTRY#000002#pending",
        entry_id=entry.entry_id,
        transition="pending",
        user_id="alice",
        account_currency="EUR",
        fx_rate=entry.fx_rate,
        pending_usd=entry.delta.pending_usd,
        confirmed_usd=entry.delta.confirmed_usd,
        pending=entry.delta.pending,
        confirmed=entry.delta.confirmed,
        state_from=None,
        state_to="pending",
        digest="d1g35t",
        at=entry.at,
        fact_at=fact_at,
    )
    assert _entry_item(entry) == saved(record)


@pytest.mark.parametrize("body", ['{"n": 1}', '{"trail": "' + "x" * 2000 + '"}'])
def test_an_outbox_item_is_the_models_plain_or_compressed(body):
    message = OutboxMessage("0a1b2c", "cashback.pending", "alice", body, '{"kind": "pending"}', "2026-05-04T10:00Z")
    record = OutboxRecord(
        message.event_id,
        event_type=message.event_type,
        user_id=message.user_id,
        body=body,  # the model's own packing of the body (plain or zlib)
        attributes=message.attributes,
        created_at=message.created_at,
    )
    assert _outbox_item(message) == saved(record)
    assert saved(outbox_record(message)) == saved(record)


def test_a_required_value_missing_is_refused_as_the_model_refuses_it():
    with pytest.raises(ValueError, match="JournalEntryRecord.* is required"):
        _item(JournalEntryRecord, {"pk": "k", "sk": "ENTRY#000001#pending"})


def _notification(number: int, body_bytes: int = 40) -> OutboxMessage:
    body = json.dumps({"n": number, "pad": "é" * (body_bytes // 2)})
    return OutboxMessage(
        f"e{number:03d}", "cashback.pending", f"u{number}", body, '{"k": "v"}', f"2026-05-04T10:{number % 60:02d}Z"
    )


def _read_back(item: dict) -> list[OutboxMessage]:
    return outbox_messages(OutboxRecord.from_raw_data(item))


@pytest.mark.parametrize("count", [1, 2, 10, 11, 23])
def test_a_transactions_notifications_share_records_of_at_most_a_publish_batch_and_read_back_whole(count):
    messages = [_notification(number) for number in range(count)]
    items = outbox_items(messages)
    read = [message for item in items for message in _read_back(item)]
    # every notification once, as written, in order; a shared record's each name it, a record of its own names none
    assert [replace(message, holder=None) for message in read] == messages
    assert len(items) == -(-count // PUBLISH_BATCH)
    for item in items:
        held = _read_back(item)
        assert len(held) <= PUBLISH_BATCH
        if len(held) == 1 and "shared_z" not in item:
            assert held[0].holder is None and item == _outbox_item(held[0])
        else:
            assert {message.holder for message in held} == {item["event_id"]["S"]} == {SHARED_PREFIX + held[0].event_id}
            assert item["created_at"]["S"] == max(message.created_at for message in held)


def test_a_notification_too_large_to_share_gets_a_record_of_its_own_and_shared_records_stay_small():
    large = _notification(1, body_bytes=SHARED_BYTES + 10)
    messages = [_notification(0), large, _notification(2), *[_notification(n, SHARED_BYTES // 4) for n in range(3, 9)]]
    items = outbox_items(messages)
    alone = [item for item in items if item["event_id"]["S"] == large.event_id]
    assert len(alone) == 1 and "shared_z" not in alone[0] and _read_back(alone[0]) == [large]
    assert sorted(message.event_id for item in items for message in _read_back(item)) == sorted(
        message.event_id for message in messages
    )
    for item in items:
        size = sum(len(name) + len(value.get("B") or value.get("S", "").encode()) for name, value in item.items())
        assert size < 400 * 1024  # DynamoDB's item limit
