"""The ledger store on DynamoDB: every key format of the ledger's items and every DynamoDB call the ledger, the
readers and the outbox relay make, behind the port `accrual.ports.LedgerStore`.

The services speak in values (`OrderItem`, `OrderChange`, `JournalEntry`, `OutboxMessage`, ...); this module turns
them into items (`ledger_tables` holds the PynamoDB models) and back. Key formats, all here:

  orders table   pk <partner>#<order_id>
                 sk ORDER | ORDER#DECISION | LINE#<line_id> | ENTRY#<seq:06d>#<transition>
                    | REFUSED#<line_id>#<status_at>#<status>
                 line_ref <partner>#<line_id> (GSI by_line), due_shard crc32(pk) % 8 (GSI due, sparse)
  journal        entry_id <pk>#<seq:06d>#<transition>
  balances       user_id
  outbox         event_id, unpublished_shard int(event_id, 16) % 4 (GSI unpublished, sparse)

The tests' in-memory store implements the same port with the same conditions, for the services' tests.
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import (
    CLAIM_PREFIX,
    CLAIM_SK,
    DECISION_SK,
    FACTS_SK,
    LINE_CLAIMS,
    LINE_PREFIX,
    MIGRATION_PK,
    ORDER_SK,
    ORDER_TABLE_MODELS,
    OUTBOX_SHARDS,
    BalanceRecord,
    ClickRecord,
    ControlRecord,
    DecisionRecord,
    FactsRecord,
    JournalEntryRecord,
    LineRecord,
    OrderRecord,
    OutboxRecord,
    RefusedRecord,
    bind_ledger_tables,
    load_order_items,
    pack_text,
    unpack_text,
)
from accrual.adapters.pynamo import DecimalAttribute
from accrual.domain.lifecycle import NOTHING, Holding
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.ports.ledger import (
    DUE_SHARDS,
    ORDER_FIELDS,
    BalanceDelta,
    JournalConflict,
    JournalEntry,
    LineWrite,
    LoadedOrder,
    LostRace,
    OrderChange,
    OrderItem,
    OutboxMessage,
    StoredBalance,
    StoredLine,
    StoredRefusal,
    utc_text,
)
from accrual.settings import Settings

MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
BATCH_GET_KEYS = 100  # BatchGetItem's limit
BATCH_WRITE_ITEMS = 25  # BatchWriteItem's limit
ENTRY_PREFIX = "ENTRY#"
REFUSED_PREFIX = "REFUSED#"


OUTBOX_RETENTION_DAYS = 30  # a published notification's record is kept this long, then DynamoDB's TTL removes it


def due_shard(key: str) -> str:
    return str(zlib.crc32(key.encode()) % DUE_SHARDS)


def unpublished_shard(event_id: str) -> str:
    return str(int(event_id, 16) % OUTBOX_SHARDS)


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


def transaction_size(changes: Sequence[OrderChange], *, with_lines: bool) -> int:
    size = sum(1 + (change.decision is not None) + len(change.entries) + len(change.outbox) for change in changes)
    size += len(merged_balances(changes))
    if with_lines:
        size += sum(len(change.lines) for change in changes)
    return size


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


def _order_item_values(item: OrderItem) -> dict[str, Any]:
    values = {name: getattr(item, name) for name in ORDER_FIELDS}
    values.update(pk=item.key, sk=ORDER_SK, due_shard=due_shard(item.key) if item.due_at else None)
    return values


def _line_id(sort_key: str) -> str:
    return sort_key[len(LINE_PREFIX) :]


def mark_claims_complete(control_table: str, client) -> None:
    """Record in the control table that every line of the orders table has its claim."""
    client.put_item(
        TableName=control_table,
        Item={"pk": {"S": MIGRATION_PK}, "sk": {"S": LINE_CLAIMS}, "at": {"S": utc_text(datetime.now(UTC))}},
    )


def _order_item(record: OrderRecord) -> OrderItem:
    return OrderItem(record.pk, **{name: getattr(record, name) for name in ORDER_FIELDS})


def _line_values(key: str, write: LineWrite, *, indexed: bool) -> dict[str, Any]:
    line = write.line
    return {
        "pk": key,
        "sk": f"{LINE_PREFIX}{line.line_id}",
        "line_ref": line_ref(line.partner, line.line_id) if indexed else None,
        "status": line.status.value,
        "status_at": utc_text(line.status_at),
        "body": line.model_dump_json(),
        "moved_to": write.moved_to,
    }


def _line_record(key: str, write: LineWrite, *, indexed: bool) -> LineRecord:
    return LineRecord(**_line_values(key, write, indexed=indexed))


def _line_item(key: str, write: LineWrite, *, indexed: bool) -> dict[str, dict]:
    return _item(LineRecord, _line_values(key, write, indexed=indexed))


def _decision_item(key: str, text: str) -> dict[str, dict]:
    record = DecisionRecord.of(key, text)  # its size limit
    return _item(DecisionRecord, {"pk": key, "sk": DECISION_SK, "body": record.body, "body_z": record.body_z})


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
        "unpublished_shard": unpublished_shard(message.event_id),
        # no expiry while unpublished: DynamoDB's TTL must never remove a notification before it is published
    }


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


def stream_outbox_event(record: Any) -> dict | None:
    """The outbox event a stream record (Powertools DynamoDBRecord) brings to publish: a new, unpublished event; None
    for the MODIFY that marks one published."""
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image or not image.get("unpublished_shard"):
        return None
    return outbox_event(image)


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


class DynamoLedgerStore:
    """The ledger store on DynamoDB (PynamoDB models bound to the stack's tables).

    A store serves one worker at a time (the pools hand each task its own): what `read_ahead` read for a chunk is
    kept on the instance until the next chunk."""

    def __init__(self, settings: Settings, *, connection: Connection | None = None) -> None:
        bind_ledger_tables(settings)
        self.settings = settings
        # the transactions' own connection (the models keep theirs): its retries are the ledger's throttling policy
        self.connection = connection or Connection(
            region=settings.region, host=settings.dynamodb_host, max_retry_attempts=8
        )
        self._ahead: dict[str, LoadedOrder] = {}  # orders read ahead, each served once by load_order
        self._homes: dict[str, set[str]] = {}  # line ref -> the orders its claim names (read ahead)
        self._known: dict[str, tuple[int | None, frozenset[str]]] = {}  # key -> (version read, its line ids)
        self._claims_read: bool | None = None  # line_homes reads claims (True) or the by_line index (False)

    # ---- orders ---------------------------------------------------------------------------------------------------
    def load_order(self, key: str) -> LoadedOrder:
        ahead = self._ahead.pop(key, None)
        if ahead is not None:
            return ahead
        record, decision, lines = load_order_items(key)
        self._known[key] = (record.version if record else None, frozenset(_line_id(item.sk) for item in lines))
        return LoadedOrder(
            _order_item(record) if record else None,
            decision.text if decision else None,
            tuple(StoredLine(item.body, item.moved_to) for item in lines),
        )

    def read_ahead(self, keys: Iterable[str], lines: Sequence[OrderLine] = ()) -> None:
        """Read a chunk's orders (and the claims of lines new to their order) in BatchGetItem calls, so that their
        `load_order` and `line_homes` cost no call of their own, and write those lines' claims before any
        transaction places them. An order this cannot read whole (written before orders listed their lines, or with
        a large write unfinished) is left to `load_order`'s Query. Forgets the previous chunk's reads."""
        self._ahead, self._homes, self._known = {}, {}, {}
        self.claims_complete()
        incoming: dict[str, set[str]] = {key: set() for key in keys}
        for line in lines:
            incoming.setdefault(line.order_key, set()).add(line.line_id)
        first = self._batch_get(
            [(key, sort_key) for key in incoming for sort_key in (ORDER_SK, FACTS_SK)]
            + [(key, LINE_PREFIX + line_id) for key, line_ids in incoming.items() for line_id in line_ids]
        )
        listed: dict[str, list[str]] = {}
        for key, line_ids in incoming.items():
            order = first.get((key, ORDER_SK))
            facts = first.get((key, FACTS_SK))
            unfinished = facts is not None and (
                order is None or int(order["version"]["N"]) <= int(facts["version"]["N"])
            )
            if unfinished or (order is not None and "line_ids" not in order):
                continue  # the Query reads it
            if order is None:
                if not any((key, LINE_PREFIX + line_id) in first for line_id in line_ids):
                    self._ahead[key] = LoadedOrder(None, None, ())
                    self._known[key] = (None, frozenset())
                continue
            listed[key] = [value["S"] for value in order["line_ids"].get("L", [])]
        new_lines = {
            line_ref(line.partner, line.line_id): line.order_key
            for line in lines
            if (line.order_key, LINE_PREFIX + line.line_id) not in first
        }
        found = first | self._batch_get(
            [(key, DECISION_SK) for key in listed]
            + [
                (key, LINE_PREFIX + line_id)
                for key, line_ids in listed.items()
                for line_id in line_ids
                if (key, LINE_PREFIX + line_id) not in first
            ]
            + [(CLAIM_PREFIX + ref, CLAIM_SK) for ref in new_lines]
        )
        for key, names in listed.items():
            items = [found.get((key, LINE_PREFIX + line_id)) for line_id in sorted(names)]
            present = [item for item in items if item is not None]
            if len(present) < len(items):
                continue  # a listed line is missing: the Query decides
            record = OrderRecord.from_raw_data(found[(key, ORDER_SK)])
            decision = found.get((key, DECISION_SK))
            self._ahead[key] = LoadedOrder(
                _order_item(record),
                DecisionRecord.from_raw_data(decision).text if decision else None,
                tuple(StoredLine(item["body"]["S"], item.get("moved_to", {}).get("S")) for item in present),
            )
            self._known[key] = (record.version, frozenset(names))
        claims = {}
        for ref, key in new_lines.items():
            claim = found.get((CLAIM_PREFIX + ref, CLAIM_SK))
            homes = set(claim["homes"]["SS"]) if claim else set()
            if key not in homes:
                claims[ref] = homes | {key}
            self._homes[ref] = homes | {key}
        self._put_claims(claims)

    def _batch_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """Items of the orders table by (pk, sk), strongly consistent, in BatchGetItem calls of up to 100 keys
        (what DynamoDB leaves unprocessed is asked again)."""
        client, table = self.connection.client, self.settings.orders_table
        found: dict[tuple[str, str], dict] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            request = {
                table: {
                    "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in unique[start : start + BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            for attempt in itertools.count():
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(table, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt) * random.random())
        return found

    def _put_claims(self, claims: Mapping[str, set[str]]) -> None:
        """Claims written in BatchWriteItem calls of 25 (a claim only ever gains homes here)."""
        client, table = self.connection.client, self.settings.orders_table
        requests = [
            {
                "PutRequest": {
                    "Item": {"pk": {"S": CLAIM_PREFIX + ref}, "sk": {"S": CLAIM_SK}, "homes": {"SS": sorted(homes)}}
                }
            }
            for ref, homes in sorted(claims.items())
        ]
        for start in range(0, len(requests), BATCH_WRITE_ITEMS):
            pending = {table: requests[start : start + BATCH_WRITE_ITEMS]}
            for attempt in itertools.count():
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt) * random.random())

    def _claim(self, key: str, line: OrderLine) -> None:
        """The claim of a line placed in an order outside a read-ahead: one conditional-free ADD (idempotent)."""
        ref = line_ref(line.partner, line.line_id)
        if key in self._homes.get(ref, ()):
            return
        self.connection.client.update_item(
            TableName=self.settings.orders_table,
            Key={"pk": {"S": CLAIM_PREFIX + ref}, "sk": {"S": CLAIM_SK}},
            UpdateExpression="ADD homes :home",
            ExpressionAttributeValues={":home": {"SS": [key]}},
        )
        self._homes.setdefault(ref, set()).add(key)

    def claims_complete(self) -> bool:
        """Whether every stored line has its claim (recorded by `accrual migrate`, or by the local provisioning of a
        new stack), so that `line_homes` need not ask the by_line index. Asked once per store."""
        if self._claims_read is None:
            key = {"pk": {"S": MIGRATION_PK}, "sk": {"S": LINE_CLAIMS}}
            answer = self.connection.client.get_item(
                TableName=self.settings.control_table, Key=key, ConsistentRead=True
            )
            self._claims_read = "Item" in answer
        return self._claims_read

    def apply(self, changes: Sequence[OrderChange]) -> None:
        """One transaction; when the line items would not fit in it (100 items) they are written first as facts,
        each conditional on being newer than what is stored, under the order's FACTS marker. Each order item lists
        its line items when this store read the order at the version it writes over."""
        for change in changes:
            self._ahead.pop(change.key, None)  # read before this change: stale now
            _, stored = self._known.get(change.key, (None, None))
            for write in change.lines:
                if write.moved_to is None and (stored is None or write.line.line_id not in stored):
                    self._claim(change.key, write.line)  # a line new to this order: its claim first
        # the by_line index serves only tables not migrated yet (asked only when lines are written)
        indexed = any(change.lines for change in changes) and not self.claims_complete()
        facts_first = transaction_size(changes, with_lines=True) > MAX_TRANSACTION_ITEMS
        if facts_first:
            for change in changes:
                FactsRecord(change.key, version=change.order.version or 0).save()
                for write in change.lines:
                    self.put_line_fact(change.key, write)
        # The items go as DynamoDB JSON straight from the values, serialised by the models' own attributes (the same
        # item as a model's save), on the low-level client: building PynamoDB objects for items written once was
        # most of the transaction's CPU. Puts first, then the balances' updates, as `kinds` lists them. The client is
        # the PynamoDB connection's, made without botocore's parameter validation: safe here, the request is built by
        # this code alone and its items are tested against the models' own (tests/unit/test_ledger_items.py).
        orders, balances = self.settings.orders_table, self.settings.balances_table
        puts: list[dict] = []
        kinds: list[str] = []  # what each item of the transaction is, to read its cancellation reasons
        for change in changes:
            puts.append(self._order_put(change))
            kinds.append("order")
            if change.decision is not None:
                puts.append({"TableName": orders, "Item": _decision_item(change.key, change.decision)})
                kinds.append("decision")
            if not facts_first:
                for write in change.lines:
                    puts.append({"TableName": orders, "Item": _line_item(change.key, write, indexed=indexed)})
                    kinds.append("line")
            for entry in change.entries:
                puts.append(_put_new(orders, _entry_item(entry), "pk"))
                kinds.append("entry")
            for message in change.outbox:
                puts.append(_put_new(self.settings.outbox_table, _outbox_item(message), "event_id"))
                kinds.append("outbox")
        updates = [
            {
                "TableName": balances,
                "Key": {"user_id": {"S": balance.user_id}},
                "UpdateExpression": "SET #c = :c ADD #pu :pu, #cu :cu, #p :p, #cf :cf",
                "ExpressionAttributeNames": {
                    "#c": "account_currency",
                    "#pu": "pending_usd",
                    "#cu": "confirmed_usd",
                    "#p": "pending",
                    "#cf": "confirmed",
                },
                "ExpressionAttributeValues": {
                    ":c": {"S": balance.account_currency},
                    ":pu": {"N": _money(balance.delta.pending_usd)},
                    ":cu": {"N": _money(balance.delta.confirmed_usd)},
                    ":p": {"N": _money(balance.delta.pending)},
                    ":cf": {"N": _money(balance.delta.confirmed)},
                },
            }
            for balance in merged_balances(changes)
        ]
        kinds += ["balance"] * len(updates)
        try:
            self.connection.client.transact_write_items(
                TransactItems=[{"Put": put} for put in puts] + [{"Update": update} for update in updates]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons", [])
            codes = [None if reason.get("Code") == "None" else reason.get("Code") for reason in reasons]
            _raise_for(changes, kinds, codes, error)

    def _order_put(self, change: OrderChange) -> dict:
        """The order item's put, conditional on the version read (none: a new order), which it increments."""
        record = _order_item_values(change.order)
        version, stored = self._known.pop(change.key, (-1, frozenset()))
        if version == change.order.version:
            record["line_ids"] = sorted(stored | {write.line.line_id for write in change.lines})
        read = change.order.version
        record["version"] = 1 if read is None else read + 1
        put = {"TableName": self.settings.orders_table, "Item": _item(OrderRecord, record)}
        if read is None:
            return {
                **put,
                "ConditionExpression": "attribute_not_exists(#v)",
                "ExpressionAttributeNames": {"#v": "version"},
            }
        return {
            **put,
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": str(read)}},
        }

    def put_line_fact(self, key: str, write: LineWrite) -> None:
        """A line item written on its own, only over an older version of itself (a concurrent run may have stored
        a newer one: then this attempt lost the race). A tombstone replaces the live item it retires."""
        item = _line_record(key, write, indexed=not self.claims_complete())
        if write.moved_to is not None:
            condition = LineRecord.moved_to.does_not_exist() & (LineRecord.body == item.body)
        else:
            condition = (
                LineRecord.sk.does_not_exist()
                | LineRecord.moved_to.exists()
                | (LineRecord.status_at < item.status_at)
                | ((LineRecord.status_at == item.status_at) & (LineRecord.body < item.body))
            )
        try:
            item.save(condition=condition)
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                existing = LineRecord.get(key, item.sk, consistent_read=True)
                if existing.body == item.body and (existing.moved_to or None) == write.moved_to:
                    return  # already written by an earlier attempt
                raise LostRace() from error
            raise

    def line_homes(self, partner: str, line_id: str) -> set[str]:
        """From the line's claim (read ahead, else one GetItem); on a table not migrated yet, also from the by_line
        index (lines placed before claims existed are only there)."""
        ref = line_ref(partner, line_id)
        if ref not in self._homes:
            claim = self.connection.client.get_item(
                TableName=self.settings.orders_table,
                Key={"pk": {"S": CLAIM_PREFIX + ref}, "sk": {"S": CLAIM_SK}},
                ConsistentRead=True,
            ).get("Item")
            self._homes[ref] = set(claim["homes"]["SS"]) if claim else set()
        homes = set(self._homes[ref])
        if not self.claims_complete():
            homes |= {item.pk for item in LineRecord.by_line.query(ref)}
        return homes

    def due_orders(self, until: str, page_size: int, shards: Iterable[int] | None = None) -> Iterator[str]:
        for shard in range(DUE_SHARDS) if shards is None else shards:
            for item in OrderRecord.due.query(str(shard), OrderRecord.due_at <= until, page_size=page_size):
                yield item.pk

    def record_refusal(self, key: str, line: OrderLine, reason: str, state: str, at: str) -> None:
        RefusedRecord(key, refusal_ref(line), reason=reason, state=state, body=line.model_dump_json(), at=at).save()

    def find_orders(self, order_number: str) -> list[str]:
        return find_order_keys(order_number)

    def orders_of_user(self, user_id: str) -> list[str]:
        return sorted({item.pk for item in OrderRecord.by_user.query(user_id)})

    def orders_between(self, since: str | None, until: str | None) -> list[str]:
        condition = OrderRecord.sk == ORDER_SK
        if since is not None:
            condition &= OrderRecord.ordered_at >= since
        if until is not None:
            condition &= OrderRecord.ordered_at < until
        return sorted(item.pk for item in OrderRecord.scan(condition, attributes_to_get=["pk"]))

    def orders_placed(self, since: str, until: str, page_size: int = 500) -> Iterator[str]:
        # a paged scan of the order items alone (filtered server-side, only the key read back): a month's report
        # runs once a month, so it pays one read of the table rather than an index written on every order change
        condition = (OrderRecord.sk == ORDER_SK) & (OrderRecord.ordered_at >= since) & (OrderRecord.ordered_at < until)
        for item in OrderRecord.scan(condition, attributes_to_get=["pk"], page_size=page_size):
            yield item.pk

    def journal(self, key: str) -> list[JournalEntry]:
        return [
            _entry_of(record)
            for record in JournalEntryRecord.query(key, JournalEntryRecord.sk.startswith(ENTRY_PREFIX))
        ]

    def refusals(self, key: str) -> list[StoredRefusal]:
        return [
            StoredRefusal(item.sk, item.reason, item.state, item.at, item.body)
            for item in RefusedRecord.query(key, RefusedRecord.sk.startswith(REFUSED_PREFIX))
        ]

    def balance(self, user_id: str) -> StoredBalance | None:
        try:
            return _balance_of(BalanceRecord.get(user_id, consistent_read=True))
        except DoesNotExist:
            return None

    # ---- the audit's scans ----------------------------------------------------------------------------------------
    def scan_journal(self) -> Iterator[JournalEntry]:
        for record in JournalEntryRecord.scan(JournalEntryRecord.sk.startswith(ENTRY_PREFIX)):
            yield _entry_of(record)

    def scan_balances(self) -> Iterator[StoredBalance]:
        for record in BalanceRecord.scan():
            yield _balance_of(record)

    def scan_live_lines(self) -> Iterator[tuple[str, str]]:
        for item in LineRecord.scan(LineRecord.sk.startswith(LINE_PREFIX) & LineRecord.moved_to.does_not_exist()):
            yield line_ref(item.pk.split("#", 1)[0], _line_id(item.sk)), item.pk

    def scan_orders(self) -> Iterator[OrderItem]:
        for record in OrderRecord.scan(OrderRecord.sk == ORDER_SK):
            yield _order_item(record)

    # ---- the outbox -----------------------------------------------------------------------------------------------
    def unpublished(self, until: str, page_size: int) -> Iterator[OutboxMessage]:
        """The sparse `unpublished` index, oldest first per shard; each event re-read (strongly consistent) and
        skipped when it was published meanwhile."""
        for shard in range(OUTBOX_SHARDS):
            for key in OutboxRecord.unpublished.query(
                str(shard), OutboxRecord.created_at <= until, page_size=page_size
            ):
                item = OutboxRecord.get(key.event_id, consistent_read=True)
                if not item.published_at:
                    yield _outbox_message(item)

    def mark_published(self, event_id: str, at: str, message_id: str) -> None:
        try:
            OutboxRecord(event_id).update(
                actions=[
                    OutboxRecord.published_at.set(at),
                    OutboxRecord.message_id.set(message_id),
                    OutboxRecord.unpublished_shard.remove(),
                    # kept a while after publishing (an operator's look), then TTL removes it. Storage time, from the
                    # clock (a run with a backdated --now must not have its records removed at once)
                    OutboxRecord.expires_at.set(int(time.time()) + OUTBOX_RETENTION_DAYS * 86400),
                ],
                condition=OutboxRecord.event_id.exists(),
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise

    # ---- reference data -------------------------------------------------------------------------------------------
    def current_config(self) -> AccrualConfig:
        return reference_data.current_config()

    def config_version(self, version: str) -> AccrualConfig:
        return reference_data.config_version(version)

    def find_clicks(self, sub_ids: Iterable[str]) -> dict[str, Click | None]:
        return reference_data.find_clicks(sub_ids)

    def order_sub_ids(self, keys: Sequence[str]) -> set[str]:
        # BatchGetItem of the order items, 100 keys a call (PynamoDB splits and retries unprocessed keys)
        found = OrderRecord.batch_get([(key, "ORDER") for key in keys], attributes_to_get=["pk", "sk", "sub_id"])
        return {record.sub_id for record in found if record.sub_id}

    def register_new_user_coupon(self, user_id: str, buyer_account: str, order_key: str, *, now: datetime) -> bool:
        return reference_data.register_new_user_coupon(user_id, buyer_account, order_key, now=now)

    def new_user_coupon_uses(self, user_id: str) -> list[tuple[str, str]]:
        return reference_data.new_user_coupon_uses(user_id)

    def coupon_accounts_decided(self, user_id: str) -> frozenset[str]:
        return reference_data.coupon_accounts_decided(user_id)

    def record_coupon_accounts_decided(self, user_id: str, accounts: frozenset[str]) -> None:
        reference_data.record_coupon_accounts_decided(user_id, accounts)


def find_order_keys(order_number: str) -> list[str]:
    """Order keys for a store order number, a partner order number, or a key `partner#order_id` itself."""
    keys = {item.pk for item in OrderRecord.by_order_id.query(order_number)}
    keys |= {item.pk for item in OrderRecord.by_partner_order_id.query(order_number)}
    if not keys and "#" in order_number:
        try:
            keys.add(OrderRecord.get(order_number, ORDER_SK).pk)
        except DoesNotExist:
            pass
    return sorted(keys)


def _raise_for(changes: Sequence[OrderChange], kinds: list[str], codes: list[str | None], error: Exception) -> None:
    """Tell a lost race (an order changed, a transaction conflict: retry) from a journal or notification id taken
    with another payload while the orders did not change (a JournalConflict, never passed off)."""
    failed = {
        kinds[index] for index, code in enumerate(codes) if code == "ConditionalCheckFailed" and index < len(kinds)
    }
    if "order" in failed or "TransactionConflict" in codes:
        raise LostRace() from error
    if failed & {"entry", "outbox"}:
        raise JournalConflict(entry_taken(changes, codes)) from error
    raise error


def entry_taken(changes: Sequence[OrderChange], codes: object) -> str:
    keys = ", ".join(change.key for change in changes)
    return (
        f"order {keys}: a journal entry or notification with this id already exists with another payload while "
        f"the order itself did not change ({codes})"
    )


# ---- connections shared by a worker's threads ------------------------------------------------------------------------
def warm_connections(settings: Settings, threads: int = 1) -> None:
    """Create the shared PynamoDB connections' botocore clients in this thread (client creation goes through a
    botocore session, which is not thread-safe; using a created client from many threads is), with an HTTP
    connection pool as large as the threads that share them (botocore keeps 10, and a thread beyond them would open
    and drop a connection per call)."""
    bind_ledger_tables(settings)
    for model in {
        *ORDER_TABLE_MODELS,
        BalanceRecord,
        OutboxRecord,
        ClickRecord,
        ControlRecord,
    }:
        if getattr(model.Meta, "max_pool_connections", 10) < threads:
            model.Meta.max_pool_connections = threads
            model._connection = None
        _ = model._get_connection().connection.client


_transaction_connections: dict[tuple[str, str | None, int], Connection] = {}
_connections_lock = threading.Lock()


def transaction_connection(settings: Settings, threads: int) -> Connection:
    """One PynamoDB connection (one botocore client, its HTTP pool sized for the threads) shared by every ledger of
    the process for its transactions, kept across units and warm invocations: creating a client costs tens of
    milliseconds of CPU, which at 16 threads a unit would be seconds."""
    key = (settings.region, settings.dynamodb_host, max(threads, 10))
    with _connections_lock:
        if key not in _transaction_connections:
            connection = Connection(
                region=settings.region, host=settings.dynamodb_host, max_retry_attempts=8, max_pool_connections=key[2]
            )
            _ = connection.client
            _transaction_connections[key] = connection
        return _transaction_connections[key]
