"""The ledger store's port: what the ledger, the readers and the outbox relay need of storage, and the values they
exchange with it (`OrderItem`, `OrderChange`, `JournalEntry`, `OutboxMessage`, ...).

`adapters/ledger_store.py` implements it on DynamoDB (every key format and call is there); the tests hold an
in-memory implementation to the same conditions (an order written only over the version it was read at, journal
entries and notifications written once, a change applied all or nothing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from accrual.domain.lifecycle import Holding
from accrual.domain.models import AccrualConfig, Click, OrderLine

DUE_SHARDS = 8  # the due index is spread over this many shards (partitions); the confirmation reads them all


def utc_text(moment: datetime) -> str:
    """Times as sortable UTC text, the form every key and index uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class LostRace(Exception):
    """A condition failed because another run changed the order (or a line) meanwhile: read again and retry."""


class JournalConflict(RuntimeError):
    """A journal entry id exists with a different payload: the ledger refuses to guess and reports it."""


class OrderTooLarge(ValueError):
    """An order whose decision cannot be stored in one item even compressed: counted and left for an operator."""


# ---- values ---------------------------------------------------------------------------------------------------------


@dataclass
class OrderItem:
    """The order item (sk ORDER): state, holding, version. `version` is None for an order not stored yet; the store
    writes an order only over the version it was read at (optimistic concurrency)."""

    key: str
    partner: str = ""
    order_id: str = ""
    partner_order_id: str | None = None
    user_id: str | None = None
    sub_id: str | None = None
    ordered_at: str = ""
    state: str = ""
    decided_at: str = ""  # the `now` the decision was made at (expiry depends on it)
    review_accounts: list[str] | None = None  # the multi-account rule's input
    review: str | None = None  # an operator's verdict on an order held for review
    review_user: str | None = None  # the shopper an operator gave an order in attribution conflict
    claims: str | None = None  # the missing-cashback claims recorded on the order (JSON, domain.attribution)
    lines_digest: str | None = None  # of the line versions the order was decided from
    account_currency: str = ""
    fx_rate: Decimal = Decimal("0")  # fixed when the amount was first credited, used for every later move
    fx_day: str | None = None
    pending_usd: Decimal = Decimal("0")
    confirmed_usd: Decimal = Decimal("0")
    pending: Decimal = Decimal("0")
    confirmed: Decimal = Decimal("0")
    entries: int = 0  # journal entries written so far: the next entry's sequence number
    due_at: str | None = None  # set while the confirmation cycle must look at the order (the `due` index)
    updated_at: str = ""
    version: int | None = None

    @property
    def holding(self) -> Holding:
        return Holding(self.pending_usd, self.confirmed_usd, self.pending, self.confirmed)


ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(OrderItem) if f.name != "key")


@dataclass(frozen=True)
class StoredLine:
    body: str  # the normalised line as JSON
    moved_to: str | None = None  # set when the line left this order for another: the order ignores it


@dataclass(frozen=True)
class LoadedOrder:
    order: OrderItem | None
    decision: str | None  # the decision's JSON
    lines: tuple[StoredLine, ...]


@dataclass(frozen=True)
class LineWrite:
    """A line version to store under an order; with `moved_to`, the tombstone of a line that left for that order."""

    line: OrderLine
    moved_to: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """A move of money: immutable, written once under a deterministic id (order, sequence, transition)."""

    key: str
    sequence: int
    transition: str
    user_id: str
    account_currency: str
    fx_rate: Decimal
    delta: Holding
    state_from: str | None
    state_to: str
    digest: str  # of the payload without times: same id + different digest is a conflict
    at: str
    fact_at: str | None = None  # when the fact behind the move happened: a line's status, a claim, a due time

    @property
    def entry_id(self) -> str:
        return journal_entry_id(self.key, self.sequence, self.transition)


def journal_entry_id(key: str, sequence: int, transition: str) -> str:
    return f"{key}#{sequence:06d}#{transition}"


@dataclass(frozen=True)
class BalanceDelta:
    user_id: str
    delta: Holding
    account_currency: str


@dataclass(frozen=True)
class OutboxMessage:
    """A notification as the outbox keeps it until published: the message body and its SNS attributes as JSON.
    `holder` names the outbox record it shares with the other notifications of its transaction, when it does (a
    store may keep them together: they then leave the outbox together)."""

    event_id: str
    event_type: str
    user_id: str
    body: str
    attributes: str
    created_at: str
    holder: str | None = None

    @property
    def record_id(self) -> str:
        """The outbox record that holds this notification: the shared one, or its own."""
        return self.holder or self.event_id


@dataclass(frozen=True)
class OrderChange:
    """Everything one order's change writes: the order (written over the version it was read at), its decision
    when it changed, its changed lines (and tombstones), the journal entries, the balance deltas and the
    notifications. `apply` writes one or more of them all or nothing."""

    order: OrderItem
    decision: str | None = None
    lines: tuple[LineWrite, ...] = ()
    entries: tuple[JournalEntry, ...] = ()
    balances: tuple[BalanceDelta, ...] = ()
    outbox: tuple[OutboxMessage, ...] = ()

    @property
    def key(self) -> str:
        return self.order.key


@dataclass(frozen=True)
class StoredBalance:
    user_id: str
    account_currency: str | None
    holding: Holding = field(default_factory=Holding)


