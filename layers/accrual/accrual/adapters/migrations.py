"""Migrations of the ledger's stored data, run by the operator (`accrual migrate`), each resumable.

line claims: every line item of the orders table (live or a tombstone) gets its partner line's claim
(`CLAIM#<partner>#<line_id>`, `homes` the orders holding it), which the ledger reads in batches instead of querying
the by_line index once per new line. The orders table is scanned page by page; after each page the scan's position
is saved in the control table, so a run stopped anywhere goes on from its last page. Adding an order to a claim is
idempotent (a string set's ADD), so a page done twice changes nothing. When the scan ends, the control table
records the claims complete and the ledger stops asking the by_line index (and stops writing its key).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accrual.adapters.ledger_store import line_ref, mark_claims_complete
from accrual.adapters.ledger_tables import CLAIM_PREFIX, CLAIM_SK, LINE_CLAIMS, LINE_PREFIX, MIGRATION_PK
from accrual.settings import Settings

CURSOR_SK = f"{LINE_CLAIMS}#CURSOR"


@dataclass(frozen=True)
class MigrationResult:
    finished: bool  # every line has its claim (now or before this run)
    already_done: bool = False
    pages: int = 0
    lines: int = 0
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
    control, orders = settings.control_table, settings.orders_table
    done_key = {"pk": {"S": MIGRATION_PK}, "sk": {"S": LINE_CLAIMS}}
    cursor_key = {"pk": {"S": MIGRATION_PK}, "sk": {"S": CURSOR_SK}}
    if "Item" in client.get_item(TableName=control, Key=done_key, ConsistentRead=True):
        return MigrationResult(finished=True, already_done=True)
    saved = client.get_item(TableName=control, Key=cursor_key, ConsistentRead=True).get("Item")
    start: dict[str, Any] | None = json.loads(saved["body"]["S"]) if saved else None
    resumed = start is not None
    pages = lines = claims = 0
    while max_pages is None or pages < max_pages:
        request: dict[str, Any] = {
            "TableName": orders,
            "Limit": page_size,
            "ProjectionExpression": "pk, sk",
            "FilterExpression": "begins_with(sk, :line)",
            "ExpressionAttributeValues": {":line": {"S": LINE_PREFIX}},
            "ConsistentRead": True,
        }
        if start:
            request["ExclusiveStartKey"] = start
        page = client.scan(**request)
        homes: dict[str, set[str]] = defaultdict(set)
        for item in page.get("Items", []):
            key = item["pk"]["S"]
            homes[line_ref(key.split("#", 1)[0], item["sk"]["S"][len(LINE_PREFIX) :])].add(key)
        for ref, keys in sorted(homes.items()):
            client.update_item(
                TableName=orders,
                Key={"pk": {"S": CLAIM_PREFIX + ref}, "sk": {"S": CLAIM_SK}},
                UpdateExpression="ADD homes :homes",
                ExpressionAttributeValues={":homes": {"SS": sorted(keys)}},
            )
        pages += 1
        lines += len(page.get("Items", []))
        claims += len(homes)
        start = page.get("LastEvaluatedKey")
        if on_page is not None:
            on_page(pages, lines)
        if not start:
            mark_claims_complete(control, client, at=now)
            client.delete_item(TableName=control, Key=cursor_key)
            return MigrationResult(True, False, pages, lines, claims, resumed)
        client.put_item(TableName=control, Item={**cursor_key, "body": {"S": json.dumps(start)}})
    return MigrationResult(False, False, pages, lines, claims, resumed)
