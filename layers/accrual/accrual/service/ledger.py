"""The ledger: reconciles report lines into orders and moves money between pending and confirmed, exactly once.

Every change of an order is one `OrderChange` the ledger store applies in one transaction (adapters/ledger_store.py,
which owns every key and DynamoDB call): the order (guarded by its version), its decision, the journal entries (new
items under deterministic ids), the ADD to each shopper's balance and the outbox record of each notification. A replay or a concurrent run fails the version or the journal condition and changes nothing; the loser
re-reads the order and finds nothing left to do. A run that stops anywhere leaves either the whole change or none of
it, so rerunning it ends where a clean run ends.

Identity rules the ledger keeps (docs/rules.md, "Identity and integrity"):

* **One partner line, one order.** A line is looked up by its partner id (`by_line`) before it is placed; when a later
  version names another order, the line moves there and the money follows, both orders in the same transaction. The
  line's old item stays as a tombstone (`moved_to`) that the old order ignores.
* **One order, one shopper.** The holding of an order belongs to the shopper it was credited to. When the order's
  shopper changes (lines naming another shopper, a conflict, a claim), the first shopper's money is voided and the
  second's pending appears as its own entry: money never reaches a shopper as a difference computed for another.
* **Orders of any size.** When an order's changed lines do not fit in one transaction (100 items), they are written
  first as facts (each conditional on being newer than what is stored) and the transaction holds only the orders,
  decisions, journal entries, balances and notifications. The order records the digest of the line versions it was
  decided from, so an order whose lines changed without its decision (a run stopped in between) is decided again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from accrual.adapters.claim_attribution import ClaimAttribution, claim_of
from accrual.adapters.ledger_store import (
    BalanceDelta,
    DynamoLedgerStore,
    JournalConflict,
    JournalEntry,
    LedgerStore,
    LineWrite,
    LoadedOrder,
    LostRace,
    OrderChange,
    OrderItem,
    OutboxMessage,
    StoredLine,
    journal_entry_id,
    parse_utc,
    utc_text,
)
from accrual.adapters.ledger_tables import OrderTooLarge
from accrual.domain.attribution import Attribution, attribute, pinned_shopper
from accrual.domain.claims import with_claim_step
from accrual.domain.decision import MissingFxRate, OrderDecision
from accrual.domain.lifecycle import (
    NOTHING,
    EventType,
    Holding,
    OrderState,
    ReviewVerdict,
    Step,
    Transition,
    event_of,
    later_than_promised,
    latest_lines,
    next_step,
    transition_of,
)
from accrual.domain.models import AccrualConfig, Click, OrderLine, order_key
from accrual.domain.notification import notification
from accrual.domain.rules import decide_order
from accrual.domain.screening import screen_line
from accrual.observability import logger
from accrual.service.counts import RunCounts
from accrual.settings import Settings

MAX_ATTEMPTS = 8  # optimistic-concurrency retries of one order before the run reports it as failed
BACKOFF_BASE_SECONDS = 0.02  # doubled per attempt, with jitter, up to BACKOFF_CAP_SECONDS
BACKOFF_CAP_SECONDS = 1.0
CONFIRM_CLICKS_TOGETHER = 100  # due orders whose clicks are read together (BatchGetItem's 100 keys)
READ_AHEAD_ORDERS = 100  # orders of a report read together before they are settled (bounded memory)
# money already confirmed is never re-decided: an order in these states keeps its decision (redecide skips it)
SETTLED_STATES = frozenset({OrderState.CONFIRMED, OrderState.REVERSED, OrderState.MOVED})


class OrderContention(RuntimeError):
    """The order kept changing under this run (another run is working on it); the next run picks it up."""


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def amount_text(value: Decimal) -> str:
    """An amount as a digest sees it: one number, one text, however many trailing zeros it carries. DynamoDB returns
    numbers without them (-5.00 is read back as -5), so an entry computed from amounts read back must fingerprint
    like the same entry computed in memory, or a rerun would take it for a conflicting one."""
    return "0" if value == 0 else format(value.normalize(), "f")


def lines_digest(lines: Mapping[str, OrderLine]) -> str:
    """Names the exact line versions an order was decided from."""
    text = "\n".join(f"{line_id}\t{lines[line_id].model_dump_json()}" for line_id in sorted(lines))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class OrderView:
    """An order as stored: the order item (None when new), its decision as stored JSON, and its latest live lines."""

    record: OrderItem | None
    decision_json: str | None
    lines: dict[str, OrderLine]

    @property
    def state(self) -> OrderState | None:
        return OrderState(self.record.state) if self.record else None

    @property
    def holding(self) -> Holding:
        if self.record is None:
            return NOTHING
        return self.record.holding

    @property
    def holder(self) -> str | None:
        """The shopper the order's money is with (None when it holds nothing)."""
        if self.record is None or self.holding.is_zero:
            return None
        return self.record.user_id

    @property
    def dirty(self) -> bool:
        """Lines were stored that the order was not decided from (a run stopped between the two writes)."""
        if self.record is None or self.record.lines_digest is None:
            return False
        return self.record.lines_digest != lines_digest(self.lines)

    @property
    def settled(self) -> bool:
        """Confirmed money (or a final state): never re-decided."""
        return self.state in SETTLED_STATES or self.holding.confirmed_usd != 0 or self.holding.confirmed != 0

    def decided_line_ids(self) -> set[str]:
        if self.decision_json is None:
            return set()
        return {line["line_id"] for line in json.loads(self.decision_json)["lines"]}