@dataclass(frozen=True)
class StoredRefusal:
    ref: str  # the refusal's sort key: REFUSED#<line_id>#<status_at>#<status>
    reason: str
    state: str
    at: str
    body: str | None = None  # the refused line version as JSON


# ---- the port ------------------------------------------------------------------------------------------------------


class LedgerStore(Protocol):
    """What the ledger, the readers and the relay need of storage."""

    # orders
    def load_order(self, key: str) -> LoadedOrder: ...
    def fetch_ahead(self, keys: Iterable[str], lines: Sequence[OrderLine] = ()) -> Callable[[], None]:
        """Read these orders (and what `line_homes` will ask of these lines) together, ahead of `load_order`: the
        reads done now and kept apart from this store's state (they may run in another thread while the store serves
        the previous chunk), and the call returned, which makes them the store's read-ahead (in the store's own
        thread). `fetch_ahead(keys, lines)()` reads ahead at once."""

    def apply(self, changes: Sequence[OrderChange]) -> None:
        """Write the changes all or nothing. Raises LostRace when an order is not at the version it was read at (or
        a line fact lost to a newer version), JournalConflict when a journal entry or notification id is taken."""

    def transaction(self, changes: Sequence[OrderChange]) -> Callable[[], None]:
        """`apply` in two halves: what needs this store's state, done now (it may raise as `apply` does), and the
        call returned, which writes the changes all or nothing, raises as `apply` does, and may run in another
        thread while this store reads on."""

    def outbox_items(self, messages: Sequence[OutboxMessage]) -> int:
        """How many items of a transaction these notifications of it take (a store may share one among several)."""

    def line_homes(self, partner: str, line_id: str) -> set[str]:
        """Every order that may hold an item of this partner line (live or a tombstone; a superset)."""

    def due_orders(self, until: str, page_size: int, shards: Iterable[int] | None = None) -> Iterator[str]: ...
    def record_refusal(self, key: str, line: OrderLine, reason: str, state: str, at: str) -> None: ...
    def find_orders(self, order_number: str) -> list[str]: ...
    def orders_of_user(self, user_id: str) -> list[str]: ...
    def orders_between(self, since: str | None, until: str | None) -> list[str]:
        """Orders whose `ordered_at` (their first line's order time, UTC text) is in [since, until)."""

    def orders_placed(self, since: str, until: str) -> Iterator[str]:
        """The same orders as `orders_between`, streamed page by page in no fixed order (a month's report)."""

    def journal(self, key: str) -> list[JournalEntry]: ...
    def order_with_journal(self, key: str) -> tuple[LoadedOrder, list[JournalEntry]]:
        """An order and its journal in one read (the month's books)."""

    def month_orders(
        self, since: str, until: str, *, partner: str | None = None, part: tuple[int, int] | None = None
    ) -> Iterator[tuple[LoadedOrder, list[JournalEntry]]]:
        """The orders placed in [since, until) (of `partner` only, when given), each with its journal, streamed in no
        fixed order (the month's books). `part` (k, n): the k-th of n readers' share, the n shares together every
        order once."""

    def refusals(self, key: str) -> list[StoredRefusal]: ...
    def balance(self, user_id: str) -> StoredBalance | None: ...
    # the audit's scans
    def scan_journal(self) -> Iterator[JournalEntry]: ...
    def scan_balances(self) -> Iterator[StoredBalance]: ...
    def scan_live_lines(self) -> Iterator[tuple[str, str]]: ...  # (line_ref, order key)
    def scan_orders(self) -> Iterator[OrderItem]: ...
    # the outbox
    def unpublished(self, until: str, page_size: int) -> Iterator[OutboxMessage]:
        """The events not yet published, created up to `until`, in no particular order."""

    def remove_published(self, event_id: str, at: str, message_id: str) -> None:
        """The event is published: it leaves the outbox."""

    def remove_batch_published(
        self, published: Sequence[tuple[OutboxMessage, str]], at: str, refused: Sequence[OutboxMessage] = ()
    ) -> None:
        """The events a sweep has just read and published (each with its message id) leave the outbox, in few
        calls. A sweep hands over every message of each record it names (`record_id`), each published or
        `refused`: the record leaves the outbox, or keeps the refused ones alone."""

    # reference data the ledger reads (configuration versions, clicks, the new-user-coupon registry)
    def current_config(self) -> AccrualConfig: ...
    def config_version(self, version: str) -> AccrualConfig: ...
    def find_clicks(self, sub_ids: Iterable[str]) -> dict[str, Click | None]: ...
    def order_sub_ids(self, keys: Sequence[str]) -> set[str]:
        """The sub-ids the orders' own items name (the orders' clicks, read together before they are settled)."""

    def register_new_user_coupon(self, user_id: str, buyer_account: str, order_key: str, *, now: datetime) -> bool: ...
    def new_user_coupon_uses(self, user_id: str) -> list[tuple[str, str]]: ...
    def coupon_accounts_decided(self, user_id: str) -> frozenset[str]:
        """The store accounts all this shopper's coupon orders were last decided with (empty when not recorded)."""

    def record_coupon_accounts_decided(self, user_id: str, accounts: frozenset[str]) -> None: ...
