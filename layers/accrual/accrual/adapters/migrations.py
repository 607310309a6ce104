"""Migrations of the ledger's stored data, run by the operator (`accrual migrate`), each resumable: the orders table is
scanned page by page and after each page the scan's position is saved in the control table, so a run stopped
anywhere goes on from its last page; each step does nothing twice that would change a result, so a page done again
changes nothing. When a scan ends, the control table records the step done.

line claims: every line item of the orders table (live or a tombstone) gets its partner line's claim
(`CLAIM#<partner>#<line_id>`, `homes` the orders holding it), which the ledger reads in batches instead of querying
the by_line index once per new line. Adding an order to a claim is idempotent (a string set's ADD). When done the
ledger stops asking the by_line index.

packed orders: every order item of the earlier form (its decision and each line an item of their own) is written
again in the packed form (ledger_packing.py) from what the ledger reads of it, over the version it was read at; an
order a running ledger changed meanwhile is read again. The earlier items stay (no role deletes from the orders
table) and are not read any more once the order item is packed. Safe while the ledger runs: the ledger writes only
packed orders and packs an order of the earlier form at its next change.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accrual.adapters.ledger_store import DynamoLedgerStore, line_ref, mark_migrated
from accrual.adapters.ledger_tables import (
    CLAIM_PREFIX,
    CLAIM_SK,
    LINE_CLAIMS,
    LINE_PREFIX,
    MIGRATION_PK,
    ORDER_SK,
    PACKED_ORDERS,
)
from accrual.ports.ledger import LostRace, OrderChange
from accrual.settings import Settings


@dataclass(frozen=True)
class MigrationResult:
    finished: bool  # every item is migrated (now or before this run)
    already_done: bool = False
    pages: int = 0
    lines: int = 0  # line claims: line items scanned; packed orders: orders packed
    claims: int = 0
    resumed: bool = False


def migrate_line_claims(
    settings: Settings,
    *,
    now: datetime,
    page_size: int = 1000,
    max_pages: int | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> MigrationResult:
    """Claim every stored line (see the module's text). `max_pages` stops after that many pages (the position is
    kept: the next run goes on from there); `on_page(pages, lines)` reports progress. `now` is when the claims
    are recorded complete."""
    client = settings.client("dynamodb")

    def claim(items: list[dict]) -> tuple[int, int]:
        homes: dict[str, set[str]] = defaultdict(set)
        for item in items:
            key = item["pk"]["S"]
            homes[line_ref(key.split("#", 1)[0], item["sk"]["S"][len(LINE_PREFIX) :])].add(key)
        for ref, keys in sorted(homes.items()):
            client.update_item(
                TableName=settings.orders_table,
                Key={"pk": {"S": CLAIM_PREFIX + ref}, "sk": {"S": CLAIM_SK}},
                UpdateExpression="ADD homes :homes",
                ExpressionAttributeValues={":homes": {"SS": sorted(keys)}},
            )
        return len(items), len(homes)

    def done() -> None:
        mark_migrated(settings.control_table, client, [LINE_CLAIMS], at=now)

    return _resumable_scan(
        settings,
        LINE_CLAIMS,
        {"FilterExpression": "begins_with(sk, :line)", "ExpressionAttributeValues": {":line": {"S": LINE_PREFIX}}},
        claim,
        done,
        page_size=page_size,
        max_pages=max_pages,
        on_page=on_page,
    )


def migrate_packed_orders(
    settings: Settings,
    *,
    now: datetime,
    page_size: int = 1000,
    max_pages: int | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> MigrationResult:
    """Write every order item of the earlier form in the packed form (see the module's text). `now` is when the
    orders are recorded packed."""
    client = settings.client("dynamodb")
    store = DynamoLedgerStore(settings)

    def pack(items: list[dict]) -> tuple[int, int]:
        for item in items:
            while True:
                order = store.load_order(item["pk"]["S"]).order
                if order is None:
                    break
                try:
                    store.apply([OrderChange(order)])  # the same order, its lines and decision packed in its item
                    break
                except LostRace:
                    continue  # changed meanwhile by a running ledger (which packed it): read it again
        return len(items), 0

    def done() -> None:
        mark_migrated(settings.control_table, client, [PACKED_ORDERS], at=now)

    return _resumable_scan(
        settings,
        PACKED_ORDERS,
        {
            "FilterExpression": "sk = :order AND attribute_not_exists(packed)",
            "ExpressionAttributeValues": {":order": {"S": ORDER_SK}},
        },
        pack,
        done,
        page_size=page_size,
        max_pages=max_pages,
        on_page=on_page,
    )


def _resumable_scan(
    settings: Settings,
    step: str,
    selection: dict[str, Any],
    migrate_page: Callable[[list[dict]], tuple[int, int]],
    done: Callable[[], None],
    *,
    page_size: int,
    max_pages: int | None,
    on_page: Callable[[int, int], None] | None,
) -> MigrationResult:
    client = settings.client("dynamodb")
    control = settings.control_table
    done_key = {"pk": {"S": MIGRATION_PK}, "sk": {"S": step}}
    cursor_key = {"pk": {"S": MIGRATION_PK}, "sk": {"S": f"{step}#CURSOR"}}
    if "Item" in client.get_item(TableName=control, Key=done_key, ConsistentRead=True):
        return MigrationResult(finished=True, already_done=True)
    saved = client.get_item(TableName=control, Key=cursor_key, ConsistentRead=True).get("Item")
    start: dict[str, Any] | None = json.loads(saved["body"]["S"]) if saved else None
    resumed = start is not None
    pages = items = other = 0
    while max_pages is None or pages < max_pages:
        request: dict[str, Any] = {
            "TableName": settings.orders_table,
            "Limit": page_size,
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
            **selection,
        }
        if start:
            request["ExclusiveStartKey"] = start
        page = client.scan(**request)
        counted, counted_other = migrate_page(page.get("Items", []))
        pages += 1
        items += counted
        other += counted_other
        start = page.get("LastEvaluatedKey")
        if on_page is not None:
            on_page(pages, items)
        if not start:
            done()
            client.delete_item(TableName=control, Key=cursor_key)
            return MigrationResult(True, False, pages, items, other, resumed)
        client.put_item(TableName=control, Item={**cursor_key, "body": {"S": json.dumps(start)}})
    return MigrationResult(False, False, pages, items, other, resumed)