def view_of(loaded: LoadedOrder) -> OrderView:
    lines = {}
    for item in loaded.lines:
        if item.moved_to:
            continue
        line = OrderLine.model_validate_json(item.body)
        lines[line.line_id] = line
    return OrderView(loaded.order, loaded.decision, lines)


def load_order(key: str, store: LedgerStore) -> OrderView:
    return view_of(store.load_order(key))


@dataclass
class _Entry:
    """One journal entry of a change: money moving for one shopper."""

    user_id: str
    account_currency: str
    fx_rate: Decimal
    before: Holding
    after: Holding
    transition: Transition
    state_from: OrderState | None
    event: EventType | None

    @property
    def delta(self) -> Holding:
        return self.after.minus(self.before)


@dataclass
class OrderPlan:
    """What one order's change is to write, as the ledger plans it. `lines` and `tombstones` are line items; the
    rest is the money. `change()` turns it into the store's OrderChange."""

    key: str
    view: OrderView
    record: OrderItem
    decision: OrderDecision
    decision_json: str
    step: Step
    version: int
    all_lines: Mapping[str, OrderLine] = field(default_factory=dict)  # the lines it is decided from
    lines: list[OrderLine] = field(default_factory=list)  # the line versions to store
    tombstones: list[tuple[str, OrderLine]] = field(default_factory=list)  # (the order it went to, the old line)
    entries: list[_Entry] = field(default_factory=list)
    notice: EventType | None = None  # a notification without money moving (for instance a first decline)

    @property
    def decision_changed(self) -> bool:
        return self.decision_json != self.view.decision_json


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
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: LedgerStore | None = None,
        config: AccrualConfig | None = None,
        claims: ClaimAttribution | None = None,
    ) -> None:
        if store is None:
            if settings is None:
                raise ValueError("a Ledger needs its settings or a store")
            store = DynamoLedgerStore(settings)
        self.settings = settings
        self.store = store
        self._config = config
        # claims hook: the claimant of an order no click names (no claims table behind an in-memory store)
        self.claims = claims if claims is not None else (ClaimAttribution(settings) if settings is not None else None)
        self._clicks: dict[str, Click | None] = {}

    @property
    def config(self) -> AccrualConfig:
        if self._config is None:
            self._config = self.store.current_config()
        return self._config

    def load_order(self, key: str) -> OrderView:
        return load_order(key, self.store)

    # ---- screening ------------------------------------------------------------------------------------------
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

    # ---- reconcile ------------------------------------------------------------------------------------------
    def reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> dict[str, int]:
        """Upsert report lines and re-decide their orders. Counts say what happened to each line and order."""
        counts = RunCounts(lines_received=len(lines))
        by_order: dict[str, list[OrderLine]] = defaultdict(list)
        for line in lines:
            by_order[line.order_key].append(line)
        # the page's clicks in a few batch reads rather than one read per order (clicks never change once made)
        self._clicks = self.store.find_clicks(line.sub_id for line in lines if line.sub_id)
        try:
            for chunk in itertools.batched(sorted(by_order), READ_AHEAD_ORDERS):
                # the chunk's orders and the claims of their new lines in a few batch reads, not a Query each
                self.store.read_ahead(chunk, [line for key in chunk for line in by_order[key]])
                for key in chunk:
                    self._settle_order(key, by_order[key], now=now, confirming=False, counts=counts)
        finally:
            self._clicks = {}
        if self.claims is not None:
            counts.merge(RunCounts.of(self._claims_after_reconcile(lines, now)))  # claims hook
        return counts.as_dict()

    def _clicks_for(self, lines: Mapping[str, OrderLine]) -> dict[str, Click | None]:
        wanted = {line.sub_id for line in lines.values() if line.sub_id}
        missing = wanted - set(self._clicks)
        if missing:
            self._clicks.update(self.store.find_clicks(missing))
        return {sub_id: self._clicks.get(sub_id) for sub_id in wanted}

    # ---- the scheduled confirmation cycle ------------------------------------------------------------------
    def confirm(self, *, now: datetime, page_size: int = 100) -> dict[str, int]:
        """Confirm settled orders whose hold has passed, decline orders unpaid for too long: every order the due
        index lists as due at or before `now`, page by page (bounded memory), each in its own transaction, so the
        cycle can stop anywhere and be rerun."""
        counts = RunCounts.of(self.confirm_orders(self.store.due_orders(utc_text(now), page_size), now=now))
        if self.claims is not None:
            counts.merge(RunCounts.of(self._claims_sweep(now)))  # claims hook
        return counts.as_dict()

    def due_orders(self, *, now: datetime, shards: Iterable[int] | None = None, page_size: int = 100) -> Iterator[str]:
        """The orders the due index lists as due at or before `now`, in the given shards (all by default): the
        units a parallel confirmation hands out."""
        return self.store.due_orders(utc_text(now), page_size, shards=shards)

    def confirm_orders(self, keys: Iterable[str], *, now: datetime) -> dict[str, int]:
        """Confirm the given due orders (from `due_orders`), each in its own transaction, as `confirm` does."""
        counts = RunCounts()
        for chunk in itertools.batched(keys, CONFIRM_CLICKS_TOGETHER):
            # the chunk's clicks in two batch reads (the orders' sub-ids, then their clicks) rather than one read per
            # order; an order whose lines name other sub-ids reads those as before. Kept per chunk: memory stays
            # bounded over a month-end's confirmation.
            self._clicks = self.store.find_clicks(self.store.order_sub_ids(chunk))
            self.store.read_ahead(chunk)
            try:
                for key in chunk:
                    counts.add("orders_due")
                    self._settle_order(key, [], now=now, confirming=True, counts=counts)
            finally:
                self._clicks = {}
        return counts.as_dict()

    # ---- an operator's verdict on an order held for review ------------------------------------------------
    def review(self, key: str, verdict: ReviewVerdict, *, now: datetime, user_id: str | None = None) -> OrderState:
        """Release or decline an order held for review; the money moves in the same transaction as the verdict.
        An order held because its lines name different shoppers is released to the shopper named by `user_id`."""
        view = self.load_order(key)
        if view.record is None or (view.state != OrderState.ON_REVIEW and view.record.review is None):
            raise ValueError(f"order {key} is not held for review (state {view.state})")
        conflict = attribute(view.lines, self._clicks_for(view.lines)).conflict
        if verdict == ReviewVerdict.RELEASED and conflict:
            if user_id not in conflict:
                raise ValueError(
                    f"order {key} names several shoppers ({', '.join(conflict)}): release it to one of them with --user"
                )
        elif user_id is not None:
            raise ValueError(f"order {key} is not in attribution conflict: --user does not apply")
        counts = RunCounts()
        self._settle_order(key, [], now=now, confirming=False, counts=counts, redecide=True, review=(verdict, user_id))
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
        ledger = self if not dry_run else Ledger(self.settings, store=DryRunStore(self.store), config=self.config)
        counts = RunCounts()
        results = []
        for key in keys:
            before = self.load_order(key)
            if before.record is None:
                results.append(Redecided(key, "not_found"))
                continue
            if before.settled:
                counts.add("orders_skipped_confirmed")
                results.append(Redecided(key, "skipped_confirmed", state_from=before.record.state))
                continue
            tally = RunCounts()
            ledger._settle_order(key, [], now=now, confirming=False, counts=tally, redecide=True, unsettled_only=True)
            counts.merge(tally)
            if tally.unsettled:
                results.append(Redecided(key, "failed", state_from=before.record.state))
                continue
            if tally.orders_skipped_confirmed:
                results.append(Redecided(key, "skipped_confirmed", state_from=before.record.state))
                continue
            after = ledger.load_order(key)
            result = _compare_decisions(key, before, after)
            if result.outcome == "changed":
                counts.add("orders_redecided")
            results.append(result)
        return results, counts

    # ---- claims hook: match claims after a reconcile and on every confirmation cycle ----------------------------
    def _claims_after_reconcile(self, lines: Sequence[OrderLine], now: datetime) -> dict[str, int]:
        from accrual.service.claims import claims_after_reconcile

        assert self.settings is not None  # the hook runs only with a claims table, which needs the settings
        return claims_after_reconcile(self.settings, self, lines, now=now)

    def _claims_sweep(self, now: datetime) -> dict[str, int]:
        from accrual.service.claims import claims_sweep

        assert self.settings is not None
        return claims_sweep(self.settings, self, now=now)

    # ---- claims hook: decide one order again (a claim now matches it) ------------------------------------------
    def redecide_order(self, key: str, *, now: datetime) -> dict[str, int]:
        """Decide one stored order again with what the ledger knows now (a missing-cashback claim that matches it):
        the same path, rules, journal and notifications as a reconcile."""
        counts = RunCounts()
        self._settle_order(key, [], now=now, confirming=False, counts=counts, redecide=True)
        return counts.as_dict()

    # ---- one order ------------------------------------------------------------------------------------------
    def _settle_order(
        self,
        key: str,
        incoming: list[OrderLine],
        *,
        now: datetime,
        confirming: bool,
        counts: RunCounts,
        redecide: bool = False,
        review: tuple[ReviewVerdict, str | None] | None = None,
        unsettled_only: bool = False,
    ) -> None:
        """Settle one order, retrying lost races with backoff. Whatever still fails is counted and logged, and the
        run goes on: the order is left as it was for the next run (nothing half-written)."""
        try:
            for attempt in range(MAX_ATTEMPTS):
                tally = RunCounts()
                try:
                    self._try_settle(
                        key,
                        incoming,
                        now=now,
                        confirming=confirming,
                        counts=tally,
                        redecide=redecide,
                        review=review,
                        unsettled_only=unsettled_only,
                    )
                except LostRace:
                    counts.add("retries")
                    time.sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt) * random.random())
                    continue
                counts.merge(tally)
                return
            raise OrderContention(f"order {key} changed {MAX_ATTEMPTS} times while this run worked on it")
        except JournalConflict as error:
            # never passed off as a success: counted, logged with the ids, and the run exits non-zero
            counts.add("journal_conflicts")
            logger.error("journal conflict", extra={"order": key, "error": str(error)})
        except (MissingFxRate, OrderContention, OrderTooLarge) as error:
            counts.add("orders_failed")
            logger.error("order not settled", extra={"order": key, "error": str(error)})
        except Exception as error:  # noqa: BLE001 - throttling past the retries, an outage: the next run retries
            counts.add("orders_failed")
            logger.exception("order not settled", extra={"order": key, "error_type": type(error).__name__})

    def _try_settle(
        self,
        key: str,
        incoming: list[OrderLine],
        *,
        now: datetime,
        confirming: bool,
        counts: RunCounts,
        redecide: bool,
        review: tuple[ReviewVerdict, str | None] | None,
        unsettled_only: bool = False,
    ) -> None:
        """One optimistic attempt: plan the change of this order (and of the orders lines move from), write it.
        Raises LostRace when it lost a race."""
        view = self.load_order(key)
        if unsettled_only and view.settled:
            counts.add("orders_skipped_confirmed")  # confirmed meanwhile (a concurrent cycle): left as it is
            return
        merged, changed, stale = latest_lines(view.lines, incoming)
        counts.add("lines_stale", len(stale))
        unchanged = len(incoming) - len(changed) - len(stale)

        # One partner line, one order: lines new to this order (and, after an interrupted run, lines stored without
        # a decision) are looked up by their partner id in every other order.
        dirty = view.dirty
        to_locate = [line for line in changed if line.line_id not in view.lines]
        if dirty:
            undecided = set(view.lines) - view.decided_line_ids()
            to_locate += [line for line_id, line in view.lines.items() if line_id in undecided]
        others: dict[str, OrderView] = {}
        leaving: dict[str, list[OrderLine]] = defaultdict(list)  # other order -> its lines that move here
        giving_up: list[tuple[str, OrderLine]] = []  # lines stored here of which another order has a newer version
        for line in to_locate:
            for other_key in self._homes(line, key):
                other = others.get(other_key) or self.load_order(other_key)
                others[other_key] = other
                there = other.lines.get(line.line_id)
                if there is None:
                    continue  # a tombstone: the line left that order already
                if not _newer_or_same(there, line):
                    leaving[other_key].append(there)
                elif line.line_id in view.lines:
                    giving_up.append((other_key, view.lines[line.line_id]))
                    merged.pop(line.line_id, None)
                else:
                    # the version elsewhere is the newer one: this one is stale and is not stored here
                    changed.remove(line)
                    stale.append(line)
                    counts.add("lines_stale")
                    merged.pop(line.line_id, None)
        counts.add("lines_unchanged", unchanged)

        if not merged and not view.lines:
            return
        if (
            view.record is not None
            and not changed
            and not leaving
            and not dirty
            and not confirming
            and not redecide
            and view.state not in (OrderState.UNATTRIBUTED, OrderState.ON_REVIEW)
        ):
            return

        plans = []
        for other_key, lines_out in sorted(leaving.items()):
            other = others[other_key]
            remaining = {
                line_id: line
                for line_id, line in other.lines.items()
                if line_id not in {line.line_id for line in lines_out}
            }
            plan = self._plan(
                other_key, other, remaining, [], now=now, confirming=False, redecide=True, review=None, counts=counts
            )
            if plan is None:
                continue
            plan.tombstones = [(key, line) for line in lines_out]
            plans.append(plan)
        for other_key, other in others.items():
            if other_key not in leaving and other.dirty:
                plan = self._plan(
                    other_key,
                    other,
                    other.lines,
                    [],
                    now=now,
                    confirming=False,
                    redecide=True,
                    review=None,
                    counts=counts,
                )
                if plan is not None:
                    plans.append(plan)
        if merged or view.record is not None:
            own = self._plan(
                key,
                view,
                merged,
                changed,
                now=now,
                confirming=confirming,
                redecide=redecide or dirty or bool(leaving),
                review=review,
                counts=counts,
            )
            if own is not None:
                own.tombstones = giving_up
                plans.append(own)
        if not plans:
            return
        self._commit(plans, now)
        for plan in plans:
            counts.add("orders_changed")
            counts.add("lines_applied", len(plan.lines))
            counts.add("lines_moved", len(plan.tombstones))
            for entry in plan.entries:
                counts.move(entry.transition)
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

    def _homes(self, line: OrderLine, key: str) -> list[str]:
        """The other orders holding an item of this partner line (live or a tombstone)."""
        return sorted(home for home in self.store.line_homes(line.partner, line.line_id) if home != key)

    def _plan(
        self,
        key: str,
        view: OrderView,
        merged: Mapping[str, OrderLine],
        changed: list[OrderLine],
        *,
        now: datetime,
        confirming: bool,
        redecide: bool,
        review: tuple[ReviewVerdict, str | None] | None,
        counts: RunCounts,
    ) -> OrderPlan | None:
        """What this order should become with these lines; None when nothing would change."""
        record = view.record
        if not merged:
            return self._plan_empty(key, view, now)
        config = self.config
        verdict = review[0] if review else (ReviewVerdict(record.review) if record and record.review else None)
        review_user = review[1] if review else (record.review_user if record else None)
        pinned = pinned_shopper(view.state, record.user_id if record else None, verdict, review_user)
        attribution = attribute(merged, self._clicks_for(merged), pinned_user=pinned)
        attribution = self._claimed(key, merged, attribution)  # claims hook: no click names a shopper
        review_accounts, also_affected = self._review_accounts(key, attribution, merged, now)
        if not redecide:
            # before this order's own write: a run stopped in between redoes both when rerun
            for other in also_affected:
                self._settle_order(other, [], now=now, confirming=False, counts=counts, redecide=True)
        decision = decide_order(
            list(merged.values()),
            attribution.click,
            config,
            now=now,
            other_new_user_coupon_accounts=review_accounts,
            conflict=attribution.conflict,
        )
        decision = with_claim_step(decision, claim_of(attribution))  # claims hook: the trail names the claim

        holder = view.holder
        same_shopper = holder is None or holder == decision.user_id
        held = view.holding if same_shopper else NOTHING
        fx_rate = record.fx_rate if record is not None and holder is not None and same_shopper else decision.fx_rate
        step = next_step(
            view.state if same_shopper else None,
            held,
            decision,
            merged,
            fx_rate=fx_rate,
            hold_days=config.hold_days_for(decision.partner),
            awaiting_payment_days=config.awaiting_payment_days,
            now=now,
            confirming=confirming,
            review=verdict,
        )
        decision_json = canonical(decision.to_dict())
        due_at = utc_text(step.due_at) if step.due_at else None
        digest = lines_digest(merged)
        if (
            record is not None
            and not changed
            and record.state == step.state
            and view.holding == step.holding
            and view.decision_json == decision_json
            and record.due_at == due_at
            and record.review == (verdict.value if verdict else None)
            and record.review_user == (review_user if verdict else None)
            and record.lines_digest in (None, digest)
            and same_shopper
        ):
            return None

        entries = []
        start = view.holding
        if not same_shopper:
            # the first shopper's money is voided as its own entry, the second's appears from nothing
            assert record is not None and holder is not None
            entries.append(
                _Entry(
                    holder,
                    record.account_currency,
                    record.fx_rate,
                    view.holding,
                    NOTHING,
                    _moved(view.holding, NOTHING),
                    view.state,
                    None,
                )
            )
            start = NOTHING
        if step.holding != start:
            if decision.user_id is None:
                raise JournalConflict(f"order {key} would move money without a shopper")
            entries.append(
                _Entry(
                    decision.user_id,
                    decision.account_currency,
                    fx_rate,
                    start,
                    step.holding,
                    _moved(start, step.holding),
                    view.state if same_shopper else None,
                    None,
                )
            )
        for entry in entries:
            after_state = step.state if entry.user_id == decision.user_id else _lost_state(step.state)
            entry.event = event_of(entry.state_from, after_state, entry.transition)
        notice = None
        if not entries and decision.user_id is not None:
            notice = event_of(view.state, step.state, None)

        version = (record.version or 0) + 1 if record else 1
        new_record = self._order_record(
            key, view, merged, decision, step, fx_rate, review_accounts, verdict, review_user, digest, len(entries), now
        )
        return OrderPlan(
            key=key,
            view=view,
            record=new_record,
            decision=decision,
            decision_json=decision_json,
            step=step,
            version=version,
            all_lines=merged,
            lines=list(changed),
            entries=entries,
            notice=notice,
        )

    def _claimed(self, key: str, lines: Mapping[str, OrderLine], attribution: Attribution) -> Attribution:
        """Claims hook: the claimant's attribution when no click names a shopper and a claim matches the order. The
        claim's click is remembered with the page's clicks (the notification's language comes from its country)."""
        if self.claims is None:
            return attribution
        claimed = self.claims.attribute(key, lines, attribution, self.config)
        if claimed.click is not None and claimed is not attribution:
            self._clicks[claimed.click.sub_id] = claimed.click
        return claimed

    def _plan_empty(self, key: str, view: OrderView, now: datetime) -> OrderPlan | None:
        """Every line of the order moved to another order: it holds nothing any more and keeps its history."""
        record = view.record
        if record is None or (record.state == OrderState.MOVED and view.holding.is_zero):
            return None
        assert view.decision_json is not None
        decision = OrderDecision.from_dict(json.loads(view.decision_json))
        step = Step(OrderState.MOVED, NOTHING, None)
        entries = []
        if view.holder is not None:
            entries.append(
                _Entry(
                    view.holder,
                    record.account_currency,
                    record.fx_rate,
                    view.holding,
                    NOTHING,
                    _moved(view.holding, NOTHING),
                    view.state,
                    event_of(view.state, OrderState.MOVED, _moved(view.holding, NOTHING)),
                )
            )
        record.entries = (record.entries or 0) + len(entries)
        record.state = OrderState.MOVED.value
        record.pending_usd = record.confirmed_usd = record.pending = record.confirmed = Decimal("0")
        record.due_at = None
        record.lines_digest = lines_digest({})
        record.decided_at = record.updated_at = utc_text(now)
        return OrderPlan(
            key=key,
            view=view,
            record=record,
            decision=decision,
            decision_json=view.decision_json,
            step=step,
            version=(record.version or 0) + 1,
            entries=entries,
        )

    def _order_record(
        self,
        key: str,
        view: OrderView,
        merged: Mapping[str, OrderLine],
        decision: OrderDecision,
        step: Step,
        fx_rate: Decimal,
        review_accounts: frozenset[str],
        verdict: ReviewVerdict | None,
        review_user: str | None,
        digest: str,
        entries: int,
        now: datetime,
    ) -> OrderItem:
        # the view's own item is updated in place (as it always was): the plan reads the order after the change
        record = view.record or OrderItem(key, entries=0)
        record.entries = (record.entries or 0) + entries
        record.partner = decision.partner
        record.order_id = decision.order_id
        record.partner_order_id = _first(merged, "partner_order_id")
        record.user_id = decision.user_id
        record.sub_id = _first(merged, "sub_id") if decision.user_id is None else _sub_id_of(merged, decision)
        record.ordered_at = utc_text(min(line.ordered_at for line in merged.values()))
        record.state = step.state.value
        record.decided_at = utc_text(now)
        record.review_accounts = sorted(review_accounts) or None
        record.review = verdict.value if verdict else None
        record.review_user = review_user if verdict else None
        record.account_currency = decision.account_currency
        record.fx_rate = fx_rate
        record.fx_day = decision.fx_day.isoformat() if decision.fx_day else None
        record.pending_usd, record.confirmed_usd = step.holding.pending_usd, step.holding.confirmed_usd
        record.pending, record.confirmed = step.holding.pending, step.holding.confirmed
        record.due_at = utc_text(step.due_at) if step.due_at else None
        record.lines_digest = digest
        record.updated_at = utc_text(now)
        return record

    def _review_accounts(
        self, key: str, attribution: Attribution, lines: Mapping[str, OrderLine], now: datetime
    ) -> tuple[frozenset[str], list[str]]:
        """The multi-account rule's input: every store account of this shopper that used a new-user coupon. When
        there are several, the shopper's other coupon orders are decided again too (a no-op when they already
        know), so all of them are held whatever order the reports arrived in."""
        if attribution.user_id is None:
            return frozenset(), []
        mine = {line.buyer_account for line in lines.values() if line.new_user_coupon and line.buyer_account}
        if not mine:
            return frozenset(), []
        for account in sorted(mine):
            self.store.register_new_user_coupon(attribution.user_id, account, key, now=now)
        uses = self.store.new_user_coupon_uses(attribution.user_id)
        accounts = frozenset(account for _, account in uses)
        if len(accounts) > 1:
            return accounts, sorted({order for order, _ in uses if order != key})
        return accounts, []

    # ---- writing ---------------------------------------------------------------------------------------------
    def _commit(self, plans: list[OrderPlan], now: datetime) -> None:
        """Write the plans of one or more orders as one change of the store (one transaction; the store writes the
        line items first as facts when they do not fit in it)."""
        self.store.apply([self._change(plan, now) for plan in plans])

    def _change(self, plan: OrderPlan, now: datetime) -> OrderChange:
        """The plan as the store's value: the order over the version it was read at, the decision when it changed,
        the lines and tombstones, the journal entries with their balance deltas and notifications."""
        order = dataclasses.replace(plan.record, version=plan.view.record.version if plan.view.record else None)
        lines = [LineWrite(line) for line in plan.lines] + [
            LineWrite(line, moved_to) for moved_to, line in plan.tombstones
        ]
        entries, balances, outbox = [], [], []
        sequence = (plan.record.entries or 0) - len(plan.entries)
        for entry in plan.entries:
            sequence += 1
            entries.append(self._journal_entry(plan, entry, sequence, now))
            balances.append(BalanceDelta(entry.user_id, entry.delta, entry.account_currency))
            if entry.event is not None:
                outbox.append(self._outbox_message(plan, entry.user_id, entry.event, entry, now))
        if plan.notice is not None:
            assert plan.decision.user_id is not None
            outbox.append(self._outbox_message(plan, plan.decision.user_id, plan.notice, None, now))
        return OrderChange(
            order=order,
            decision=plan.decision_json if plan.decision_changed else None,
            lines=tuple(lines),
            entries=tuple(entries),
            balances=tuple(balances),
            outbox=tuple(outbox),
        )

    def _journal_entry(self, plan: OrderPlan, entry: _Entry, sequence: int, now: datetime) -> JournalEntry:
        delta = entry.delta
        entry_id = journal_entry_id(plan.key, sequence, entry.transition.value)
        state_from = entry.state_from.value if entry.state_from else None
        state_to = plan.step.state if entry.user_id == plan.decision.user_id else _lost_state(plan.step.state)
        payload = {
            "entry_id": entry_id,
            "transition": entry.transition.value,
            "user_id": entry.user_id,
            "pending_usd": amount_text(delta.pending_usd),
            "confirmed_usd": amount_text(delta.confirmed_usd),
            "pending": amount_text(delta.pending),
            "confirmed": amount_text(delta.confirmed),
            "state_from": state_from,
            "state_to": state_to.value,
        }
        return JournalEntry(
            plan.key,
            sequence,
            entry.transition.value,
            entry.user_id,
            entry.account_currency,
            entry.fx_rate,
            delta,
            state_from,
            state_to.value,
            hashlib.sha256(canonical(payload).encode()).hexdigest(),
            utc_text(now),
        )

    def _outbox_message(
        self, plan: OrderPlan, user_id: str, event: EventType, entry: _Entry | None, now: datetime
    ) -> OutboxMessage:
        """The notification (domain/notification.py), fixed at the moment of the change, kept in the outbox."""
        decision, step = plan.decision, plan.step
        mine = user_id == decision.user_id
        message = notification(
            order_key=plan.key,
            order_version=plan.version,
            user_id=user_id,
            event=event,
            decision=decision,
            state=step.state if mine else _lost_state(step.state),
            previous_state=entry.state_from if entry is not None else plan.view.state,
            holding=step.holding if mine else NOTHING,
            change=entry.delta if entry is not None else NOTHING,
            account_currency=entry.account_currency if entry is not None else decision.account_currency,
            now=now,
            click=self._clicks.get(plan.record.sub_id or "") if mine else None,
        )
        return OutboxMessage(
            message.event_id,
            event.value,
            user_id,
            message.body(),
            message.attributes(),
            utc_text(now),
        )


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

    def read_ahead(self, keys: Iterable[str], lines: Sequence[OrderLine] = ()) -> None:
        return None  # it would write the lines' claims

    def apply(self, changes: Sequence[OrderChange]) -> None:
        for change in changes:
            self.changes[change.key] = change

    def record_refusal(self, key: str, line: OrderLine, reason: str, state: str, at: str) -> None:
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


