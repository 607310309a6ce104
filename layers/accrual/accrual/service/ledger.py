"""The ledger: reconciles report lines into orders and moves money between pending and confirmed, exactly once.

This module is the ledger's face: `reconcile` (a report's lines), `confirm` (the scheduled cycle), `review` (an
operator's verdict), `redecide` (the current configuration), and the claims service's `credit_claim` /
`withdraw_claim` (a missing-cashback claim recorded on an order). Each settles orders through the write loop
(service/settle.py), which gathers the facts, asks the pure planner (service/planner.py) for a plan and applies it
as one change of the store. Identity rules: docs/rules.md, "Identity and integrity".
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime

from accrual.domain.attribution import ClaimFact
from accrual.domain.lifecycle import OrderState, ReviewVerdict
from accrual.domain.models import AccrualConfig, Click, OrderLine, order_key
from accrual.domain.screening import screen_line
from accrual.ports import JournalConflict, LedgerStore, LoadedOrder, OrderChange, StoredLine, parse_utc, utc_text
from accrual.service.counts import RunCounts
from accrual.service.order_view import OrderView, canonical, lines_digest, load_order
from accrual.service.planner import OrderPlan, PlanInputs, Review, SettleMode, attribution_of
from accrual.service.settle import OrderContention, Request, Settler

# due orders read together (their clicks and the orders themselves, in BatchGetItem calls of 100) and settled
# together: the more of a shopper's orders one window holds, the fewer balance updates (bounded memory still); each
# window is written while the next is read and planned
# (500 measured no faster than 100 on a 20,000-order day)
CONFIRM_WINDOW = 100
# due orders a confirmation takes in one step (the command's progress and Ctrl-C go by it): several windows, so that
# one is written while the next is planned
CONFIRM_TOGETHER = 5 * CONFIRM_WINDOW
READ_AHEAD_ORDERS = 100  # orders of a report read together before they are settled (bounded memory)


@dataclass(frozen=True)
class Redecided:
    """What re-deciding one order did (or, in a dry run, would do)."""

    order: str
    outcome: str  # changed | unchanged | skipped_confirmed | not_found | failed
    state_from: str | None = None
    state_to: str | None = None
    config_version_from: str | None = None
    config_version_to: str | None = None
    cashback_usd_from: str | None = None
    cashback_usd_to: str | None = None
    reasons_added: tuple[str, ...] = ()
    reasons_removed: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            **self.__dict__,
            "reasons_added": list(self.reasons_added),
            "reasons_removed": list(self.reasons_removed),
        }


class Ledger:
    def __init__(self, store: LedgerStore, *, config: AccrualConfig | None = None) -> None:
        self.store = store
        self._config = config
        self._settler = Settler(store, lambda: self.config)

    @property
    def config(self) -> AccrualConfig:
        if self._config is None:
            self._config = self.store.current_config()
        return self._config

    def load_order(self, key: str) -> OrderView:
        return load_order(key, self.store)

    def screen(self, lines: Sequence[OrderLine]) -> tuple[list[OrderLine], list[tuple[OrderLine, str]]]:
        """Split lines into those the configuration accepts and those to quarantine, with the reason."""
        accepted, refused = [], []
        for line in lines:
            reason = screen_line(line, self.config)
            if reason is None:
                accepted.append(line)
            else:
                refused.append((line, reason))
        return accepted, refused

    def _settle(self, request: Request, *, now: datetime, counts: RunCounts) -> None:
        self._settler.settle(request, now=now, counts=counts)

    # ---- reconcile ------------------------------------------------------------------------------------------
    def reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> dict[str, int]:
        """Upsert report lines and re-decide their orders. Counts say what happened to each line and order."""
        counts = RunCounts(lines_received=len(lines))
        by_order: dict[str, list[OrderLine]] = defaultdict(list)
        for line in lines:
            by_order[line.order_key].append(line)
        # the page's clicks in a few batch reads rather than one read per order (clicks never change once made)
        self._settler.clicks = self.store.find_clicks(line.sub_id for line in lines if line.sub_id)
        chunks = list(itertools.batched(sorted(by_order), READ_AHEAD_ORDERS))

        def fetch(chunk: Sequence[str]) -> Future[Callable[[], None]]:
            # the chunk's orders and the claims of their new lines in a few batch reads, not a Query each: read in
            # the background while the chunk before is planned
            lines_of = [line for key in chunk for line in by_order[key]]
            return self._settler.read_in_background(lambda: self.store.fetch_ahead(chunk, lines_of))

        fetching = fetch(chunks[0]) if chunks else None
        try:
            for index, chunk in enumerate(chunks):
                assert fetching is not None
                read = fetching.result()
                fetching = fetch(chunks[index + 1]) if index + 1 < len(chunks) else None
                incoming = {(line.partner, line.line_id) for key in chunk for line in by_order[key]}
                if self._settler.writing_lines() & incoming:
                    # a partner line the previous chunk brings too: placed where that chunk's write puts it
                    self._settler.finish_writing()
                read()
                # a shopper's orders of one chunk share transactions: one balance update for all of them; written
                # while the next chunk is planned
                self._settler.settle_together(
                    [Request(key, by_order[key], SettleMode.RECONCILE) for key in chunk],
                    now=now,
                    counts=counts,
                    behind=True,
                )
        finally:
            if fetching is not None:
                wait([fetching])  # nothing of this call goes on after it returns
            self._settler.finish_writing()
            self._settler.clicks = {}
        return counts.as_dict()

    # ---- the scheduled confirmation cycle ------------------------------------------------------------------
    def confirm(self, *, now: datetime, page_size: int = 100) -> dict[str, int]:
        """Confirm settled orders whose hold has passed, decline orders unpaid for too long: every order the due
        index lists as due at or before `now`, page by page (bounded memory), each order's change whole in one
        transaction (a shopper's orders together), so the cycle can stop anywhere and be rerun."""
        return self.confirm_orders(self.store.due_orders(utc_text(now), page_size), now=now)

    def due_orders(self, *, now: datetime, shards: Iterable[int] | None = None, page_size: int = 100) -> Iterator[str]:
        """The orders the due index lists as due at or before `now`, in the given shards (all by default): the
        units a parallel confirmation hands out."""
        return self.store.due_orders(utc_text(now), page_size, shards=shards)

    def confirm_orders(self, keys: Iterable[str], *, now: datetime) -> dict[str, int]:
        """Confirm the given due orders (from `due_orders`), as `confirm` does: each order's change whole, a
        shopper's orders of one chunk written in shared transactions."""
        counts = RunCounts()

        def fetch(chunk: Sequence[str]) -> tuple[dict[str, Click | None], Callable[[], None]]:
            # the chunk's clicks in two batch reads (the orders' sub-ids, then their clicks) rather than one read per
            # order, and the orders in a few more; kept per chunk: memory stays bounded over a month-end's
            # confirmation. Read in the background while the chunk before is planned.
            return self.store.find_clicks(self.store.order_sub_ids(chunk)), self.store.fetch_ahead(chunk)

        chunks = itertools.batched(keys, CONFIRM_WINDOW)
        chunk = next(chunks, None)
        fetching = self._settler.read_in_background(functools.partial(fetch, chunk)) if chunk else None
        try:
            while chunk is not None:
                assert fetching is not None
                self._settler.clicks, read = fetching.result()
                # the due index is read in this thread; the next chunk's orders in the background
                upcoming = next(chunks, None)
                fetching = self._settler.read_in_background(functools.partial(fetch, upcoming)) if upcoming else None
                read()
                counts.add("orders_due", len(chunk))
                # a shopper's orders due together share transactions: one balance update for all of them; written
                # while the next chunk is planned
                self._settler.settle_together(
                    [Request(key, (), SettleMode.CONFIRM) for key in chunk], now=now, counts=counts, behind=True
                )
                chunk = upcoming
        finally:
            if fetching is not None:
                wait([fetching])  # nothing of this call goes on after it returns
            self._settler.finish_writing()
            self._settler.clicks = {}
        return counts.as_dict()

    # ---- an operator's verdict on an order held for review ------------------------------------------------
    def review(self, key: str, verdict: ReviewVerdict, *, now: datetime, user_id: str | None = None) -> OrderState:
        """Release or decline an order held for review; the money moves in the same transaction as the verdict.
        An order held because its lines (or claims) name different shoppers is released to the shopper named by
        `user_id`."""
        view = self.load_order(key)
        if view.record is None or (view.state != OrderState.ON_REVIEW and view.record.review is None):
            raise ValueError(f"order {key} is not held for review (state {view.state})")
        inputs = PlanInputs(self._settler.clicks_for(view.lines), self.config, SettleMode.REVIEW, now, view.claims)
        conflict = attribution_of(view, view.lines, inputs).conflict
        if verdict == ReviewVerdict.RELEASED and conflict:
            if user_id not in conflict:
                raise ValueError(
                    f"order {key} names several shoppers ({', '.join(conflict)}): release it to one of them with --user"
                )
        elif user_id is not None:
            raise ValueError(f"order {key} is not in attribution conflict: --user does not apply")
        counts = RunCounts()
        self._settle(Request(key, (), SettleMode.REVIEW, review=Review(verdict, user_id)), now=now, counts=counts)
        if counts.unsettled:
            raise RuntimeError(f"order {key} could not be settled: {counts.as_dict()}")
        state = self.load_order(key).state
        assert state is not None
        return state

    # ---- deciding again under the current configuration ----------------------------------------------------
    def redecide(
        self, keys: Iterable[str], *, now: datetime, dry_run: bool = False
    ) -> tuple[list[Redecided], RunCounts]:
        """Decide these orders again under the current configuration, through the same path as a report (the
        trail names the configuration version that decided). Orders with confirmed money, reversed or moved are
        never touched. A dry run plans every change and writes nothing."""
        ledger = self if not dry_run else Ledger(DryRunStore(self.store), config=self.config)
        counts = RunCounts()
        results = []
        for key in keys:
            result = ledger._redecide_one(key, self.load_order(key), now, counts)
            if result.outcome == "changed":
                counts.add("orders_redecided")
            results.append(result)
        return results, counts

    def _redecide_one(self, key: str, before: OrderView, now: datetime, counts: RunCounts) -> Redecided:
        if before.record is None:
            return Redecided(key, "not_found")
        if before.settled:
            counts.add("orders_skipped_confirmed")
            return Redecided(key, "skipped_confirmed", state_from=before.record.state)
        tally = RunCounts()
        self._settle(Request(key, (), SettleMode.OPERATOR_REDECIDE), now=now, counts=tally)
        counts.merge(tally)
        if tally.unsettled:
            return Redecided(key, "failed", state_from=before.record.state)
        if tally.orders_skipped_confirmed:
            return Redecided(key, "skipped_confirmed", state_from=before.record.state)
        return _compare_decisions(key, before, self.load_order(key))

    # ---- the claims service's: a claim recorded on an order, or taken off it ---------------------------------
    def credit_claim(self, key: str, claim: ClaimFact, *, now: datetime, alone: bool = False) -> dict[str, int]:
        """Record a claim on an order and decide it again: the claimant's when nothing else names a shopper, held
        for review when a click or another claim does. `alone` (an agent's approval) takes every other claim off."""

        def edit(claims: tuple[ClaimFact, ...]) -> tuple[ClaimFact, ...]:
            kept = () if alone else tuple(fact for fact in claims if fact.claim_id != claim.claim_id)
            return (*kept, claim)

        return self._redecide_claims(key, edit, now, fact_at=None if alone else claim.filed_at)

    def withdraw_claim(self, key: str, claim_id: str, *, now: datetime) -> dict[str, int]:
        """Take a rejected claim off an order and decide it again."""
        return self._redecide_claims(
            key, lambda claims: tuple(fact for fact in claims if fact.claim_id != claim_id), now
        )

    def _redecide_claims(self, key, edit, now: datetime, fact_at: datetime | None = None) -> dict[str, int]:
        counts = RunCounts()
        request = Request(key, (), SettleMode.REDECIDE, claims_edit=edit, fact_at=fact_at)
        self._settle(request, now=now, counts=counts)
        return counts.as_dict()

    def redecide_order(self, key: str, *, now: datetime) -> dict[str, int]:
        """Decide one stored order again with what the ledger knows now: the same path, rules, journal and
        notifications as a reconcile."""
        counts = RunCounts()
        self._settle(Request(key, (), SettleMode.REDECIDE), now=now, counts=counts)
        return counts.as_dict()


class DryRunStore:
    """A store that reads through to another and keeps every write to itself: a dry run plans exactly what a real
    run would write, and the planned changes are read back from here (nothing reaches the real store)."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self.changes: dict[str, OrderChange] = {}

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def load_order(self, key: str) -> LoadedOrder:
        loaded = self._store.load_order(key)
        change = self.changes.get(key)
        if change is None:
            return loaded
        lines = {OrderLine.model_validate_json(item.body).line_id: item for item in loaded.lines}
        for write in change.lines:
            lines[write.line.line_id] = StoredLine(write.line.model_dump_json(), write.moved_to)
        return LoadedOrder(change.order, change.decision or loaded.decision, tuple(lines.values()))

    def fetch_ahead(self, keys: Iterable[str], lines: Sequence[OrderLine] = ()) -> Callable[[], None]:
        return lambda: None  # it would write the lines' claims

    def apply(self, changes: Sequence[OrderChange]) -> None:
        for change in changes:
            self.changes[change.key] = change

    def transaction(self, changes: Sequence[OrderChange]) -> Callable[[], None]:
        self.apply(changes)
        return lambda: None

    def record_refusal(self, key: str, line: OrderLine, reason: str, state: str, at: str) -> None:
        return None

    def record_coupon_accounts_decided(self, user_id: str, accounts: frozenset[str]) -> None:
        return None

    def register_new_user_coupon(self, user_id: str, buyer_account: str, order_key: str, *, now: datetime) -> bool:
        return False


def _compare_decisions(key: str, before: OrderView, after: OrderView) -> Redecided:
    old = json.loads(before.decision_json) if before.decision_json else {}
    new = json.loads(after.decision_json) if after.decision_json else {}
    changed = old != new or (
        before.record
        and after.record
        and (before.record.state != after.record.state or before.holding != after.holding)
    )
    old_reasons, new_reasons = old.get("reasons", []), new.get("reasons", [])
    return Redecided(
        key,
        "changed" if changed else "unchanged",
        state_from=before.record.state if before.record else None,
        state_to=after.record.state if after.record else None,
        config_version_from=old.get("config_version"),
        config_version_to=new.get("config_version"),
        cashback_usd_from=old.get("cashback_usd"),
        cashback_usd_to=new.get("cashback_usd"),
        reasons_added=tuple(reason for reason in new_reasons if reason not in old_reasons),
        reasons_removed=tuple(reason for reason in old_reasons if reason not in new_reasons),
    )


__all__ = [
    "Ledger",
    "JournalConflict",
    "OrderContention",
    "OrderChange",
    "OrderPlan",
    "OrderView",
    "Redecided",
    "RunCounts",
    "load_order",
    "order_key",
    "utc_text",
    "parse_utc",
    "lines_digest",
    "canonical",
]
