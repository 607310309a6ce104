"""The ledger's planner: what one order should become, as a plan of writes. Pure: it is given the order as stored,
the lines to merge, the clicks and the claims that attribute it, the configuration and one `SettleMode`, and it
reads and writes nothing (the write loop, service/settle.py, gathers the inputs and applies the plan).

* **One order, one shopper.** The holding of an order belongs to the shopper it was credited to. When the order's
  shopper changes (lines naming another shopper, a conflict, a claim), the first shopper's money is voided and the
  second's pending appears as its own entry: money never reaches a shopper as a difference computed for another.
* **Posted money never changes shopper**: an order whose money was posted is pinned to the shopper it was posted
  to (domain/attribution.py), whatever a click loaded later says.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from accrual.domain.attribution import Attribution, ClaimFact, attribute, claims_text, pinned_shopper
from accrual.domain.claims import with_claim_step
from accrual.domain.decision import OrderDecision
from accrual.domain.lifecycle import (
    NOTHING,
    EventType,
    Holding,
    OrderState,
    ReviewVerdict,
    Step,
    Transition,
    event_of,
    next_step,
    transition_of,
)
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.domain.rules import decide_order
from accrual.ports import JournalConflict, OrderItem, utc_text
from accrual.service.order_view import OrderView, canonical, lines_digest


class SettleMode(StrEnum):
    """Why an order is settled: the one thing about the call that changes what the planner does."""

    RECONCILE = "reconcile"  # a report's lines arrived
    CONFIRM = "confirm"  # the scheduled cycle: the only place pending money is posted
    REDECIDE = "redecide"  # decide again with what the ledger knows now (lines moved, a claim, a coupon registry)
    REVIEW = "review"  # an operator's verdict on an order held for review
    OPERATOR_REDECIDE = "operator_redecide"  # `accrual redecide`: decide again, never an order with posted money

    @property
    def confirming(self) -> bool:
        return self is SettleMode.CONFIRM

    @property
    def redecides(self) -> bool:
        """Decide again even when no line changed."""
        return self in (SettleMode.REDECIDE, SettleMode.REVIEW, SettleMode.OPERATOR_REDECIDE)

    @property
    def skips_settled(self) -> bool:
        return self is SettleMode.OPERATOR_REDECIDE


@dataclass(frozen=True)
class Review:
    """An operator's verdict on an order held for review, and the shopper it is released to (a conflict)."""

    verdict: ReviewVerdict
    user_id: str | None = None


@dataclass(frozen=True)
class PlanInputs:
    """What the planner is given besides the order: the facts it decides from."""

    clicks: Mapping[str, Click | None]
    config: AccrualConfig
    mode: SettleMode
    now: datetime
    claims: tuple[ClaimFact, ...] = ()  # the claims the order records after this change
    review: Review | None = None  # a verdict given now (SettleMode.REVIEW)
    review_accounts: frozenset[str] = frozenset()  # the multi-account rule's input


@dataclass
class Entry:
    """One journal entry of a change: money moving for one shopper."""

    user_id: str
    account_currency: str
    fx_rate: Decimal
    before: Holding
    after: Holding
    transition: Transition
    state_from: OrderState | None
    event: EventType | None = None

    @property
    def delta(self) -> Holding:
        return self.after.minus(self.before)


@dataclass
class OrderPlan:
    """What one order's change is to write. `lines` and `tombstones` are line items; the rest is the money."""

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
    entries: list[Entry] = field(default_factory=list)
    notice: EventType | None = None  # a notification without money moving (for instance a first decline)
    click: Click | None = None  # the click (or claim) the order is decided by: the notification's language
    fact_at: datetime | None = None  # when the fact behind the change happened (the journal's timeline)

    @property
    def decision_changed(self) -> bool:
        return self.decision_json != self.view.decision_json


