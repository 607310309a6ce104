"""The ledger store on DynamoDB: every key format of the ledger's items and every DynamoDB call the ledger, the
readers and the outbox relay make, behind the port `accrual.ports.LedgerStore`.

The services speak in values (`OrderItem`, `OrderChange`, `JournalEntry`, `OutboxMessage`, ...); this module turns
them into items (`ledger_tables` holds the PynamoDB models) and back. Key formats, all here:

  orders table   pk <partner>#<order_id>
                 sk ORDER (its lines and decision packed in it) | ENTRY#<seq:06d>#<transition>
                    | REFUSED#<line_id>#<status_at>#<status>; the earlier form, still read: ORDER#DECISION,
                    LINE#<line_id> (line_ref <partner>#<line_id>, GSI by_line), ORDER#FACTS
                 pk CLAIM#<partner>#<line_id>, sk CLAIM: the orders a partner line may be in
                 due_shard crc32(pk) % 8 (GSI due, sparse)
  journal        entry_id <pk>#<seq:06d>#<transition>
  balances       user_id
  outbox         event_id (no index: only the notifications not yet published are in it)

The tests' in-memory store implements the same port with the same conditions, for the services' tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist

from accrual.adapters import reference_data
from accrual.adapters.ledger_connections import transaction_connection, warm_connections
from accrual.adapters.ledger_items import (
    ENTRY_PREFIX,
    REFUSED_PREFIX,
    _balance_of,
    _entry_item,
    _entry_of,
    _item,
    _line_id,
    _money,
    _order_item,
    _order_item_values,
    _outbox_item,
    _put_new,
    due_shard,
    line_ref,
    mark_migrated,
    merged_balances,
    message_fields,
    outbox_items,
    outbox_messages,
    outbox_record,
    outbox_records,
    refusal_ref,
    shared_item,
    stored_order,
    stream_outbox_events,
)
from accrual.adapters.ledger_month_scan import MonthScan
from accrual.adapters.ledger_packing import PackedLine, loaded, pack_order, stored_line, written_line
from accrual.adapters.ledger_read_ahead import ReadAhead
from accrual.adapters.ledger_tables import (
    CLAIM_PREFIX,
    CLAIM_SK,
    DECISION_SK,
    LINE_PREFIX,
    ORDER_SK,
    BalanceRecord,
    DecisionRecord,
    JournalEntryRecord,
    LineRecord,
    OrderRecord,
    OutboxRecord,
    RefusedRecord,
    bind_ledger_tables,
    load_order_items,
    order_part,
)
from accrual.adapters.pynamo import segmented_pages, segmented_scan
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.ports.ledger import (
    DUE_SHARDS,
    JournalConflict,
    JournalEntry,
    LoadedOrder,
    LostRace,
    OrderChange,
    OrderItem,
    OutboxMessage,
    StoredBalance,
    StoredRefusal,
)
from accrual.settings import Settings

# Re-exported: the stream relay, the claims store, the migrations and the tests build and read items through here.
__all__ = [
    "DynamoLedgerStore",
    "_entry_item",
    "_item",
    "_order_item_values",
    "_outbox_item",
    "due_shard",
    "line_ref",
    "mark_migrated",
    "merged_balances",
    "outbox_record",
    "refusal_ref",
    "stream_outbox_events",
    "entry_taken",
    "transaction_connection",
    "warm_connections",
]


class DynamoLedgerStore(ReadAhead, MonthScan):
    """The ledger store on DynamoDB (PynamoDB models bound to the stack's tables).

    A store serves one worker at a time (the pools hand each task its own): what `fetch_ahead` read for a chunk is
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
        # key -> (version read, its lines by id, its decision): what a change of the order packs beside its own
        self._known: dict[str, tuple[int | None, dict[str, PackedLine], str | None]] = {}
        self._migrated: frozenset[str] | None = None  # the migrations done (read once: claims_complete, ...)

    # ---- orders ---------------------------------------------------------------------------------------------------
    def load_order(self, key: str) -> LoadedOrder:
        ahead = self._ahead.pop(key, None)
        if ahead is not None:
            return ahead
        order, text, lines = _order_of(*load_order_items(key))
        self._known[key] = (order.version if order else None, {line.line_id: line for line in lines}, text)
        return loaded(order, text, lines)

    def order_with_journal(self, key: str) -> tuple[LoadedOrder, list[JournalEntry]]:
        # one Query of the order's partition (the journal sorts beside the order), eventually consistent: the books
        # read settled history; nothing is kept for a later write
        record: OrderRecord | None = None
        decision: DecisionRecord | None = None
        items: list[LineRecord] = []
        journal: list[JournalEntry] = []
        # pages followed by hand: botocore's paginator looks its model up on disk each time it is made (0.66 ms of
        # CPU, a fifth of the books' time per order)
        request = {
            "TableName": self.settings.orders_table,
            "KeyConditionExpression": "pk = :key",
            "ExpressionAttributeValues": {":key": {"S": key}},
        }
        while True:
            page = self.connection.client.query(**request)
            for item in page.get("Items", []):
                sort_key = item["sk"]["S"]
                if sort_key.startswith(ENTRY_PREFIX):
                    journal.append(_entry_of(JournalEntryRecord.from_raw_data(item)))
                elif sort_key == ORDER_SK or sort_key == DECISION_SK or sort_key.startswith(LINE_PREFIX):
                    record, decision = order_part(item, record, decision, items)
            if not page.get("LastEvaluatedKey"):
                return loaded(*_order_of(record, decision, items)), journal
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def apply(self, changes: Sequence[OrderChange]) -> None:
        self.transaction(changes)()

    def transaction(self, changes: Sequence[OrderChange]) -> Callable[[], None]:
        """One transaction: each order item with its lines and decision packed in it, the journal entries, the
        notifications and the balances. The lines new to their order get their claims first. Built here (the
        versions read, the claims written: this store's state), written by the call returned, which touches nothing
        of the store but its client and so may run in another thread."""
        orders, balances = self.settings.orders_table, self.settings.balances_table
        # The items go as DynamoDB JSON straight from the values, serialised by the models' own attributes (the same
        # item as a model's save), on the low-level client: building PynamoDB objects for items written once was
        # most of the transaction's CPU. Puts first, then the balances' updates, as `kinds` lists them. The client is
        # the PynamoDB connection's, made without botocore's parameter validation: safe here, the request is built by
        # this code alone and its items are tested against the models' own (tests/unit/test_ledger_items.py).
        puts: list[dict] = []
        kinds: list[str] = []  # what each item of the transaction is, to read its cancellation reasons
        for change in changes:
            puts.append(self._order_put(change))
            kinds.append("order")
            for entry in change.entries:
                puts.append(_put_new(orders, _entry_item(entry), "pk"))
                kinds.append("entry")
        # the transaction's notifications in shared outbox records: one item written (and one stream record, one
        # removal once published) for several
        for item in outbox_items([message for change in changes for message in change.outbox]):
            puts.append(_put_new(self.settings.outbox_table, item, "event_id"))
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
        client, items = self.connection.client, [{"Put": put} for put in puts] + [{"Update": u} for u in updates]

        def write() -> None:
            try:
                client.transact_write_items(TransactItems=items)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons", [])
                codes = [None if reason.get("Code") == "None" else reason.get("Code") for reason in reasons]
                _raise_for(changes, kinds, codes, error)

        return write

    def _order_put(self, change: OrderChange) -> dict:
        """The order item's put, packed with every line and the decision, conditional on the version read (none: a
        new order), which it increments. The lines and decision not in the change are those read at that version
        (read again when this store has not read the order at it: then a newer version is a lost race)."""
        self._ahead.pop(change.key, None)  # read before this change: stale now
        read = change.order.version
        known = self._known.pop(change.key, None)
        if known is None or known[0] != read:
            self.load_order(change.key)
            known = self._known.pop(change.key)
            if known[0] != read:
                raise LostRace()
        _, lines, decision = known
        for write in change.lines:
            if write.moved_to is None and write.line.line_id not in lines:
                self._claim(change.key, write.line)  # a line new to this order: its claim first
            lines[write.line.line_id] = written_line(change.key, write.line, write.moved_to)
        packed = pack_order(change.order, change.decision or decision, list(lines.values()))
        record = _order_item_values(change.order, packed)
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

    def outbox_items(self, messages: Sequence[OutboxMessage]) -> int:
        return len(outbox_records(messages))

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
        return find_order_keys(order_number, self.current_config().partners)

    def orders_of_user(self, user_id: str) -> list[str]:
        # A scan of the order items, filtered server-side: the one reader is an operator's `redecide --user`, rare
        # beside the write unit an index by shopper cost on every attributed order written.
        condition = (OrderRecord.sk == ORDER_SK) & (OrderRecord.user_id == user_id)
        return sorted(item.pk for item in segmented_scan(OrderRecord, condition, attributes_to_get=["pk"]))

    def orders_between(self, since: str | None, until: str | None) -> list[str]:
        condition = OrderRecord.sk == ORDER_SK
        if since is not None:
            condition &= OrderRecord.ordered_at >= since
        if until is not None:
            condition &= OrderRecord.ordered_at < until
        return sorted(item.pk for item in segmented_scan(OrderRecord, condition, attributes_to_get=["pk"]))

    def orders_placed(self, since: str, until: str) -> Iterator[str]:
        # a scan of the order items alone (filtered server-side, only the key read back): a monthly statement runs
        # once a month, so it pays one read of the table rather than an index written on every order change
        condition = (OrderRecord.sk == ORDER_SK) & (OrderRecord.ordered_at >= since) & (OrderRecord.ordered_at < until)
        for item in segmented_scan(OrderRecord, condition, attributes_to_get=["pk"]):
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
        for record in segmented_scan(JournalEntryRecord, JournalEntryRecord.sk.startswith(ENTRY_PREFIX)):
            yield _entry_of(record)

    def scan_balances(self) -> Iterator[StoredBalance]:
        for record in segmented_scan(BalanceRecord):
            yield _balance_of(record)

    def scan_live_lines(self) -> Iterator[tuple[str, str]]:
        """The live lines of every order: those packed in its item, or for an order of the earlier form its line
        items (the line items an order kept from before it was packed are not its lines any more)."""
        packed: set[str] = set()
        earlier: list[tuple[str, str]] = []
        for page in segmented_pages(
            self.connection.client,
            TableName=self.settings.orders_table,
            FilterExpression="sk = :order OR (begins_with(sk, :line) AND attribute_not_exists(moved_to))",
            ExpressionAttributeValues={":order": {"S": ORDER_SK}, ":line": {"S": LINE_PREFIX}},
        ):
            for item in page.get("Items", []):
                key = item["pk"]["S"]
                if item["sk"]["S"] != ORDER_SK:
                    earlier.append((line_ref(key.split("#", 1)[0], _line_id(item["sk"]["S"])), key))
                elif "packed" in item:
                    packed.add(key)
                    _, _, lines = stored_order(OrderRecord.from_raw_data(item))
                    for line in lines:
                        if line.stored.moved_to is None:
                            yield line_ref(key.split("#", 1)[0], line.line_id), key
        for ref, key in earlier:
            if key not in packed:
                yield ref, key

    def scan_orders(self) -> Iterator[OrderItem]:
        for record in segmented_scan(OrderRecord, OrderRecord.sk == ORDER_SK):
            yield _order_item(record)

    # ---- the outbox -----------------------------------------------------------------------------------------------
    def unpublished(self, until: str, page_size: int) -> Iterator[OutboxMessage]:
        """The notifications not yet published created up to `until`, read by a strongly consistent scan of the
        outbox (`page_size` items a page), in no particular order. The table is the work list: publishing deletes an
        event, so it holds what is still to publish (and, until their expiry, records of the earlier form kept after
        publishing, which the filter passes over). An index of the unpublished events cost a write unit on every
        notification written and another on every one published.

        One segment, unlike the whole-table reads: the outbox is small, a local command sweeps it every second while
        it writes (sixteen calls a sweep were most of the sweep's cost), and a sweep deletes what it has read, so
        even a backlog's later pages do not cost DynamoDB Local more than its first."""
        condition = OutboxRecord.published_at.does_not_exist() & (OutboxRecord.created_at <= until)
        for record in OutboxRecord.scan(condition, consistent_read=True, page_size=page_size):
            yield from outbox_messages(record)

    def remove_published(self, event_id: str, at: str, message_id: str) -> None:
        # published: the outbox forgets it (a delete of an event already gone is no error)
        OutboxRecord(event_id).delete()

    def remove_batch_published(
        self, published: Sequence[tuple[OutboxMessage, str]], at: str, refused: Sequence[OutboxMessage] = ()
    ) -> None:
        # The sweep's deletes, 25 to a BatchWriteItem (PynamoDB's batch_write retries what DynamoDB leaves
        # unprocessed) instead of a DeleteItem each: one call per notification was half of a local day's calls.
        # A shared record whose messages the topic refused in part is written again with those alone, under the
        # condition that it is still there (rare: a refusal is a throttled or invalid message).
        kept: dict[str, list[dict[str, str]]] = {}
        for message in refused:
            if message.holder is not None:
                kept.setdefault(message.holder, []).append(message_fields(message))
        with OutboxRecord.batch_write() as batch:
            for record_id in dict.fromkeys(message.record_id for message, _ in published):
                if record_id not in kept:
                    batch.delete(OutboxRecord(record_id))
        for record_id, rest in kept.items():
            try:
                self.connection.client.put_item(
                    TableName=self.settings.outbox_table,
                    Item=shared_item(record_id, rest),
                    ConditionExpression="attribute_exists(event_id)",
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
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


def find_order_keys(order_number: str, partners: Iterable[str]) -> list[str]:
    """Order keys for a store order number (the key `partner#order_id` of each known partner, read in one
    BatchGetItem), a partner order number (the by_partner_order_id index), or a key itself."""
    keys = {item.pk for item in OrderRecord.by_partner_order_id.query(order_number)}
    candidates = {f"{partner}#{order_number}" for partner in partners}
    if "#" in order_number:
        candidates.add(order_number)
    found = OrderRecord.batch_get([(key, ORDER_SK) for key in sorted(candidates)], attributes_to_get=["pk", "sk"])
    keys |= {record.pk for record in found}
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


def _order_of(
    record: OrderRecord | None, decision: DecisionRecord | None, items: list[LineRecord]
) -> tuple[OrderItem | None, str | None, list[PackedLine]]:
    """The order, its decision's text and its lines from its items, packed or of the earlier form."""
    if record is not None and record.packed is not None:
        return stored_order(record)  # the packed form: earlier items of the order are ignored
    return (
        _order_item(record) if record else None,
        decision.text if decision else None,
        [stored_line(item.body, item.moved_to) for item in items],
    )
