"""The ledger's write loop: read an order, gather what the planner needs, plan, apply the plan as one change of the
store, and retry the whole when another run changed the order meanwhile (`LostRace`).

Every change of an order is one `OrderChange` the ledger store applies in one transaction (adapters/ledger_store.py):
the order (guarded by its version), its decision, the journal entries (new items under deterministic ids), the ADD to
each shopper's balance and the outbox record of each notification. A replay or a concurrent run fails the version or
the journal condition and changes nothing; the loser re-reads the order and finds nothing left to do.

* **One partner line, one order.** A line is looked up by its partner id (`line_homes`) before it is placed; when a
  later version names another order, the line moves there and the money follows, both orders in the same
  transaction. The line's old item stays as a tombstone (`moved_to`) that the old order ignores. The claims recorded
  on an order whose every line left go with the lines: a claimant's money and attribution follow the partner line.
* **Orders of any size.** The order records the digest of the line versions it was decided from, so an order whose
  lines changed without its decision (a run stopped in between) is decided again.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from accrual.domain.attribution import Attribution, ClaimFact
from accrual.domain.decision import MissingFxRate
from accrual.domain.lifecycle import OrderState, Transition, later_than_promised, latest_lines, settle_time
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.observability import logger
from accrual.ports import (
    JournalConflict,
    LedgerStore,
    LostRace,
    OrderChange,
    OrderTooLarge,
    OutboxMessage,
    parse_utc,
    utc_text,
)
from accrual.service.changes import change_of
from accrual.service.counts import RunCounts
from accrual.service.order_view import OrderView, load_order
from accrual.service.planner import OrderPlan, PlanInputs, Review, SettleMode, attribution_of, plan_order

MAX_ATTEMPTS = 8  # optimistic-concurrency retries of one order before the run reports it as failed
# Items in one transaction that writes several orders' changes together: DynamoDB takes 100, but every emulator
# here takes 25, and a smaller transaction conflicts less with the runs writing beside it.
ITEMS_TOGETHER = 25
BACKOFF_BASE_SECONDS = 0.02  # doubled per attempt, with jitter, up to BACKOFF_CAP_SECONDS
BACKOFF_CAP_SECONDS = 1.0

ClaimsEdit = Callable[[tuple[ClaimFact, ...]], tuple[ClaimFact, ...]]


class OrderContention(RuntimeError):
    """The order kept changing under this run (another run is working on it); the next run picks it up."""


@dataclass
class Moves:
    """What placing an order's new lines finds in other orders (one partner line, one order)."""

    others: dict[str, OrderView] = field(default_factory=dict)
    leaving: dict[str, list[OrderLine]] = field(default_factory=lambda: defaultdict(list))  # lines moving here
    giving_up: list[tuple[str, OrderLine]] = field(default_factory=list)  # lines of which another order is newer


@dataclass(frozen=True)
class Request:
    """One order to settle and why."""

    key: str
    incoming: Sequence[OrderLine]
    mode: SettleMode
    review: Review | None = None
    claims_edit: ClaimsEdit | None = None  # a change of the claims the order records (the claims service's)
    fact_at: datetime | None = None  # when the fact behind the request happened, when not the lines' (a claim)


# an order planned and waiting to be written with others: its request, plan, change and what it counted
Ready = tuple[Request, OrderPlan, OrderChange, RunCounts]


@dataclass
class _Writing:
    """Transactions written behind (`settle_together(..., behind=True)`): each group's write, and what to count."""

    writes: list[tuple[list[Ready], Future[None]]]
    now: datetime
    counts: RunCounts
    lines: frozenset[tuple[str, str]]  # the partner lines the requests brought


