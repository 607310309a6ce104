"""The lifecycle of one order's cashback (docs/rules.md, "Lifecycle"), as pure functions.

The state an order should be in is computed from its lines (the latest status of each, by `status_at`), the rules'
decision and the time, never from the order in which report lines arrived: that is what makes the ledger
convergent. Only money that has been posted is sticky: a confirmed order moves only by a reversal (claw-back), and a
reversed order does not move again. Everything else is recomputed from the lines each time the order is touched.

What an order contributes to its shopper's balances is its `Holding`; the ledger moves money by the difference
between the holding it has and the holding the lifecycle asks for, as one journal entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from accrual.domain.decision import OrderDecision, Outcome
from accrual.domain.models import LineStatus, OrderLine
from accrual.domain.money import ZERO, to_account_currency


class OrderState(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PENDING = "pending"
    ON_REVIEW = "on_review"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    REVERSED = "reversed"
    UNATTRIBUTED = "unattributed"
    MOVED = "moved"  # every line of the order now belongs to another order (the partner renumbered it)


class ReviewVerdict(StrEnum):
    """An operator's decision on an order held for review (MULTI_ACCOUNT_NEW_USER_COUPON)."""

    RELEASED = "released"  # the order earns as if it had not been held
    DECLINED = "declined"  # the order earns nothing; the hold's reason stays its reason


class Transition(StrEnum):
    """Kinds of journal entry, in TigerBeetle's words: a pending amount is posted or voided exactly once."""

    PENDING = "pending"  # a pending amount appears
    ADJUST = "adjust"  # the pending amount changes (amount or rate changed)
    POST = "post"  # pending → confirmed
    VOID = "void"  # pending → nothing (declined, held for review, unattributed)
    REVERSE = "reverse"  # confirmed → clawed back


class EventType(StrEnum):
    PENDING = "cashback.pending"
    UPDATED = "cashback.updated"
    CONFIRMED = "cashback.confirmed"
    DECLINED = "cashback.declined"
    REVERSED = "cashback.reversed"


PAST_PAYMENT = frozenset({LineStatus.PAID, LineStatus.RECEIVED, LineStatus.SETTLED})


@dataclass(frozen=True)
class Holding:
    """What one order contributes to its shopper's balances, in USD and in the account currency."""

    pending_usd: Decimal = ZERO
    confirmed_usd: Decimal = ZERO
    pending: Decimal = ZERO
    confirmed: Decimal = ZERO

    def minus(self, other: Holding) -> Holding:
        return Holding(
            self.pending_usd - other.pending_usd,
            self.confirmed_usd - other.confirmed_usd,
            self.pending - other.pending,
            self.confirmed - other.confirmed,
        )

    def plus(self, other: Holding) -> Holding:
        return Holding(
            self.pending_usd + other.pending_usd,
            self.confirmed_usd + other.confirmed_usd,
            self.pending + other.pending,
            self.confirmed + other.confirmed,
        )

    @property
    def is_zero(self) -> bool:
        return not (self.pending_usd or self.confirmed_usd or self.pending or self.confirmed)


NOTHING = Holding()


@dataclass(frozen=True)
class Step:
    """Where an order goes next. `refused` names a change that is not allowed (recorded, not applied)."""

    state: OrderState
    holding: Holding
    due_at: datetime | None  # when the confirmation cycle must look at the order again
    refused: str | None = None


def latest_lines(
    stored: Mapping[str, OrderLine], incoming: Sequence[OrderLine]
) -> tuple[dict[str, OrderLine], list[OrderLine], list[OrderLine]]:
    """Merge incoming report lines into the stored ones: the newer `status_at` wins; an older one changes nothing.

    Two different versions with the same `status_at` are ordered by their canonical JSON so that any arrival order
    ends with the same line. Returns (merged, changed, stale) where `changed` are the versions to store.
    """
    merged = dict(stored)
    changed: dict[str, OrderLine] = {}
    stale: list[OrderLine] = []
    for line in incoming:
        current = merged.get(line.line_id)
        if current is None or _newer(line, current):
            merged[line.line_id] = line
            changed[line.line_id] = line
        elif line != current:
            stale.append(line)
    return merged, list(changed.values()), stale


def _newer(candidate: OrderLine, current: OrderLine) -> bool:
    if candidate.status_at != current.status_at:
        return candidate.status_at > current.status_at
    return candidate.model_dump_json() > current.model_dump_json()


def earning_holding(decision: OrderDecision, lines: Mapping[str, OrderLine], fx_rate: Decimal) -> Holding:
    """The pending holding the decision asks for: the shares of lines that are past payment (a line still awaiting
    payment earns nothing yet)."""
    usd = sum((share.cashback_usd for share in decision.lines if lines[share.line_id].status in PAST_PAYMENT), ZERO)
    return Holding(pending_usd=usd, pending=to_account_currency(usd, fx_rate))


def settle_time(decision: OrderDecision, lines: Mapping[str, OrderLine], hold_days: int) -> datetime | None:
    """When the order may be confirmed: every earning line settled by the partner, plus the partner's hold."""
    earning = [lines[share.line_id] for share in decision.lines if share.cashback_usd > 0]
    if not earning or any(line.status != LineStatus.SETTLED for line in earning):
        return None
    return max(line.settled_at or line.status_at for line in earning) + timedelta(days=hold_days)