def verdict_of(view: OrderView, review: Review | None) -> tuple[ReviewVerdict | None, str | None]:
    """The verdict that holds for the order: the one given now, else the one it recorded."""
    if review is not None:
        return review.verdict, review.user_id
    record = view.record
    if record is None or record.review is None:
        return None, None
    return ReviewVerdict(record.review), record.review_user


def attribution_of(view: OrderView, lines: Mapping[str, OrderLine], inputs: PlanInputs) -> Attribution:
    """Whose order it is: its clicks and recorded claims, pinned to the shopper its money was posted or released to."""
    verdict, review_user = verdict_of(view, inputs.review)
    record = view.record
    pinned = pinned_shopper(
        view.state, record.user_id if record else None, verdict.value if verdict else None, review_user
    )
    return attribute(lines, inputs.clicks, pinned_user=pinned, claims=inputs.claims)


def plan_order(
    key: str,
    view: OrderView,
    merged: Mapping[str, OrderLine],
    changed: Sequence[OrderLine],
    attribution: Attribution,
    inputs: PlanInputs,
) -> OrderPlan | None:
    """What this order should become with these lines; None when nothing would change."""
    if not merged:
        return plan_empty(key, view, inputs.now)
    config, record = inputs.config, view.record
    verdict, review_user = verdict_of(view, inputs.review)
    decision = decide_order(
        list(merged.values()),
        attribution.click,
        config,
        now=inputs.now,
        other_new_user_coupon_accounts=inputs.review_accounts,
        conflict=attribution.conflict,
    )
    decision = with_claim_step(decision, attribution.claim)
    holder = view.holder
    same_shopper = holder is None or holder == decision.user_id
    fx_rate = record.fx_rate if record is not None and holder is not None and same_shopper else decision.fx_rate
    step = next_step(
        view.state if same_shopper else None,
        view.holding if same_shopper else NOTHING,
        decision,
        merged,
        fx_rate=fx_rate,
        hold_days=config.hold_days_for(decision.partner),
        awaiting_payment_days=config.awaiting_payment_days,
        now=inputs.now,
        confirming=inputs.mode.confirming,
        review=verdict,
    )
    record_after = _order_record(key, view, merged, decision, step, fx_rate, inputs, verdict, review_user)
    decision_json = canonical(decision.to_dict())
    if not changed and same_shopper and _unchanged(view, record_after, decision_json):
        return None
    entries = _entries(key, view, decision, step, fx_rate, same_shopper)
    notice = event_of(view.state, step.state, None) if not entries and decision.user_id is not None else None
    record_after.entries = (record.entries or 0) + len(entries) if record else len(entries)
    return OrderPlan(
        key=key,
        view=view,
        record=record_after,
        decision=decision,
        decision_json=decision_json,
        step=step,
        version=(record.version or 0) + 1 if record else 1,
        all_lines=merged,
        lines=list(changed),
        entries=entries,
        notice=notice,
        click=attribution.click,
    )


_COMPARED = (
    "state",
    "pending_usd",
    "confirmed_usd",
    "pending",
    "confirmed",
    "due_at",
    "review",
    "review_user",
    "claims",
)


def _unchanged(view: OrderView, after: OrderItem, decision_json: str) -> bool:
    """Nothing a reader or the money would see differs from what is stored."""
    record = view.record
    if record is None or view.decision_json != decision_json:
        return False
    if record.lines_digest not in (None, after.lines_digest):
        return False
    return all(getattr(record, name) == getattr(after, name) for name in _COMPARED)


