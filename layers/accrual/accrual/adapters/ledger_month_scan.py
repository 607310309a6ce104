"""The month's books read in one scan: `DynamoLedgerStore` inherits it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pynamodb.connection import Connection

from accrual.adapters.ledger_items import ENTRY_PREFIX, _entry_of, stored_order
from accrual.adapters.ledger_packing import loaded
from accrual.adapters.ledger_tables import ORDER_SK, JournalEntryRecord, OrderRecord
from accrual.adapters.pynamo import month_scan_segments, segmented_pages
from accrual.ports.ledger import JournalEntry, LoadedOrder
from accrual.settings import Settings


class MonthScan:
    """The month's orders with their journals (the attributes are the store's)."""

    settings: Settings
    connection: Connection
    order_with_journal: Callable[[str], tuple[LoadedOrder, list[JournalEntry]]]  # one Query of an order's partition

    def month_orders(
        self, since: str, until: str, *, partner: str | None = None, part: tuple[int, int] | None = None
    ) -> Iterator[tuple[LoadedOrder, list[JournalEntry]]]:
        """One segmented Scan of the orders table's order items and journal entries (eventually consistent, as the
        books' reads are), rather than a Query per order: a month's 100,000 orders cost a few hundred pages, not
        100,000 calls. A scan returns an order's partition whole and in sort-key order, its entries first (ENTRY#
        sorts before ORDER); an order is taken from the scan only when its item is of the packed form and the entries
        seen beside it are all it counts. Any other (written to while the scan passed it, of the earlier
        form, or its partition not returned in one run) is read again whole with `order_with_journal`."""
        pages = segmented_pages(
            self.connection.client,
            segments=month_scan_segments(),
            part=part,
            TableName=self.settings.orders_table,
            FilterExpression="sk = :order OR begins_with(sk, :entry)",
            ExpressionAttributeValues={":order": {"S": ORDER_SK}, ":entry": {"S": ENTRY_PREFIX}},
        )
        wanted = None if partner is None else f"{partner}#"
        key: str | None = None
        order: dict | None = None
        entries: list[dict] = []
        for page in pages:
            for item in page.get("Items", []):
                pk = item["pk"]["S"]
                if pk != key:  # the partition before is whole: a partition is never split between segments
                    if order is not None:
                        yield from self._month_order(key, order, entries, since, until)
                    key, order, entries = pk, None, []
                if wanted is not None and not pk.startswith(wanted):
                    continue
                if item["sk"]["S"] == ORDER_SK:
                    order = item
                else:
                    entries.append(item)
        if order is not None:
            yield from self._month_order(key, order, entries, since, until)

    def _month_order(
        self, key: str | None, order: dict, entries: list[dict], since: str, until: str
    ) -> Iterator[tuple[LoadedOrder, list[JournalEntry]]]:
        placed = order.get("ordered_at", {}).get("S", "")
        if key is None or not since <= placed < until:
            return
        if "packed" not in order:
            yield self.order_with_journal(key)
            return
        stored = stored_order(OrderRecord.from_raw_data(order))
        if stored[0].entries != len(entries):
            yield self.order_with_journal(key)
            return
        entries.sort(key=lambda item: item["sk"]["S"])
        yield loaded(*stored), [_entry_of(JournalEntryRecord.from_raw_data(item)) for item in entries]