def next_step(
    current: OrderState | None,
    held: Holding,
    decision: OrderDecision,
    lines: Mapping[str, OrderLine],
    *,
    fx_rate: Decimal,
    hold_days: int,
    awaiting_payment_days: int,
    now: datetime,
    confirming: bool,
    review: ReviewVerdict | None = None,
) -> Step:
    """The state and holding an order should have now. `confirming` is True in the scheduled confirmation cycle,
    the only place where pending money is posted; `review` is the verdict on an order held for review."""
    if current == OrderState.REVERSED:
        return Step(
            current, held, None, refused=None if held.is_zero and decision.cashback_usd == 0 else "reversed is final"
        )
    if current == OrderState.CONFIRMED:
        return _after_confirmation(held, decision, lines, fx_rate)

    if decision.outcome == Outcome.UNATTRIBUTED:
        return Step(OrderState.UNATTRIBUTED, NOTHING, None)
    if decision.outcome == Outcome.ON_REVIEW and review != ReviewVerdict.RELEASED:
        held_state = OrderState.DECLINED if review == ReviewVerdict.DECLINED else OrderState.ON_REVIEW
        return Step(held_state, NOTHING, None)
    if decision.outcome == Outcome.NOTHING or decision.cashback_usd == 0:
        return Step(OrderState.DECLINED, NOTHING, None)

    pending = earning_holding(decision, lines, fx_rate)
    if pending.pending_usd == 0:
        # every earning line still awaits payment: look again when the wait expires
        first_order = min(lines[share.line_id].ordered_at for share in decision.lines if share.cashback_usd > 0)
        return Step(
            OrderState.AWAITING_PAYMENT, NOTHING, first_order + timedelta(days=awaiting_payment_days, microseconds=1)
        )
    settles_at = settle_time(decision, lines, hold_days)
    if confirming and settles_at is not None and settles_at <= now:
        return Step(OrderState.CONFIRMED, Holding(confirmed_usd=pending.pending_usd, confirmed=pending.pending), None)
    # a sub-order still awaiting payment must be looked at again when its wait expires, or the order never settles
    unpaid = [
        lines[share.line_id].ordered_at + timedelta(days=awaiting_payment_days, microseconds=1)
        for share in decision.lines
        if share.cashback_usd > 0 and lines[share.line_id].status == LineStatus.AWAITING_PAYMENT
    ]
    due = [moment for moment in (settles_at, *unpaid) if moment is not None]
    return Step(OrderState.PENDING, pending, min(due) if due else None)


def _after_confirmation(
    held: Holding, decision: OrderDecision, lines: Mapping[str, OrderLine], fx_rate: Decimal
) -> Step:
    """Confirmed money only goes down: a refund, dispute or chargeback claws back what the lines no longer earn. A hold
    for review (the decision's amount is computed, a person decides) never claws back money already confirmed."""
    held_amount = decision.outcome in (Outcome.EARNS, Outcome.ON_REVIEW)
    still_earned = decision.cashback_usd if held_amount else ZERO
    if still_earned >= held.confirmed_usd:
        refused = None
        if still_earned > held.confirmed_usd:
            refused = "confirmed amount does not grow"
        elif any(lines[share.line_id].status != LineStatus.SETTLED for share in decision.lines if share.cashback_usd):
            refused = "confirmed does not go back to pending"
        return Step(OrderState.CONFIRMED, held, None, refused=refused)
    if still_earned == 0:
        return Step(OrderState.REVERSED, NOTHING, None)
    return Step(
        OrderState.CONFIRMED,
        Holding(confirmed_usd=still_earned, confirmed=to_account_currency(still_earned, fx_rate)),
        None,
    )


def transition_of(before: Holding, after: Holding) -> Transition | None:
    """The journal entry kind that takes `before` to `after` (None when no money moves)."""
    if before == after:
        return None
    if after.confirmed_usd < before.confirmed_usd:
        return Transition.REVERSE
    if after.confirmed_usd > before.confirmed_usd:
        return Transition.POST
    if after.pending_usd == 0 and after.pending == 0:
        return Transition.VOID
    if before.pending_usd == 0 and before.pending == 0:
        return Transition.PENDING
    return Transition.ADJUST


def event_of(before: OrderState | None, after: OrderState, moved: Transition | None) -> EventType | None:
    """The notification a shopper gets for this change, if any. Every move of money is announced, including one
    that takes money away without a decision the shopper would call a decline (back to awaiting payment, held
    for review, moved to another order)."""
    if moved is None and (
        after in (OrderState.UNATTRIBUTED, OrderState.AWAITING_PAYMENT, OrderState.MOVED) or before == after
    ):
        return None
    if after == OrderState.CONFIRMED and moved == Transition.POST:
        return EventType.CONFIRMED
    if after == OrderState.REVERSED or moved == Transition.REVERSE:
        return EventType.REVERSED
    if after == OrderState.DECLINED:
        return EventType.DECLINED
    if after == OrderState.PENDING and before in (
        None,
        OrderState.AWAITING_PAYMENT,
        OrderState.DECLINED,
        OrderState.UNATTRIBUTED,
        OrderState.ON_REVIEW,
    ):
        return EventType.PENDING
    return EventType.UPDATED


PROMISED_PENDING_LAG = timedelta(days=5)


def later_than_promised(lines: Mapping[str, OrderLine], now: datetime) -> bool:
    """The service promises pending within 5 days of the order; later ones are counted (a metric with an alarm)."""
    return now - min(line.ordered_at for line in lines.values()) > PROMISED_PENDING_LAG