def _moved(before: Holding, after: Holding) -> Transition:
    """The journal transition of a move of money (an entry is only made when the holding changes)."""
    transition = transition_of(before, after)
    assert transition is not None, "no money moves"
    return transition


def _newer_or_same(stored: OrderLine, candidate: OrderLine) -> bool:
    """True when `stored` is at least as new as `candidate` (the ledger's version order, see latest_lines)."""
    _, changed, _ = latest_lines({stored.line_id: stored}, [candidate])
    return not changed


def _lost_state(state: OrderState) -> OrderState:
    """The state a shopper who lost an order to another sees it in: held for review when in conflict, else moved."""
    return state if state in (OrderState.ON_REVIEW, OrderState.UNATTRIBUTED, OrderState.MOVED) else OrderState.MOVED


def _first(lines: Mapping[str, OrderLine], name: str) -> str | None:
    """The first value of a field over the order's lines, by line id (sub-orders of one order share it)."""
    for line_id in sorted(lines):
        value = getattr(lines[line_id], name)
        if value:
            return value
    return None


def _sub_id_of(lines: Mapping[str, OrderLine], decision: OrderDecision) -> str | None:
    """The sub-id of the click the order was decided by (its trail's inputs name it)."""
    for step in decision.trail:
        if step.rule == "inputs" and step.numbers.get("sub_id"):
            return step.numbers["sub_id"]
    return _first(lines, "sub_id")


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
