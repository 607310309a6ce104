"""The ledger's transaction builds its items as DynamoDB JSON without PynamoDB models: each must be the item the
model's own save would write (same attributes, same serialised values, the order's version incremented)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pynamodb.models import Model

from accrual.adapters.ledger_items import (
    _decision_item,
    _entry_item,
    _item,
    _line_item,
    _line_record,
    _order_item_values,
    _outbox_item,
    due_shard,
    outbox_record,
)
from accrual.adapters.ledger_tables import (
    ORDER_SK,
    DecisionRecord,
    JournalEntryRecord,
    LineRecord,
    OrderRecord,
    OutboxRecord,
)
from accrual.domain.lifecycle import Holding
from accrual.domain.models import OrderLine
from accrual.ports.ledger import ORDER_FIELDS, JournalEntry, LineWrite, OrderItem, OutboxMessage

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


@pytest.mark.parametrize("version", [None, 0, 7])
@pytest.mark.parametrize("due_at", [None, "2026-06-01T00:00:00+00:00"])
def test_the_order_item_is_the_models_with_its_version_incremented(version, due_at):
    order = OrderItem(
        "aliexpress#A1",
        partner="aliexpress",
        order_id="A1",
        user_id="alice",
        ordered_at="2026-05-04T10:00:00+00:00",
        state="pending",
        decided_at="2026-05-04T10:00:00+00:00",
        review_accounts=["x", "y"],
        account_currency="EUR",
        fx_rate=Decimal("0.912345"),
        pending_usd=Decimal("1.10"),
        pending=Decimal("1.00"),
        entries=3,
        due_at=due_at,
        updated_at="2026-05-04T10:00:00+00:00",
        version=version,
    )
    values = {name: getattr(order, name) for name in ORDER_FIELDS}
    values["due_shard"] = due_shard(order.key) if due_at else None
    if version is None:
        del values["version"]
    record = OrderRecord(order.key, ORDER_SK, **values, line_ids=["A1#1"])
    mine = _order_item_values(order)
    mine.update(line_ids=["A1#1"], version=1 if version is None else version + 1)
    assert _item(OrderRecord, mine) == saved(record)


@pytest.mark.parametrize("indexed", [True, False])
@pytest.mark.parametrize("moved_to", [None, "aliexpress#B2"])
def test_a_line_item_is_the_models(indexed, moved_to):
    write = LineWrite(a_line(), moved_to)
    record = LineRecord(
        "aliexpress#A1",
        "LINE#A1#1",
        line_ref="aliexpress#A1#1" if indexed else None,
        status="settled",
        status_at="2026-05-04T10:00:00.000000Z",
        body=write.line.model_dump_json(),
        moved_to=moved_to,
    )
    assert _line_item("aliexpress#A1", write, indexed=indexed) == saved(record)
    assert saved(_line_record("aliexpress#A1", write, indexed=indexed)) == saved(record)


@pytest.mark.parametrize("text", ['{"short": 1}', '{"trail": "' + "a long trail " * 200 + '"}'])
def test_a_decision_item_is_the_models_plain_or_compressed(text):
    assert _decision_item("aliexpress#A1", text) == saved(DecisionRecord.of("aliexpress#A1", text))


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
        unpublished_shard=str(int(message.event_id, 16) % 4),
    )
    assert _outbox_item(message) == saved(record)
    assert saved(outbox_record(message)) == saved(record)


def test_a_required_value_missing_is_refused_as_the_model_refuses_it():
    with pytest.raises(ValueError, match="JournalEntryRecord.* is required"):
        _item(JournalEntryRecord, {"pk": "k", "sk": "ENTRY#000001#pending"})
