"""The ledger: reconciles report lines into orders and moves money between pending and confirmed, exactly once.

Every change of an order is one DynamoDB transaction: the order (guarded by its version), its decision, the journal
entries (new items under deterministic ids), the ADD to each shopper's balance and the outbox record of each
notification. A replay or a concurrent run fails the version or the journal condition and changes nothing; the loser
re-reads the order and finds nothing left to do. A run that stops anywhere leaves either the whole change or none of
it, so rerunning it ends where a clean run ends.

Identity rules the ledger keeps (DOMAIN.md, "Identity and integrity"):

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

import hashlib
import json
import random
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from accrual.adapters import reference_data
from accrual.adapters.claim_attribution import ClaimAttribution, claim_of
from accrual.adapters.ledger_tables import (
    DECISION_SK, DUE_SHARDS, LINE_PREFIX, OUTBOX_SHARDS, BalanceRecord, DecisionRecord, JournalEntryRecord,
    LineRecord, OrderRecord, OrderTooLarge, OutboxRecord, RefusedRecord, bind_ledger_tables, load_order_items,
)
from accrual.domain.attribution import Attribution, attribute, pinned_shopper
from accrual.domain.claims import with_claim_step
from accrual.domain.decision import MissingFxRate, OrderDecision
from accrual.domain.lifecycle import (
    NOTHING, EventType, Holding, OrderState, ReviewVerdict, Step, Transition, event_of, later_than_promised,
    latest_lines, next_step, transition_of,
)
from accrual.domain.models import AccrualConfig, Click, OrderLine, order_key
from accrual.domain.money import money_str
from accrual.domain.rules import decide_order
from accrual.domain.screening import screen_line
from accrual.domain.shopper_text import message_texts
from accrual.observability import logger
from accrual.settings import Settings

MAX_ATTEMPTS = 8  # optimistic-concurrency retries of one order before the run reports it as failed
BACKOFF_BASE_SECONDS = 0.02  # doubled per attempt, with jitter, up to BACKOFF_CAP_SECONDS
BACKOFF_CAP_SECONDS = 1.0
MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
NOTIFICATION_SCHEMA = "cashback.notification/1"
OUTBOX_RETENTION_DAYS = 30
TRAIL_SUMMARY_LIMIT = 20  # a notification stays well under SNS's 256 KB whatever the order's size


class JournalConflict(RuntimeError):
    """A journal entry id exists with a different payload: the ledger refuses to guess and reports it."""


class OrderContention(RuntimeError):
    """The order kept changing under this run (another run is working on it); the next run picks it up."""


class _Retry(Exception):
    """This attempt lost a race (a newer line or order version was written meanwhile): read again and retry."""


def utc_text(moment: datetime) -> str:
    """Times as sortable UTC text, the form every key and index uses."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def lines_digest(lines: Mapping[str, OrderLine]) -> str:
    """Names the exact line versions an order was decided from."""
    text = "\n".join(f"{line_id}\t{lines[line_id].model_dump_json()}" for line_id in sorted(lines))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class OrderView:
    """An order as stored: the record (None when new), its decision as stored JSON, and its latest live lines."""

    record: OrderRecord | None
    decision_json: str | None
    lines: dict[str, OrderLine]

    @property
    def state(self) -> OrderState | None:
        return OrderState(self.record.state) if self.record else None

    @property
    def holding(self) -> Holding:
        if self.record is None:
            return NOTHING
        return Holding(self.record.pending_usd, self.record.confirmed_usd, self.record.pending, self.record.confirmed)

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

    def decided_line_ids(self) -> set[str]:
        if self.decision_json is None:
            return set()
        return {line["line_id"] for line in json.loads(self.decision_json)["lines"]}


def load_order(key: str) -> OrderView:
    record, decision, line_items = load_order_items(key)
    lines = {}
    for item in line_items:
        if item.moved_to:
            continue
        line = OrderLine.model_validate_json(item.body)
        lines[line.line_id] = line
    return OrderView(record, decision.text if decision else None, lines)


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
class OrderChange:
    """Everything one order's change writes. `lines` and `tombstones` are line items; the rest is the money."""

    key: str
    view: OrderView
    record: OrderRecord
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