def _entries(
    key: str, view: OrderView, decision: OrderDecision, step: Step, fx_rate: Decimal, same_shopper: bool
) -> list[Entry]:
    """The journal entries that take the order's holding to the step's: when the shopper changes, the first
    shopper's money is voided as its own entry and the second's appears from nothing."""
    entries = []
    start = view.holding
    record = view.record
    if not same_shopper:
        assert record is not None and view.holder is not None
        entries.append(
            Entry(
                view.holder,
                record.account_currency,
                record.fx_rate,
                view.holding,
                NOTHING,
                moved(view.holding, NOTHING),
                view.state,
            )
        )
        start = NOTHING
    if step.holding != start:
        if decision.user_id is None:
            raise JournalConflict(f"order {key} would move money without a shopper")
        entries.append(
            Entry(
                decision.user_id,
                decision.account_currency,
                fx_rate,
                start,
                step.holding,
                moved(start, step.holding),
                view.state if same_shopper else None,
            )
        )
    for entry in entries:
        after_state = step.state if entry.user_id == decision.user_id else lost_state(step.state)
        entry.event = event_of(entry.state_from, after_state, entry.transition)
    return entries


def plan_empty(key: str, view: OrderView, now: datetime) -> OrderPlan | None:
    """Every line of the order moved to another order: it holds nothing any more and keeps its history (its claims
    went with its lines)."""
    if view.record is None or (view.state == OrderState.MOVED and view.holding.is_zero and not view.record.claims):
        return None
    assert view.decision_json is not None
    record = dataclasses.replace(view.record)
    entries = []
    if view.holder is not None:
        transition = moved(view.holding, NOTHING)
        entries.append(
            Entry(
                view.holder,
                record.account_currency,
                record.fx_rate,
                view.holding,
                NOTHING,
                transition,
                view.state,
                event_of(view.state, OrderState.MOVED, transition),
            )
        )
    record.entries = (record.entries or 0) + len(entries)
    record.state = OrderState.MOVED.value
    record.pending_usd = record.confirmed_usd = record.pending = record.confirmed = Decimal("0")
    record.due_at = None
    record.claims = None
    record.lines_digest = lines_digest({})
    record.decided_at = record.updated_at = utc_text(now)
    return OrderPlan(
        key=key,
        view=view,
        record=record,
        decision=OrderDecision.from_dict(json.loads(view.decision_json)),
        decision_json=view.decision_json,
        step=Step(OrderState.MOVED, NOTHING, None),
        version=(record.version or 0) + 1,
        entries=entries,
    )


def _order_record(
    key: str,
    view: OrderView,
    merged: Mapping[str, OrderLine],
    decision: OrderDecision,
    step: Step,
    fx_rate: Decimal,
    inputs: PlanInputs,
    verdict: ReviewVerdict | None,
    review_user: str | None,
) -> OrderItem:
    """The order item after the change (a copy: the view keeps what was read)."""
    before = view.record
    record = dataclasses.replace(before) if before is not None else OrderItem(key, entries=0)
    record.partner = decision.partner
    record.order_id = decision.order_id
    record.partner_order_id = _first(merged, "partner_order_id")
    record.user_id = decision.user_id
    record.sub_id = _first(merged, "sub_id") if decision.user_id is None else _sub_id_of(merged, decision)
    record.ordered_at = utc_text(min(line.ordered_at for line in merged.values()))
    record.state = step.state.value
    record.decided_at = utc_text(inputs.now)
    record.review_accounts = sorted(inputs.review_accounts) or None
    record.review = verdict.value if verdict else None
    record.review_user = review_user if verdict else None
    record.claims = claims_text(inputs.claims)
    record.account_currency = decision.account_currency
    record.fx_rate = fx_rate
    record.fx_day = decision.fx_day.isoformat() if decision.fx_day else None
    record.pending_usd, record.confirmed_usd = step.holding.pending_usd, step.holding.confirmed_usd
    record.pending, record.confirmed = step.holding.pending, step.holding.confirmed
    record.due_at = utc_text(step.due_at) if step.due_at else None
    record.lines_digest = lines_digest(merged)
    record.updated_at = utc_text(inputs.now)
    return record


def moved(before: Holding, after: Holding) -> Transition:
    """The journal transition of a move of money (an entry is only made when the holding changes)."""
    transition = transition_of(before, after)
    assert transition is not None, "no money moves"
    return transition


def lost_state(state: OrderState) -> OrderState:
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