class Settler:
    """Settles orders one at a time against a store, with the configuration and a cache of the run's clicks."""

    def __init__(self, store: LedgerStore, config: Callable[[], AccrualConfig]) -> None:
        self.store = store
        self._config = config
        self.clicks: dict[str, Click | None] = {}
        self._writing: _Writing | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None

    def clicks_for(self, lines: Mapping[str, OrderLine]) -> dict[str, Click | None]:
        wanted = {line.sub_id for line in lines.values() if line.sub_id}
        missing = wanted - set(self.clicks)
        if missing:
            self.clicks.update(self.store.find_clicks(missing))
        return {sub_id: self.clicks.get(sub_id) for sub_id in wanted}

    # ---- the retry loop --------------------------------------------------------------------------------------
    def settle(self, request: Request, *, now: datetime, counts: RunCounts) -> None:
        """Settle one order, retrying lost races with backoff. Whatever still fails is counted and logged, and the
        run goes on: the order is left as it was for the next run (nothing half-written)."""
        try:
            for attempt in range(MAX_ATTEMPTS):
                tally = RunCounts()
                try:
                    self._attempt(request, now=now, counts=tally)
                except LostRace:
                    counts.add("retries")
                    time.sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt) * random.random())
                    continue
                counts.merge(tally)
                return
            raise OrderContention(f"order {request.key} changed {MAX_ATTEMPTS} times while this run worked on it")
        except JournalConflict as error:
            # never passed off as a success: counted, logged with the ids, and the run exits non-zero
            counts.add("journal_conflicts")
            logger.error("journal conflict", extra={"order": request.key, "error": str(error)})
        except (MissingFxRate, OrderContention, OrderTooLarge) as error:
            counts.add("orders_failed")
            logger.error("order not settled", extra={"order": request.key, "error": str(error)})
        except Exception as error:  # noqa: BLE001 - throttling past the retries, an outage: the next run retries
            counts.add("orders_failed")
            logger.exception("order not settled", extra={"order": request.key, "error_type": type(error).__name__})

    # ---- several orders, their changes written together ----------------------------------------------------
    def settle_together(
        self, requests: Sequence[Request], *, now: datetime, counts: RunCounts, behind: bool = False
    ) -> None:
        """Settle orders as `settle` does, but write their changes in shared transactions (`_transactions`): each
        change is still whole (order, journal entries, notifications) and a shopper's balance is updated once for
        all of the shopper's orders in the transaction, not once each (a transaction item costs 2 write units, so a
        shopper with k orders saves 2(k-1) units); several shoppers share a transaction while there is room, for
        fewer calls.
        Written alone, in turn, as `settle` would: a change that touches other orders (lines moving, lines given up);
        an order bringing a partner line that another order of the same requests brings too (whichever is settled
        later must find the line where the earlier one put it); an order with a new-user coupon (the multi-account
        rule may decide it again from a later order of the shopper).
        A group that loses a race or fails in any way is settled again order by order, each with its own retries:
        nothing is half-written, and the second try starts from what the table holds.
        `behind`: the transactions are written by a thread of their own while the caller reads and plans its next
        requests (the store's work and this process's overlap); `finish_writing` waits for them, counts them and
        settles alone what failed. At most one call's transactions are being written: the next call waits for them
        once it has planned its own."""
        brought: dict[tuple[str, str], set[str]] = defaultdict(set)
        for request in requests:
            for line in request.incoming:
                brought[(line.partner, line.line_id)].add(request.key)
        ready: list[Ready] = []
        for request in requests:
            tally = RunCounts()
            if any(len(brought[(line.partner, line.line_id)]) > 1 for line in request.incoming):
                self.settle(request, now=now, counts=counts)
                continue
            try:
                plan = self._attempt(request, now=now, counts=tally, alone_only=False)
            except Exception:  # noqa: BLE001 - the order's own loop counts and logs whatever it is
                self.settle(request, now=now, counts=counts)
                continue
            if plan is None:  # written already (a change that touches other orders), or nothing to write
                counts.merge(tally)
            else:
                ready.append((request, plan, change_of(plan, now), tally))
        prepared: list[tuple[list[Ready], Callable[[], None]]] = []
        for group in _transactions(ready, self.store.outbox_items):
            try:
                # in this thread: the versions read and the claims of new lines (the store's state for this call)
                prepared.append((group, self.store.transaction([change for _, _, change, _ in group])))
            except Exception:  # noqa: BLE001 - an order read at another version: each order alone, with retries
                self._settle_alone(group, now, counts)
        if not behind:
            for group, write in prepared:
                try:
                    write()
                except Exception:  # noqa: BLE001 - a lost race, a conflict, an outage: each order alone, with retries
                    self._settle_alone(group, now, counts)
                else:
                    self._count_written(group, now, counts)
            return
        self.finish_writing()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        writer = self._writer
        self._writing = _Writing(
            [(group, writer.submit(write)) for group, write in prepared], now, counts, frozenset(brought)
        )

    def read_in_background[T](self, work: Callable[[], T]) -> Future[T]:
        """Run `work` (the next chunk's reads) on the ledger's reading thread, after what was handed to it before,
        while this thread plans and the writer writes: DynamoDB serves the three at once."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="ledger-reader")
        return self._reader.submit(work)

    def writing_lines(self) -> frozenset[tuple[str, str]]:
        """The partner lines of the requests whose transactions are being written behind."""
        return self._writing.lines if self._writing is not None else frozenset()

    def finish_writing(self) -> None:
        """Wait for the transactions written behind; count them, and settle alone each group that failed."""
        writing, self._writing = self._writing, None
        if writing is None:
            return
        for group, future in writing.writes:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - a lost race, a conflict, an outage: each order alone, with retries
                self._settle_alone(group, writing.now, writing.counts)
            else:
                self._count_written(group, writing.now, writing.counts)

    def _settle_alone(self, group: Sequence[Ready], now: datetime, counts: RunCounts) -> None:
        counts.add("retries")
        for request, _, _, _ in group:
            self.settle(request, now=now, counts=counts)

    def _count_written(self, group: Sequence[Ready], now: datetime, counts: RunCounts) -> None:
        for _, plan, _, tally in group:
            self._count([plan], now, tally)
            counts.merge(tally)

    # ---- one attempt -----------------------------------------------------------------------------------------
    def _attempt(
        self, request: Request, *, now: datetime, counts: RunCounts, alone_only: bool = True
    ) -> OrderPlan | None:
        """One optimistic attempt: plan the change of this order (and of the orders lines move from), write it.
        Raises LostRace when it lost a race. With `alone_only` false, a change of this order alone is not written
        but returned, for the caller to write together with others."""
        key, mode = request.key, request.mode
        view = load_order(key, self.store)
        if mode.skips_settled and view.settled:
            counts.add("orders_skipped_confirmed")  # confirmed meanwhile (a concurrent cycle): left as it is
            return None
        merged, changed, stale = latest_lines(view.lines, request.incoming)
        counts.add("lines_stale", len(stale))
        counts.add("lines_unchanged", len(request.incoming) - len(changed) - len(stale))
        moves = self._locate(key, view, merged, changed, counts)
        if not merged and not view.lines:
            return None
        quiet = not changed and not moves.leaving and not view.dirty
        if view.record is not None and quiet and mode == SettleMode.RECONCILE:
            if view.state not in (OrderState.UNATTRIBUTED, OrderState.ON_REVIEW):
                return None
        claims = _claims_arriving(view, moves, request.claims_edit)
        plans = self._plans_elsewhere(key, moves, now, counts)
        if merged or view.record is not None:
            moving = view.dirty or bool(moves.leaving)
            own_mode = SettleMode.REDECIDE if mode == SettleMode.RECONCILE and moving else mode
            own = self._plan(key, view, merged, changed, own_mode, now, counts, review=request.review, claims=claims)
            if own is not None:
                own.tombstones = moves.giving_up
                plans.append(own)
        if plans:
            fact_at = _fact_time(request, view, changed, moves, now)
            for plan in plans:
                plan.fact_at = fact_at
            # only a change of this order alone waits to be written with others (see settle_together); not one the
            # new-user-coupon rule reaches: a later order of the shopper may decide it again, and must read it written
            if not alone_only and len(plans) == 1 and plans[0].key == key and not plans[0].tombstones:
                if not any(line.new_user_coupon and line.buyer_account for line in plans[0].all_lines.values()):
                    return plans[0]
            self.store.apply([change_of(plan, now) for plan in plans])
            self._count(plans, now, counts)
        return None

    def _locate(
        self, key: str, view: OrderView, merged: dict[str, OrderLine], changed: list[OrderLine], counts: RunCounts
    ) -> Moves:
        """Lines new to this order (and, after an interrupted run, lines stored without a decision) are looked up by
        their partner id in every other order."""
        moves = Moves()
        to_locate = [line for line in changed if line.line_id not in view.lines]
        if view.dirty:
            undecided = set(view.lines) - view.decided_line_ids()
            to_locate += [line for line_id, line in view.lines.items() if line_id in undecided]
        for line in to_locate:
            for other_key in sorted(home for home in self.store.line_homes(line.partner, line.line_id) if home != key):
                other = moves.others.get(other_key) or load_order(other_key, self.store)
                moves.others[other_key] = other
                there = other.lines.get(line.line_id)
                if there is None:
                    continue  # a tombstone: the line left that order already
                if not _newer_or_same(there, line):
                    moves.leaving[other_key].append(there)
                elif line.line_id in view.lines:
                    moves.giving_up.append((other_key, view.lines[line.line_id]))
                    merged.pop(line.line_id, None)
                else:
                    # the version elsewhere is the newer one: this one is stale and is not stored here
                    changed.remove(line)
                    counts.add("lines_stale")
                    merged.pop(line.line_id, None)
        return moves

    def _plans_elsewhere(self, key: str, moves: Moves, now: datetime, counts: RunCounts) -> list[OrderPlan]:
        """The orders lines leave for this one (and other orders found undecided) decided again."""
        plans = []
        for other_key, lines_out in sorted(moves.leaving.items()):
            other = moves.others[other_key]
            gone = {line.line_id for line in lines_out}
            remaining = {line_id: line for line_id, line in other.lines.items() if line_id not in gone}
            plan = self._plan(other_key, other, remaining, [], SettleMode.REDECIDE, now, counts, claims=other.claims)
            if plan is not None:
                plan.tombstones = [(key, line) for line in lines_out]
                plans.append(plan)
        for other_key, other in moves.others.items():
            if other_key not in moves.leaving and other.dirty:
                plan = self._plan(
                    other_key, other, other.lines, [], SettleMode.REDECIDE, now, counts, claims=other.claims
                )
                if plan is not None:
                    plans.append(plan)
        return plans

    def _plan(
        self,
        key: str,
        view: OrderView,
        merged: Mapping[str, OrderLine],
        changed: list[OrderLine],
        mode: SettleMode,
        now: datetime,
        counts: RunCounts,
        *,
        claims: tuple[ClaimFact, ...],
        review: Review | None = None,
    ) -> OrderPlan | None:
        """The planner's inputs gathered for one order (clicks, the new-user-coupon registry), then its plan."""
        inputs = PlanInputs(self.clicks_for(merged), self._config(), mode, now, claims, review)
        if not merged:
            return plan_order(key, view, merged, changed, Attribution(None), inputs)
        attribution = attribution_of(view, merged, inputs)
        accounts, also_affected = self._review_accounts(key, attribution, merged, now)
        if not mode.redecides and also_affected:
            # before this order's own write: a run stopped in between redoes both when rerun
            unsettled = counts.unsettled
            for other in also_affected:
                self.settle(Request(other, (), SettleMode.REDECIDE), now=now, counts=counts)
            if counts.unsettled == unsettled and attribution.user_id is not None:
                # all of them know these accounts now: the next arrival that brings no new one decides only itself
                self.store.record_coupon_accounts_decided(attribution.user_id, accounts)
        inputs = PlanInputs(inputs.clicks, inputs.config, mode, now, claims, review, accounts)
        return plan_order(key, view, merged, changed, attribution, inputs)

    def _review_accounts(
        self, key: str, attribution: Attribution, lines: Mapping[str, OrderLine], now: datetime
    ) -> tuple[frozenset[str], list[str]]:
        """The multi-account rule's input: every store account of this shopper that used a new-user coupon. When
        there are several and they are not the ones the shopper's other coupon orders were all last decided with,
        those orders are decided again too, so all of them are held whatever order the reports arrived in; an
        arrival that brings no new account decides only itself (linear in the shopper's orders, not quadratic)."""
        if attribution.user_id is None:
            return frozenset(), []
        mine = {line.buyer_account for line in lines.values() if line.new_user_coupon and line.buyer_account}
        if not mine:
            return frozenset(), []
        for account in sorted(mine):
            self.store.register_new_user_coupon(attribution.user_id, account, key, now=now)
        uses = self.store.new_user_coupon_uses(attribution.user_id)
        accounts = frozenset(account for _, account in uses)
        if len(accounts) > 1 and self.store.coupon_accounts_decided(attribution.user_id) != accounts:
            return accounts, sorted({order for order, _ in uses if order != key})
        return accounts, []

    def _count(self, plans: Iterable[OrderPlan], now: datetime, counts: RunCounts) -> None:
        for plan in plans:
            counts.add("orders_changed")
            counts.add("lines_applied", len(plan.lines))
            counts.add("lines_moved", len(plan.tombstones))
            for entry in plan.entries:
                counts.move(entry.transition, entry.delta, plan.decision.margin_usd)
                settled = settle_time(plan.decision, plan.all_lines, 0) if entry.transition == Transition.POST else None
                if settled is not None:  # the confirmation lag: from the partner's settlement to this cycle
                    counts.add("confirmation_lag_minutes", max(0, int((now - settled).total_seconds() // 60)))
            counts.add("notifications", sum(1 for entry in plan.entries if entry.event) + (1 if plan.notice else 0))
            if (
                plan.view.state != OrderState.PENDING
                and plan.step.state == OrderState.PENDING
                and later_than_promised(plan.all_lines, now)
            ):
                counts.add("pending_later_than_promised")
            if plan.step.refused and plan.lines:
                for line in plan.lines:
                    self.store.record_refusal(plan.key, line, plan.step.refused, plan.step.state.value, utc_text(now))
                counts.add("transitions_refused")


def _transactions(
    ready: Sequence[Ready], outbox_items: Callable[[Sequence[OutboxMessage]], int]
) -> Iterator[list[Ready]]:
    """The changes in transactions of at most ITEMS_TOGETHER items: a shopper's changes side by side, all in one
    transaction when they fit in one (the balance then updated once), and several shoppers' in one transaction as
    long as there is room (fewer calls; each shopper's balance one item). `outbox_items` says how many items the
    store writes a transaction's notifications in (it may share one among several)."""

    def items(changes: Sequence[Ready], balances: int) -> int:
        written = sum(1 + len(change.entries) for _, _, change, _ in changes)  # each order and its journal entries
        return balances + written + outbox_items([message for _, _, change, _ in changes for message in change.outbox])

    by_shoppers: dict[tuple[str, ...], list[Ready]] = defaultdict(list)
    for entry in ready:
        by_shoppers[tuple(sorted({balance.user_id for balance in entry[2].balances}))].append(entry)
    group: list[Ready] = []
    balances = 0
    for shoppers, entries in by_shoppers.items():
        if group and items(group + entries, balances + len(shoppers)) > ITEMS_TOGETHER:
            yield group  # the shopper's changes start a transaction of their own rather than straddle two
            group, balances = [], 0
        balances += len(shoppers)
        for entry in entries:
            if group and items([*group, entry], balances) > ITEMS_TOGETHER:  # more than one transaction: split
                yield group
                group, balances = [], len(shoppers)
            group.append(entry)
    if group:
        yield group


def _claims_arriving(view: OrderView, moves: Moves, edit: ClaimsEdit | None) -> tuple[ClaimFact, ...]:
    """The claims the order records after this change: its own, those of every order its lines all left for it
    (a claim follows its partner line), and the claims service's change."""
    claims = {fact.claim_id: fact for fact in view.claims}
    for other_key, lines_out in moves.leaving.items():
        other = moves.others[other_key]
        if set(other.lines) <= {line.line_id for line in lines_out}:
            claims.update((fact.claim_id, fact) for fact in other.claims)
    ordered = tuple(sorted(claims.values(), key=lambda fact: (fact.filed_at, fact.claim_id)))
    return edit(ordered) if edit is not None else ordered


def _fact_time(request: Request, view: OrderView, changed: Sequence[OrderLine], moves: Moves, now: datetime):
    """When the fact behind this change happened, for the explanation's timeline (never the `now` of the command
    that read it, unless the change is a decision made now): the reported status times of the lines that changed,
    the time the order fell due for the confirmation cycle, the claim's time."""
    reported = [line.status_at for line in changed] + [
        line.status_at for lines in moves.leaving.values() for line in lines
    ]
    if reported:
        return max(reported)
    if request.fact_at is not None:  # a claim: known once both the claim and the order's report are
        return max([request.fact_at, *(line.status_at for line in view.lines.values())])
    if request.mode == SettleMode.CONFIRM and view.record is not None and view.record.due_at:
        return min(parse_utc(view.record.due_at), now)
    return now


def _newer_or_same(stored: OrderLine, candidate: OrderLine) -> bool:
    """True when `stored` is at least as new as `candidate` (the ledger's version order, see latest_lines)."""
    _, changed, _ = latest_lines({stored.line_id: stored}, [candidate])
    return not changed
