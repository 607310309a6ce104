"""Reads in batches: before the ledger settles a hundred orders it asks `read_ahead`, which reads their items, the
incoming lines, the decisions and the claims of lines new to their order in `BatchGetItem` calls, and writes the claims
of new lines (`BatchWriteItem`) before any transaction places them. `DynamoLedgerStore` inherits it."""

from __future__ import annotations

import functools
import itertools
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pynamodb.connection import Connection

from accrual.adapters.ledger_items import (
    BATCH_GET_KEYS,
    BATCH_WRITE_ITEMS,
    _order_item,
    line_ref,
    stored_order,
)
from accrual.adapters.ledger_packing import PackedLine, loaded, stored_line
from accrual.adapters.ledger_tables import (
    CLAIM_PREFIX,
    CLAIM_SK,
    DECISION_SK,
    FACTS_SK,
    LINE_CLAIMS,
    LINE_PREFIX,
    MIGRATION_PK,
    ORDER_SK,
    PACKED_ORDERS,
    DecisionRecord,
    OrderRecord,
)
from accrual.domain.models import OrderLine
from accrual.ports.ledger import LoadedOrder, OrderItem
from accrual.settings import Settings


@dataclass
class _Read:
    """What `fetch_ahead` read: the orders (each served once by load_order), the claims' homes, the versions read."""

    orders: dict[str, LoadedOrder] = field(default_factory=dict)
    homes: dict[str, set[str]] = field(default_factory=dict)
    known: dict[str, tuple[int | None, dict[str, PackedLine], str | None]] = field(default_factory=dict)

    def remember(self, key: str, order: OrderItem | None, decision: str | None, lines: list[PackedLine]) -> None:
        self.orders[key] = loaded(order, decision, lines)
        self.known[key] = (order.version if order else None, {line.line_id: line for line in lines}, decision)


class ReadAhead:
    """The batched reads of `DynamoLedgerStore` (the attributes are the store's)."""

    settings: Settings
    connection: Connection
    _ahead: dict[str, LoadedOrder]
    _homes: dict[str, set[str]]
    _known: dict[str, tuple[int | None, dict[str, PackedLine], str | None]]
    _migrated: frozenset[str] | None

    def fetch_ahead(self, keys: Iterable[str], lines: Sequence[OrderLine] = ()) -> Callable[[], None]:
        """Read a chunk's orders (and the claims of lines new to their order) in BatchGetItem calls, so that their
        `load_order` and `line_homes` cost no call of their own, and write those lines' claims before any
        transaction places them. An order item of the packed form holds everything; one of the earlier form is read
        with the decision and line items it lists; an order this cannot read whole (written before orders listed
        their lines, or with a large write unfinished) is left to `load_order`'s Query.
        The reads go into a read of their own (so they may run in another thread while this store serves the
        previous chunk); the call returned makes that read the store's, forgetting the previous chunk's (in the
        store's own thread)."""
        read = _Read()
        # once every order is packed there is no line item of the earlier form to look for (the incoming lines' keys)
        packed = self.packed_complete()
        incoming: dict[str, set[str]] = {key: set() for key in keys}
        for line in lines:
            incoming.setdefault(line.order_key, set()).add(line.line_id)
        first = self._batch_get(
            [(key, sort_key) for key in incoming for sort_key in (ORDER_SK, FACTS_SK)]
            + [(key, LINE_PREFIX + line_id) for key, line_ids in incoming.items() for line_id in line_ids if not packed]
        )
        listed: dict[str, list[str]] = {}
        held: dict[str, set[str]] = {}  # order key -> the line ids it holds, for the orders read whole
        for key, line_ids in incoming.items():
            order = first.get((key, ORDER_SK))
            facts = first.get((key, FACTS_SK))
            unfinished = facts is not None and (
                order is None or int(order["version"]["N"]) <= int(facts["version"]["N"])
            )
            if unfinished or (order is not None and "packed" not in order and "line_ids" not in order):
                continue  # the Query reads it
            if order is None:
                if packed or not any((key, LINE_PREFIX + line_id) in first for line_id in line_ids):
                    read.remember(key, None, None, [])
                    held[key] = set()
                continue
            if "packed" in order:
                stored, decision, packed_lines = stored_order(OrderRecord.from_raw_data(order))
                read.remember(key, stored, decision, packed_lines)
                held[key] = {line.line_id for line in packed_lines}
                continue
            listed[key] = [value["S"] for value in order["line_ids"].get("L", [])]
        new_lines = {
            line_ref(line.partner, line.line_id): line.order_key
            for line in lines
            if line.line_id not in held.get(line.order_key, ())
            and (line.order_key in held or (line.order_key, LINE_PREFIX + line.line_id) not in first)
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
            decision_item = found.get((key, DECISION_SK))
            read.remember(
                key,
                _order_item(OrderRecord.from_raw_data(found[(key, ORDER_SK)])),
                DecisionRecord.from_raw_data(decision_item).text if decision_item else None,
                [stored_line(item["body"]["S"], item.get("moved_to", {}).get("S")) for item in present],
            )
        claims = {}
        for ref, key in new_lines.items():
            claim = found.get((CLAIM_PREFIX + ref, CLAIM_SK))
            homes = set(claim["homes"]["SS"]) if claim else set()
            if key not in homes:
                claims[ref] = homes | {key}
            read.homes[ref] = homes | {key}
        self._put_claims(claims)
        return functools.partial(self._install, read)

    def _install(self, read: _Read) -> None:
        self._ahead, self._homes, self._known = read.orders, read.homes, read.known

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
        """Whether every stored line has its claim, so that `line_homes` need not ask the by_line index."""
        return LINE_CLAIMS in self._migrations()

    def packed_complete(self) -> bool:
        """Whether every order item is packed, so that `read_ahead` need not look for line items of the earlier
        form."""
        return PACKED_ORDERS in self._migrations()

    def _migrations(self) -> frozenset[str]:
        """The migrations recorded done (by `accrual migrate`, or by the local provisioning of a new stack): one
        Query of the control table's MIGRATION partition, once per store."""
        if self._migrated is None:
            answer = self.connection.client.query(
                TableName=self.settings.control_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": MIGRATION_PK}},
                ConsistentRead=True,
            )
            self._migrated = frozenset(item["sk"]["S"] for item in answer.get("Items", []))
        return self._migrated