class Ledger:
    def __init__(self, settings: Settings, *, config: AccrualConfig | None = None,
                 claims: ClaimAttribution | None = None) -> None:
        bind_ledger_tables(settings)
        self.settings = settings
        self._config = config
        self.claims = claims or ClaimAttribution(settings)  # claims hook: the claimant of an order no click names
        self._clicks: dict[str, Click | None] = {}
        self._connection = Connection(region=settings.region, host=settings.endpoint_url, max_retry_attempts=8)

    @property
    def config(self) -> AccrualConfig:
        if self._config is None:
            self._config = reference_data.current_config()
        return self._config

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
        counts: Counter[str] = Counter(lines_received=len(lines))
        by_order: dict[str, list[OrderLine]] = defaultdict(list)
        for line in lines:
            by_order[line.order_key].append(line)
        # the page's clicks in a few batch reads rather than one read per order (clicks never change once made)
        self._clicks = reference_data.find_clicks(line.sub_id for line in lines if line.sub_id)
        try:
            for key in sorted(by_order):
                self._settle_order(key, by_order[key], now=now, confirming=False, counts=counts)
        finally:
            self._clicks = {}
        counts.update(self._claims_after_reconcile(lines, now))  # claims hook
        return dict(counts)

    def _clicks_for(self, lines: Mapping[str, OrderLine]) -> dict[str, Click | None]:
        wanted = {line.sub_id for line in lines.values() if line.sub_id}
        missing = wanted - set(self._clicks)
        if missing:
            self._clicks.update(reference_data.find_clicks(missing))
        return {sub_id: self._clicks.get(sub_id) for sub_id in wanted}

    # ---- the scheduled confirmation cycle ------------------------------------------------------------------
    def confirm(self, *, now: datetime, page_size: int = 100) -> dict[str, int]:
        """Confirm settled orders whose hold has passed, decline orders unpaid for too long: every order the due
        index lists as due at or before `now`, page by page (bounded memory), each in its own transaction, so the
        cycle can stop anywhere and be rerun."""
        counts: Counter[str] = Counter()
        for key in self._due_orders(now, page_size):
            counts["orders_due"] += 1
            self._settle_order(key, [], now=now, confirming=True, counts=counts)
        counts.update(self._claims_sweep(now))  # claims hook
        return dict(counts)

    def _due_orders(self, now: datetime, page_size: int) -> Iterator[str]:
        until = utc_text(now)
        for shard in range(DUE_SHARDS):
            for item in OrderRecord.due.query(str(shard), OrderRecord.due_at <= until, page_size=page_size):
                yield item.pk

    # ---- an operator's verdict on an order held for review ------------------------------------------------
    def review(self, key: str, verdict: ReviewVerdict, *, now: datetime, user_id: str | None = None) -> OrderState:
        """Release or decline an order held for review; the money moves in the same transaction as the verdict.
        An order held because its lines name different shoppers is released to the shopper named by `user_id`."""
        view = load_order(key)
        if view.record is None or (view.state != OrderState.ON_REVIEW and view.record.review is None):
            raise ValueError(f"order {key} is not held for review (state {view.state})")
        conflict = attribute(view.lines, self._clicks_for(view.lines)).conflict
        if verdict == ReviewVerdict.RELEASED and conflict:
            if user_id not in conflict:
                raise ValueError(f"order {key} names several shoppers ({', '.join(conflict)}): release it to one "
                                 "of them with --user")
        elif user_id is not None:
            raise ValueError(f"order {key} is not in attribution conflict: --user does not apply")
        counts: Counter[str] = Counter()
        self._settle_order(key, [], now=now, confirming=False, counts=counts, redecide=True,
                           review=(verdict, user_id))
        if counts.get("orders_failed") or counts.get("journal_conflicts"):
            raise RuntimeError(f"order {key} could not be settled: {dict(counts)}")
        return load_order(key).state

    # ---- claims hook: match claims after a reconcile and on every confirmation cycle ----------------------------
    def _claims_after_reconcile(self, lines: Sequence[OrderLine], now: datetime) -> dict[str, int]:
        from accrual.service.claims import claims_after_reconcile

        return claims_after_reconcile(self.settings, self, lines, now=now)

    def _claims_sweep(self, now: datetime) -> dict[str, int]:
        from accrual.service.claims import claims_sweep

        return claims_sweep(self.settings, self, now=now)

    # ---- claims hook: decide one order again (a claim now matches it) ------------------------------------------
    def redecide_order(self, key: str, *, now: datetime) -> dict[str, int]:
        """Decide one stored order again with what the ledger knows now (a missing-cashback claim that matches it):
        the same path, rules, journal and notifications as a reconcile."""
        counts: Counter[str] = Counter()
        self._settle_order(key, [], now=now, confirming=False, counts=counts, redecide=True)
        return dict(counts)

    # ---- one order ------------------------------------------------------------------------------------------
    def _settle_order(self, key: str, incoming: list[OrderLine], *, now: datetime, confirming: bool,
                      counts: Counter[str], redecide: bool = False,
                      review: tuple[ReviewVerdict, str | None] | None = None) -> None:
        """Settle one order, retrying lost races with backoff. Whatever still fails is counted and logged, and the
        run goes on: the order is left as it was for the next run (nothing half-written)."""
        try:
            for attempt in range(MAX_ATTEMPTS):
                tally: Counter[str] = Counter()
                try:
                    self._try_settle(key, incoming, now=now, confirming=confirming, counts=tally,
                                     redecide=redecide, review=review)
                except _Retry:
                    counts["retries"] += 1
                    time.sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt) * random.random())
                    continue
                counts.update(tally)
                return
            raise OrderContention(f"order {key} changed {MAX_ATTEMPTS} times while this run worked on it")
        except JournalConflict as error:
            # never passed off as a success: counted, logged with the ids, and the run exits non-zero
            counts["journal_conflicts"] += 1
            logger.error("journal conflict", extra={"order": key, "error": str(error)})
        except (MissingFxRate, OrderContention, OrderTooLarge) as error:
            counts["orders_failed"] += 1
            logger.error("order not settled", extra={"order": key, "error": str(error)})
        except Exception as error:  # noqa: BLE001 - throttling past the retries, an outage: the next run retries
            counts["orders_failed"] += 1
            logger.exception("order not settled", extra={"order": key, "error_type": type(error).__name__})

    def _try_settle(self, key: str, incoming: list[OrderLine], *, now: datetime, confirming: bool,
                    counts: Counter[str], redecide: bool,
                    review: tuple[ReviewVerdict, str | None] | None) -> None:
        """One optimistic attempt: plan the change of this order (and of the orders lines move from), write it.
        Raises _Retry when it lost a race."""
        view = load_order(key)
        merged, changed, stale = latest_lines(view.lines, incoming)
        counts["lines_stale"] += len(stale)
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
                other = others.get(other_key) or load_order(other_key)
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
                    counts["lines_stale"] += 1
                    merged.pop(line.line_id, None)
        counts["lines_unchanged"] += unchanged

        if not merged and not view.lines:
            return
        if (view.record is not None and not changed and not leaving and not dirty and not confirming
                and not redecide and view.state not in (OrderState.UNATTRIBUTED, OrderState.ON_REVIEW)):
            return

        changes = []
        for other_key, lines_out in sorted(leaving.items()):
            other = others[other_key]
            remaining = {line_id: line for line_id, line in other.lines.items()
                         if line_id not in {line.line_id for line in lines_out}}
            change = self._plan(other_key, other, remaining, [], now=now, confirming=False, redecide=True,
                                review=None, counts=counts)
            if change is None:
                continue
            change.tombstones = [(key, line) for line in lines_out]
            changes.append(change)
        for other_key, other in others.items():
            if other_key not in leaving and other.dirty:
                change = self._plan(other_key, other, other.lines, [], now=now, confirming=False, redecide=True,
                                    review=None, counts=counts)
                if change is not None:
                    changes.append(change)
        if merged or view.record is not None:
            own = self._plan(key, view, merged, changed, now=now, confirming=confirming,
                             redecide=redecide or dirty or bool(leaving), review=review, counts=counts)
            if own is not None:
                own.tombstones = giving_up
                changes.append(own)
        if not changes:
            return
        self._commit(changes, now)
        for change in changes:
            counts["orders_changed"] += 1
            counts["lines_applied"] += len(change.lines)
            counts["lines_moved"] += len(change.tombstones)
            for entry in change.entries:
                counts[f"moves_{entry.transition.value}"] += 1
            counts["notifications"] += sum(1 for entry in change.entries if entry.event) + (1 if change.notice else 0)
            if (change.view.state != OrderState.PENDING and change.step.state == OrderState.PENDING
                    and later_than_promised(change.all_lines, now)):
                counts["pending_later_than_promised"] += 1
            if change.step.refused and change.lines:
                self._record_refused(change.key, change.lines, change.step, now)
                counts["transitions_refused"] += 1

    def _homes(self, line: OrderLine, key: str) -> list[str]:
        """The other orders holding an item of this partner line (live or a tombstone)."""
        return sorted({item.pk for item in LineRecord.by_line.query(f"{line.partner}#{line.line_id}")
                       if item.pk != key})

    def _plan(self, key: str, view: OrderView, merged: Mapping[str, OrderLine], changed: list[OrderLine], *,
              now: datetime, confirming: bool, redecide: bool,
              review: tuple[ReviewVerdict, str | None] | None, counts: Counter[str]) -> OrderChange | None:
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
        decision = decide_order(list(merged.values()), attribution.click, config, now=now,
                                other_new_user_coupon_accounts=review_accounts, conflict=attribution.conflict)
        decision = with_claim_step(decision, claim_of(attribution))  # claims hook: the trail names the claim

        holder = view.holder
        same_shopper = holder is None or holder == decision.user_id
        held = view.holding if same_shopper else NOTHING
        fx_rate = record.fx_rate if record is not None and holder is not None and same_shopper else decision.fx_rate
        step = next_step(view.state if same_shopper else None, held, decision, merged, fx_rate=fx_rate,
                         hold_days=config.hold_days_for(decision.partner),
                         awaiting_payment_days=config.awaiting_payment_days, now=now, confirming=confirming,
                         review=verdict)
        decision_json = canonical(decision.to_dict())
        due_at = utc_text(step.due_at) if step.due_at else None
        digest = lines_digest(merged)
        if (record is not None and not changed and record.state == step.state and view.holding == step.holding
                and view.decision_json == decision_json and record.due_at == due_at
                and record.review == (verdict.value if verdict else None)
                and record.review_user == (review_user if verdict else None)
                and record.lines_digest in (None, digest) and same_shopper):
            return None

        entries = []
        start = view.holding
        if not same_shopper:
            # the first shopper's money is voided as its own entry, the second's appears from nothing
            entries.append(_Entry(holder, record.account_currency, record.fx_rate, view.holding, NOTHING,
                                  transition_of(view.holding, NOTHING), view.state, None))
            start = NOTHING
        if step.holding != start:
            if decision.user_id is None:
                raise JournalConflict(f"order {key} would move money without a shopper")
            entries.append(_Entry(decision.user_id, decision.account_currency, fx_rate, start, step.holding,
                                  transition_of(start, step.holding), view.state if same_shopper else None, None))
        for entry in entries:
            after_state = step.state if entry.user_id == decision.user_id else _lost_state(step.state)
            entry.event = event_of(entry.state_from, after_state, entry.transition)
        notice = None
        if not entries and decision.user_id is not None:
            notice = event_of(view.state, step.state, None)

        version = (record.version or 0) + 1 if record else 1
        new_record = self._order_record(key, view, merged, decision, step, fx_rate, review_accounts,
                                        verdict, review_user, digest, len(entries), now)
        return OrderChange(key=key, view=view, record=new_record, decision=decision, decision_json=decision_json,
                           step=step, version=version, all_lines=merged, lines=list(changed), entries=entries,
                           notice=notice)

    def _claimed(self, key: str, lines: Mapping[str, OrderLine], attribution: Attribution) -> Attribution:
        """Claims hook: the claimant's attribution when no click names a shopper and a claim matches the order. The
        claim's click is remembered with the page's clicks (the notification's language comes from its country)."""
        claimed = self.claims.attribute(key, lines, attribution, self.config)
        if claimed.click is not None and claimed is not attribution:
            self._clicks[claimed.click.sub_id] = claimed.click
        return claimed

    def _plan_empty(self, key: str, view: OrderView, now: datetime) -> OrderChange | None:
        """Every line of the order moved to another order: it holds nothing any more and keeps its history."""
        record = view.record
        if record is None or (record.state == OrderState.MOVED and view.holding.is_zero):
            return None
        decision = OrderDecision.from_dict(json.loads(view.decision_json))
        step = Step(OrderState.MOVED, NOTHING, None)
        entries = []
        if view.holder is not None:
            entries.append(_Entry(view.holder, record.account_currency, record.fx_rate, view.holding, NOTHING,
                                  transition_of(view.holding, NOTHING), view.state,
                                  event_of(view.state, OrderState.MOVED, transition_of(view.holding, NOTHING))))
        record.entries = (record.entries or 0) + len(entries)
        record.state = OrderState.MOVED.value
        record.pending_usd = record.confirmed_usd = record.pending = record.confirmed = Decimal("0")
        record.due_at = record.due_shard = None
        record.lines_digest = lines_digest({})
        record.decided_at = record.updated_at = utc_text(now)
        return OrderChange(key=key, view=view, record=record, decision=decision, decision_json=view.decision_json,
                           step=step, version=(record.version or 0) + 1, entries=entries)

    def _order_record(self, key: str, view: OrderView, merged: Mapping[str, OrderLine], decision: OrderDecision,
                      step: Step, fx_rate: Decimal, review_accounts: frozenset[str], verdict: ReviewVerdict | None,
                      review_user: str | None, digest: str, entries: int, now: datetime) -> OrderRecord:
        record = view.record or OrderRecord(key, "ORDER", entries=0)
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
        record.due_shard = str(zlib.crc32(key.encode()) % DUE_SHARDS) if step.due_at else None
        record.lines_digest = digest
        record.updated_at = utc_text(now)
        return record

    def _review_accounts(self, key: str, attribution: Attribution, lines: Mapping[str, OrderLine],
                         now: datetime) -> tuple[frozenset[str], list[str]]:
        """The multi-account rule's input: every store account of this shopper that used a new-user coupon. When
        there are several, the shopper's other coupon orders are decided again too (a no-op when they already
        know), so all of them are held whatever order the reports arrived in."""
        if attribution.user_id is None:
            return frozenset(), []
        mine = {line.buyer_account for line in lines.values() if line.new_user_coupon and line.buyer_account}
        if not mine:
            return frozenset(), []
        for account in sorted(mine):
            reference_data.register_new_user_coupon(attribution.user_id, account, key, now=now)
        uses = reference_data.new_user_coupon_uses(attribution.user_id)
        accounts = frozenset(account for _, account in uses)
        if len(accounts) > 1:
            return accounts, sorted({order for order, _ in uses if order != key})
        return accounts, []

    # ---- writing ---------------------------------------------------------------------------------------------
    def _commit(self, changes: list[OrderChange], now: datetime) -> None:
        """Write the changes of one or more orders. The money (orders, decisions, journal, balances, outbox) is
        one transaction; line items join it when they fit, else they are written first as facts."""
        core = sum(1 + change.decision_changed + 2 * len(change.entries) + (change.notice is not None)
                   for change in changes)
        core += len({entry.user_id for change in changes for entry in change.entries})  # one balance update each
        line_items = sum(len(change.lines) + len(change.tombstones) for change in changes)
        facts_first = core + line_items > MAX_TRANSACTION_ITEMS
        if facts_first:
            for change in changes:
                for line in change.lines:
                    self._put_line_fact(change.key, line)
                for moved_to, line in change.tombstones:
                    self._put_line_fact(change.key, line, moved_to=moved_to)

        kinds: list[str] = []  # what each put of the transaction is, to read its cancellation reasons
        balances: dict[str, tuple[Holding, str]] = {}
        try:
            with TransactWrite(connection=self._connection) as transaction:
                for change in changes:
                    transaction.save(change.record)  # VersionAttribute adds the condition: version unchanged (new)
                    kinds.append("order")
                    if change.decision_changed:
                        transaction.save(DecisionRecord.of(change.key, change.decision_json))
                        kinds.append("decision")
                    if not facts_first:
                        for line in change.lines:
                            transaction.save(_line_item(change.key, line))
                            kinds.append("line")
                        for moved_to, line in change.tombstones:
                            transaction.save(_line_item(change.key, line, moved_to=moved_to))
                            kinds.append("line")
                    sequence = (change.record.entries or 0) - len(change.entries)
                    for entry in change.entries:
                        sequence += 1
                        transaction.save(self._journal_entry(change, entry, sequence, now),
                                         condition=JournalEntryRecord.pk.does_not_exist())
                        kinds.append("entry")
                        held, _ = balances.get(entry.user_id, (NOTHING, entry.account_currency))
                        balances[entry.user_id] = (held.plus(entry.delta), entry.account_currency)
                        if entry.event is not None:
                            transaction.save(self._outbox_event(change, entry.user_id, entry.event, entry, now),
                                             condition=OutboxRecord.event_id.does_not_exist())
                            kinds.append("outbox")
                    if change.notice is not None:
                        transaction.save(self._outbox_event(change, change.decision.user_id, change.notice, None,
                                                            now), condition=OutboxRecord.event_id.does_not_exist())
                        kinds.append("outbox")
                for user_id, (delta, currency) in sorted(balances.items()):
                    transaction.update(BalanceRecord(user_id), actions=[
                        BalanceRecord.pending_usd.add(delta.pending_usd),
                        BalanceRecord.confirmed_usd.add(delta.confirmed_usd),
                        BalanceRecord.pending.add(delta.pending),
                        BalanceRecord.confirmed.add(delta.confirmed),
                        BalanceRecord.account_currency.set(currency),
                    ])
                    kinds.append("balance")
        except TransactWriteError as error:
            self._raise_for(changes, kinds, error)

    def _raise_for(self, changes: list[OrderChange], kinds: list[str], error: TransactWriteError) -> None:
        """Tell a lost race (an order changed, a transaction conflict: retry) from a journal or notification id
        taken with another payload while the orders did not change (a JournalConflict, never passed off)."""
        codes = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
        failed = {kinds[index] for index, code in enumerate(codes)
                  if code == "ConditionalCheckFailed" and index < len(kinds)}
        if "order" in failed or "TransactionConflict" in codes:
            raise _Retry() from error
        if failed & {"entry", "outbox"}:
            keys = ", ".join(change.key for change in changes)
            raise JournalConflict(f"order {keys}: a journal entry or notification with this id already exists "
                                  f"with another payload while the order itself did not change ({codes})") from error
        raise error

    def _put_line_fact(self, key: str, line: OrderLine, *, moved_to: str | None = None) -> None:
        """A line item written on its own, only over an older version of itself (a concurrent run may have stored
        a newer one: then this attempt lost the race). A tombstone replaces the live item it retires."""
        item = _line_item(key, line, moved_to=moved_to)
        if moved_to is not None:
            condition = LineRecord.moved_to.does_not_exist() & (LineRecord.body == item.body)
        else:
            condition = (LineRecord.sk.does_not_exist() | LineRecord.moved_to.exists()
                         | (LineRecord.status_at < item.status_at)
                         | ((LineRecord.status_at == item.status_at) & (LineRecord.body < item.body)))
        try:
            item.save(condition=condition)
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                existing = LineRecord.get(key, item.sk, consistent_read=True)
                if existing.body == item.body and (existing.moved_to or None) == moved_to:
                    return  # already written by an earlier attempt
                raise _Retry() from error
            raise

    def _journal_entry(self, change: OrderChange, entry: _Entry, sequence: int, now: datetime) -> JournalEntryRecord:
        key, delta = change.key, entry.delta
        number = f"{sequence:06d}"
        entry_id = f"{key}#{number}#{entry.transition.value}"
        state_from = entry.state_from.value if entry.state_from else None
        state_to = change.step.state if entry.user_id == change.decision.user_id else _lost_state(change.step.state)
        payload = {"entry_id": entry_id, "transition": entry.transition.value, "user_id": entry.user_id,
                   "pending_usd": str(delta.pending_usd), "confirmed_usd": str(delta.confirmed_usd),
                   "pending": str(delta.pending), "confirmed": str(delta.confirmed),
                   "state_from": state_from, "state_to": state_to.value}
        return JournalEntryRecord(
            key, f"ENTRY#{number}#{entry.transition.value}", entry_id=entry_id, transition=entry.transition.value,
            user_id=entry.user_id, account_currency=entry.account_currency, fx_rate=entry.fx_rate,
            pending_usd=delta.pending_usd, confirmed_usd=delta.confirmed_usd, pending=delta.pending,
            confirmed=delta.confirmed, state_from=state_from, state_to=state_to.value,
            digest=hashlib.sha256(canonical(payload).encode()).hexdigest(), at=utc_text(now))

    def _outbox_event(self, change: OrderChange, user_id: str, event: EventType, entry: _Entry | None,
                      now: datetime) -> OutboxRecord:
        """The notification, fixed at the moment of the change (deterministic id: order + version + shopper)."""
        decision, step = change.decision, change.step
        event_id = hashlib.sha256(f"{change.key}#v{change.version}#{event.value}#{user_id}".encode()).hexdigest()[:32]
        mine = user_id == decision.user_id
        holding = step.holding if mine else NOTHING
        delta = entry.delta if entry is not None else NOTHING
        currency = entry.account_currency if entry is not None else decision.account_currency
        state = step.state if mine else _lost_state(step.state)
        before = entry.state_from if entry is not None else change.view.state
        body = {
            "schema": NOTIFICATION_SCHEMA,
            "event_id": event_id,
            "event_type": event.value,
            "occurred_at": utc_text(now),
            "user_id": user_id,
            "partner": decision.partner,
            "order_id": decision.order_id,
            "state": state.value,
            "previous_state": before.value if before else None,
            "cashback_usd": money_str(holding.confirmed_usd + holding.pending_usd),
            "account_currency": currency,
            "cashback": money_str(holding.confirmed + holding.pending),
            "change": {"pending_usd": money_str(delta.pending_usd), "confirmed_usd": money_str(delta.confirmed_usd),
                       "pending": money_str(delta.pending), "confirmed": money_str(delta.confirmed)},
            "reasons": list(decision.reasons),
            "trail_summary": [{"rule": item.rule, "code": item.code, "note": item.note}
                              for item in decision.trail if item.code][:TRAIL_SUMMARY_LIMIT],
        }
        body.update(message_texts(body, decision, self._clicks.get(change.record.sub_id or "") if mine else None))
        attributes = {"event_type": event.value, "partner": decision.partner, "state": state.value,
                      "account_currency": currency}
        return OutboxRecord(event_id, event_type=event.value, user_id=user_id, body=canonical(body),
                            attributes=canonical(attributes), created_at=utc_text(now),
                            unpublished_shard=str(int(event_id, 16) % OUTBOX_SHARDS),
                            expires_at=int(now.timestamp()) + OUTBOX_RETENTION_DAYS * 86400)

    def _record_refused(self, key: str, changed: list[OrderLine], step: Step, now: datetime) -> None:
        for line in changed:
            RefusedRecord(key, f"REFUSED#{line.line_id}#{utc_text(line.status_at)}#{line.status.value}",
                          reason=step.refused, state=step.state.value, body=line.model_dump_json(),
                          at=utc_text(now)).save()


def _line_item(key: str, line: OrderLine, *, moved_to: str | None = None) -> LineRecord:
    return LineRecord(key, f"{LINE_PREFIX}{line.line_id}", line_ref=f"{line.partner}#{line.line_id}",
                      status=line.status.value, status_at=utc_text(line.status_at), body=line.model_dump_json(),
                      moved_to=moved_to)


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


__all__ = ["Ledger", "JournalConflict", "OrderContention", "OrderChange", "load_order", "order_key", "utc_text",
           "parse_utc", "lines_digest"]
