"""The ledger's DynamoDB items: the key formats and each item built from the port's values as DynamoDB JSON (serialised
by the PynamoDB models' own attributes, without building model objects for items written once), and read back into
values. `DynamoLedgerStore` (ledger_store.py) sends them."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.models import Model

from accrual.adapters.ledger_packing import PLAIN_FIELDS, PackedLine, plain_partner_order_id, unpack_order
from accrual.adapters.ledger_tables import (
    LINE_PREFIX,
    MIGRATION_PK,
    ORDER_SK,
    SHARED_PREFIX,
    BalanceRecord,
    JournalEntryRecord,
    OrderRecord,
    OutboxRecord,
    pack_text,
    unpack_text,
)
from accrual.adapters.pynamo import DecimalAttribute
from accrual.domain.lifecycle import NOTHING, Holding
from accrual.domain.models import OrderLine
from accrual.ports.ledger import (
    DUE_SHARDS,
    ORDER_FIELDS,
    BalanceDelta,
    JournalEntry,
    OrderChange,
    OrderItem,
    OutboxMessage,
    StoredBalance,
    utc_text,
)
from accrual.ports.notify import PUBLISH_BATCH

BATCH_GET_KEYS = 100  # BatchGetItem's limit
BATCH_WRITE_ITEMS = 25  # BatchWriteItem's limit
ENTRY_PREFIX = "ENTRY#"
REFUSED_PREFIX = "REFUSED#"


def due_shard(key: str) -> str:
    return str(zlib.crc32(key.encode()) % DUE_SHARDS)


def line_ref(partner: str, line_id: str) -> str:
    return f"{partner}#{line_id}"


def merged_balances(changes: Sequence[OrderChange]) -> list[BalanceDelta]:
    """One delta per shopper over all the changes (a transaction may touch an item once), sorted by shopper."""
    merged: dict[str, tuple[Holding, str]] = {}
    for change in changes:
        for balance in change.balances:
            held, _ = merged.get(balance.user_id, (NOTHING, balance.account_currency))
            merged[balance.user_id] = (held.plus(balance.delta), balance.account_currency)
    return [BalanceDelta(user, delta, currency) for user, (delta, currency) in sorted(merged.items())]


def refusal_ref(line: OrderLine) -> str:
    return f"{REFUSED_PREFIX}{line.line_id}#{utc_text(line.status_at)}#{line.status.value}"


# ---- DynamoDB --------------------------------------------------------------------------------------------------------


def _item(model: type[Model], values: Mapping[str, Any]) -> dict[str, dict]:
    """A model's item in DynamoDB JSON, each value serialised by the model's own attribute, as `Model.serialize` does
    (a None is left out, the attribute's default fills a value not given) but without building the model."""
    item: dict[str, dict] = {}
    for name, attribute in model.get_attributes().items():
        if name in values:
            value = values[name]
        else:
            value = attribute.default() if callable(attribute.default) else attribute.default
        if value is None:
            if not attribute.null:
                raise ValueError(f"{model.__name__}.{name} is required")
            continue
        item[attribute.attr_name] = {attribute.attr_type: attribute.serialize(value)}
    return item


def _put_new(table: str, item: dict[str, dict], key: str) -> dict:
    """A put that only creates (a journal entry's or a notification's id is never written twice)."""
    return {
        "TableName": table,
        "Item": item,
        "ConditionExpression": "attribute_not_exists(#k)",
        "ExpressionAttributeNames": {"#k": key},
    }


def _money(value: Decimal) -> str:
    return DecimalAttribute().serialize(value)


def _order_item_values(item: OrderItem, packed: bytes) -> dict[str, Any]:
    """The order item's attributes: the plain ones keys and indexes need, the rest in `packed` (ledger_packing.py).
    The index keys are set only when there is something to find: `partner_order_id` only when it is not the order
    number itself (the key already names that), `due_shard` only while the order is due."""
    values: dict[str, Any] = {name: getattr(item, name) for name in PLAIN_FIELDS}
    values["partner_order_id"] = plain_partner_order_id(item)
    values.update(pk=item.key, sk=ORDER_SK, packed=packed, due_shard=due_shard(item.key) if item.due_at else None)
    return values


def _line_id(sort_key: str) -> str:
    return sort_key[len(LINE_PREFIX) :]


def mark_migrated(control_table: str, client, steps: Sequence[str], *, at: datetime) -> None:
    """Record in the control table that these migrations are done (since `at`): LINE_CLAIMS, every line of the orders
    table has its claim; PACKED_ORDERS, every order item is of the packed form."""
    for step in steps:
        client.put_item(
            TableName=control_table, Item={"pk": {"S": MIGRATION_PK}, "sk": {"S": step}, "at": {"S": utc_text(at)}}
        )


def stored_order(record: OrderRecord, *, with_lines: bool = True) -> tuple[OrderItem, str | None, list[PackedLine]]:
    """The order, its decision and its lines from an order item of the packed form (`with_lines=False`: the order
    alone, its decision and lines left packed)."""
    plain = {name: getattr(record, name) for name in (*PLAIN_FIELDS, "version")}
    return unpack_order(record.pk, plain, record.packed, with_lines=with_lines)


def _order_item(record: OrderRecord) -> OrderItem:
    if record.packed is not None:
        return stored_order(record, with_lines=False)[0]
    return OrderItem(record.pk, **{name: getattr(record, name) for name in ORDER_FIELDS})


def _entry_item(entry: JournalEntry) -> dict[str, dict]:
    delta = entry.delta
    return _item(
        JournalEntryRecord,
        {
            "pk": entry.key,
            "sk": f"{ENTRY_PREFIX}{entry.sequence:06d}#{entry.transition}",
            "entry_id": entry.entry_id,
            "transition": entry.transition,
            "user_id": entry.user_id,
            "account_currency": entry.account_currency,
            "fx_rate": entry.fx_rate,
            "pending_usd": delta.pending_usd,
            "confirmed_usd": delta.confirmed_usd,
            "pending": delta.pending,
            "confirmed": delta.confirmed,
            "state_from": entry.state_from,
            "state_to": entry.state_to,
            "digest": entry.digest,
            "at": entry.at,
            "fact_at": entry.fact_at,
        },
    )


def _entry_of(record: JournalEntryRecord) -> JournalEntry:
    _, number, _ = record.sk.split("#", 2)
    return JournalEntry(
        record.pk,
        int(number),
        record.transition,
        record.user_id,
        record.account_currency,
        record.fx_rate,
        Holding(record.pending_usd, record.confirmed_usd, record.pending, record.confirmed),
        record.state_from,
        record.state_to,
        record.digest,
        record.at,
        record.fact_at,
    )


def _outbox_values(message: OutboxMessage) -> dict[str, Any]:
    plain, packed = pack_text(message.body)
    return {
        "event_id": message.event_id,
        "event_type": message.event_type,
        "user_id": message.user_id,
        "plain_body": plain,
        "body_z": packed,
        "attributes": message.attributes,
        "created_at": message.created_at,
        # no index and no expiry: the outbox holds the notifications not yet published, and publishing deletes one
    }


# A transaction's notifications share one outbox record (`outbox_items`) up to one publish batch of them (a sweep
# publishes a record's notifications in one call) and SHARED_BYTES of their JSON, well under DynamoDB's 400 KB item.
SHARED_BYTES = 300 * 1024
_MESSAGE_FIELDS = ("event_id", "event_type", "user_id", "body", "attributes", "created_at")


def outbox_items(messages: Sequence[OutboxMessage]) -> list[dict[str, dict]]:
    """The outbox items of one transaction's notifications: shared records of several, a record of its own for a
    notification alone (or too large to share)."""
    return [
        shared_item(SHARED_PREFIX + record[0]["event_id"], record)
        if len(record) > 1
        else _outbox_item(OutboxMessage(**record[0]))
        for record in outbox_records(messages)
    ]


def outbox_records(messages: Sequence[OutboxMessage]) -> list[list[dict[str, str]]]:
    """One transaction's notifications (their fields) as its outbox records hold them, in order: up to a publish
    batch of them and SHARED_BYTES of their text to a record; a notification larger than that alone."""
    records: list[list[dict[str, str]]] = []
    group: list[dict[str, str]] = []
    size = 0
    for message in messages:
        fields = message_fields(message)
        length = sum(len(value) for value in fields.values())
        if length > SHARED_BYTES:
            records.append([fields])
            continue
        if group and (len(group) == PUBLISH_BATCH or size + length > SHARED_BYTES):
            records.append(group)
            group, size = [], 0
        group.append(fields)
        size += length
    if group:
        records.append(group)
    return records


def shared_item(event_id: str, group: Sequence[Mapping[str, str]]) -> dict[str, dict]:
    """A shared outbox record: the notifications' fields as compressed JSON."""
    text = json.dumps(list(group), separators=(",", ":"), ensure_ascii=False)
    return _item(
        OutboxRecord,
        {
            "event_id": event_id,
            "shared_z": zlib.compress(text.encode(), 6),
            "created_at": max(fields["created_at"] for fields in group),
        },
    )


def message_fields(message: OutboxMessage) -> dict[str, str]:
    return {name: getattr(message, name) for name in _MESSAGE_FIELDS}


def outbox_messages(record: OutboxRecord) -> list[OutboxMessage]:
    """The notifications an outbox record holds: its own, or those of a shared record (each naming it)."""
    if record.shared_z is None:
        return [_outbox_message(record)]
    return [OutboxMessage(**fields, holder=record.event_id) for fields in json.loads(zlib.decompress(record.shared_z))]


def outbox_record(message: OutboxMessage) -> OutboxRecord:
    return OutboxRecord(**_outbox_values(message))


def _outbox_item(message: OutboxMessage) -> dict[str, dict]:
    return _item(OutboxRecord, _outbox_values(message))


def _outbox_message(record: OutboxRecord) -> OutboxMessage:
    return OutboxMessage(
        record.event_id,
        record.event_type,
        record.user_id,
        record.body,
        record.attributes,
        record.created_at,
    )


def stream_outbox_events(record: Any) -> list[dict]:
    """The outbox events a stream record (Powertools DynamoDBRecord) brings to publish: a new record's, one or the
    several of a shared record (each naming it as `holder`); none for the REMOVE of a published record (and the
    MODIFY that marked one published in the earlier form)."""
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or image.get("published_at"):
        return []
    shared = image.get("shared_z")
    if shared is None:
        return [outbox_event(image)]
    packed = base64.b64decode(shared) if isinstance(shared, str) else getattr(shared, "value", shared)
    return [{**fields, "holder": image["event_id"]} for fields in json.loads(zlib.decompress(packed))]


def outbox_event(image: dict) -> dict:
    """An outbox item's stream image (Powertools' deserialised NewImage) with its body as text, whichever form it
    was stored in (Powertools leaves a binary attribute as its base64 text)."""
    packed = image.get("body_z")
    if isinstance(packed, str):
        packed = base64.b64decode(packed)
    return {**image, "body": unpack_text(image.get("body"), getattr(packed, "value", packed))}


def _balance_of(record: BalanceRecord) -> StoredBalance:
    zero = Decimal("0")
    return StoredBalance(
        record.user_id,
        record.account_currency,
        Holding(
            record.pending_usd or zero, record.confirmed_usd or zero, record.pending or zero, record.confirmed or zero
        ),
    )
