"""The ledger store in memory, for unit tests of the services: the same protocol as `DynamoLedgerStore` and the same
conditions (an order written only over the version it was read at, journal entries and notifications written once,
a change applied all or nothing, an order too large to pack refused), so the ledger's logic runs in milliseconds.
DynamoDB itself stays proven by the moto suites (and by a test that runs one scenario on both stores)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from accrual.adapters.ledger_packing import pack_order, stored_line, written_line
from accrual.adapters.ledger_store import (
    due_shard,
    entry_taken,
    line_ref,
    merged_balances,
    refusal_ref,
)
from accrual.domain.lifecycle import Holding
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.ports.ledger import (
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


@dataclass(frozen=True)
class _Line:
    ref: str
    status_at: str
    stored: StoredLine


@dataclass
class _Outbox:
    message: OutboxMessage
    published_at: str | None = None
    message_id: str | None = None


class InMemoryLedgerStore:
    def __init__(self) -> None:
        self.orders: dict[str, OrderItem] = {}
        self.decisions: dict[str, str] = {}
        self.lines: dict[str, dict[str, _Line]] = {}  # order key -> line id -> line
        self.entries: dict[str, JournalEntry] = {}  # by entry id
        self.balances: dict[str, StoredBalance] = {}
        self.outbox: dict[str, _Outbox] = {}
        self.published: dict[str, _Outbox] = {}  # what left the outbox published: not in the DynamoDB store
        self.refused: dict[tuple[str, str], StoredRefusal] = {}
        self.configs: dict[str, AccrualConfig] = {}
        self.current: str | None = None
        self.clicks: dict[str, Click] = {}
        self.coupons: dict[str, dict[tuple[str, str], str]] = {}  # user -> (order key, account) -> account
        self.coupon_accounts: dict[str, frozenset[str]] = {}  # user -> accounts its coupon orders were decided with

    # ---- set-up (what `config load` and `clicks load` store) -------------------------------------------------------
    def save_config(self, config: AccrualConfig) -> None:
        self.configs[config.version] = config
        self.current = config.version

    def save_clicks(self, clicks: Iterable[Click]) -> None:
        for click in clicks:
            self.clicks.setdefault(click.sub_id, click)

    # ---- orders -----------------------------------------------------------------------------------------------------
    def load_order(self, key: str) -> LoadedOrder:
        order = self.orders.get(key)
        lines = tuple(item.stored for _, item in sorted(self.lines.get(key, {}).items()))
        return LoadedOrder(copy.deepcopy(order), self.decisions.get(key), lines)

    def fetch_ahead(self, keys: Iterable[str], lines: Sequence[OrderLine] = ()) -> Callable[[], None]:
        return lambda: None  # every read is already free

    def transaction(self, changes: Sequence[OrderChange]) -> Callable[[], None]:
        # written at once (a write that took no time); the returned call raises what the write raised, so that
        # the write-behind path meets its failures where it would meet the real store's
        try:
            self.apply(changes)
        except Exception as error:  # noqa: BLE001 - handed on whole
            caught = error

            def failed() -> None:
                raise caught

            return failed
        return lambda: None

    def apply(self, changes: Sequence[OrderChange]) -> None:
        for change in changes:
            self._pack(change)  # the same size limit as the stored item
        # every condition first, then every write: all or nothing
        for change in changes:
            stored = self.orders.get(change.key)
            if (stored.version if stored else None) != change.order.version:
                raise LostRace()
        taken = any(entry.entry_id in self.entries for change in changes for entry in change.entries)
        taken |= any(message.event_id in self.outbox for change in changes for message in change.outbox)
        if taken:
            raise JournalConflict(entry_taken(changes, "ConditionalCheckFailed"))
        for change in changes:
            self.orders[change.key] = replace(copy.deepcopy(change.order), version=(change.order.version or 0) + 1)
            if change.decision is not None:
                self.decisions[change.key] = change.decision
            for write in change.lines:
                self._put_line(change.key, write)
            for entry in change.entries:
                self.entries[entry.entry_id] = entry
            for message in change.outbox:
                self.outbox[message.event_id] = _Outbox(message)
        for balance in merged_balances(changes):
            held = self.balances.get(balance.user_id)
            total = (held.holding if held else Holding()).plus(balance.delta)
            self.balances[balance.user_id] = StoredBalance(balance.user_id, balance.account_currency, total)

    def _put_line(self, key: str, write: LineWrite) -> None:
        line = write.line
        self.lines.setdefault(key, {})[line.line_id] = _Line(
            line_ref(line.partner, line.line_id),
            utc_text(line.status_at),
            StoredLine(line.model_dump_json(), write.moved_to),
        )

    def _pack(self, change: OrderChange) -> None:
        lines = {
            line_id: stored_line(item.stored.body, item.stored.moved_to)
            for line_id, item in self.lines.get(change.key, {}).items()
        }
        for write in change.lines:
            lines[write.line.line_id] = written_line(change.key, write.line, write.moved_to)
        pack_order(change.order, change.decision or self.decisions.get(change.key), list(lines.values()))

    def outbox_items(self, messages: Sequence[OutboxMessage]) -> int:
        return len(messages)  # each notification a record of its own here

    def line_homes(self, partner: str, line_id: str) -> set[str]:
        ref = line_ref(partner, line_id)
        return {key for key, lines in self.lines.items() if any(item.ref == ref for item in lines.values())}

    def due_orders(self, until: str, page_size: int, shards: Iterable[int] | None = None) -> Iterator[str]:
        wanted = None if shards is None else {str(shard) for shard in shards}
        due = sorted(
            (order.due_at, key)
            for key, order in self.orders.items()
            if order.due_at and order.due_at <= until and (wanted is None or due_shard(key) in wanted)
        )
        for _, key in due:
            yield key

    def record_refusal(self, key: str, line: OrderLine, reason: str, state: str, at: str) -> None:
        ref = refusal_ref(line)
        self.refused[(key, ref)] = StoredRefusal(ref, reason, state, at, line.model_dump_json())

    def find_orders(self, order_number: str) -> list[str]:
        keys = {key for key, order in self.orders.items() if order_number in (order.order_id, order.partner_order_id)}
        if not keys and order_number in self.orders:
            keys.add(order_number)
        return sorted(keys)

    def orders_of_user(self, user_id: str) -> list[str]:
        return sorted(key for key, order in self.orders.items() if order.user_id == user_id)

    def orders_between(self, since: str | None, until: str | None) -> list[str]:
        return sorted(
            key
            for key, order in self.orders.items()
            if (since is None or order.ordered_at >= since) and (until is None or order.ordered_at < until)
        )

    def orders_placed(self, since: str, until: str) -> Iterator[str]:
        yield from self.orders_between(since, until)

    def order_with_journal(self, key: str) -> tuple[LoadedOrder, list[JournalEntry]]:
        return self.load_order(key), self.journal(key)

    def month_orders(
        self, since: str, until: str, *, partner: str | None = None, part: tuple[int, int] | None = None
    ) -> Iterator[tuple[LoadedOrder, list[JournalEntry]]]:
        keys = [key for key in self.orders_between(since, until) if partner is None or key.startswith(f"{partner}#")]
        for key in keys if part is None else keys[part[0] :: part[1]]:
            yield self.order_with_journal(key)

    def journal(self, key: str) -> list[JournalEntry]:
        return sorted(
            (entry for entry in self.entries.values() if entry.key == key),
            key=lambda entry: (entry.sequence, entry.transition),
        )

    def refusals(self, key: str) -> list[StoredRefusal]:
        return [refusal for (order, _), refusal in sorted(self.refused.items()) if order == key]

    def balance(self, user_id: str) -> StoredBalance | None:
        return self.balances.get(user_id)

    # ---- the audit's scans ----------------------------------------------------------------------------------------
    def scan_journal(self) -> Iterator[JournalEntry]:
        yield from self.entries.values()

    def scan_balances(self) -> Iterator[StoredBalance]:
        yield from self.balances.values()

    def scan_live_lines(self) -> Iterator[tuple[str, str]]:
        for key, lines in self.lines.items():
            for item in lines.values():
                if item.stored.moved_to is None:
                    yield item.ref, key

    def scan_orders(self) -> Iterator[OrderItem]:
        for order in list(self.orders.values()):
            yield copy.deepcopy(order)

    # ---- the outbox -------------------------------------------------------------------------------------------------
    def unpublished(self, until: str, page_size: int) -> Iterator[OutboxMessage]:
        waiting = sorted(
            (item.message.created_at, event_id)
            for event_id, item in self.outbox.items()
            if item.message.created_at <= until
        )
        for _, event_id in waiting:
            if event_id in self.outbox:
                yield self.outbox[event_id].message

    def remove_published(self, event_id: str, at: str, message_id: str) -> None:
        # published: the outbox forgets it, as the DynamoDB store deletes it (kept in `published` for the tests' eyes)
        item = self.outbox.pop(event_id, None)
        if item is not None:
            item.published_at, item.message_id = at, message_id
            self.published[event_id] = item

    def remove_batch_published(
        self, published: Sequence[tuple[OutboxMessage, str]], at: str, refused: Sequence[OutboxMessage] = ()
    ) -> None:
        # each notification is a record of its own here: what the topic refused is simply not removed
        for message, message_id in published:
            self.remove_published(message.event_id, at, message_id)

    # ---- reference data ---------------------------------------------------------------------------------------------
    def current_config(self) -> AccrualConfig:
        if self.current is None:
            raise LookupError("no accrual configuration is loaded: run `accrual config load FILE` first")
        return self.configs[self.current]

    def config_version(self, version: str) -> AccrualConfig:
        return self.configs[version]

    def find_clicks(self, sub_ids: Iterable[str]) -> dict[str, Click | None]:
        return {sub_id: self.clicks.get(sub_id) for sub_id in sorted({sub_id for sub_id in sub_ids if sub_id})}

    def order_sub_ids(self, keys: Sequence[str]) -> set[str]:
        orders = (self.orders.get(key) for key in keys)
        return {order.sub_id for order in orders if order is not None and order.sub_id}

    def register_new_user_coupon(self, user_id: str, buyer_account: str, order_key: str, *, now: datetime) -> bool:
        uses = self.coupons.setdefault(user_id, {})
        if (order_key, buyer_account) in uses:
            return False
        uses[(order_key, buyer_account)] = buyer_account
        return True

    def new_user_coupon_uses(self, user_id: str) -> list[tuple[str, str]]:
        return sorted(self.coupons.get(user_id, {}))

    def coupon_accounts_decided(self, user_id: str) -> frozenset[str]:
        return self.coupon_accounts.get(user_id, frozenset())

    def record_coupon_accounts_decided(self, user_id: str, accounts: frozenset[str]) -> None:
        self.coupon_accounts[user_id] = frozenset(accounts)
