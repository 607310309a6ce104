"""Missing-cashback claims (docs/rules.md, "Missing cashback"): what a claim is, when it is valid, and how it matches an
order. Pure: the claims service and the ledger's claim hook both call these functions, so the audit recomputes the
same attribution the ledger decided.

Lifecycle of a claim::

    open ──order found, not yet credited──▶ matched ──the ledger credited the claimant──▶ resolved
      │  ╲                                                                                  ▲
      │   ╲── the order is already the claimant's ──────────────────────────────────────────┘
      │── the order is another shopper's ──▶ rejected
      └── nothing matched after `escalate_after` ──▶ escalated (still searched; resolved if the order shows up)

The matching rule:

* **By order number.** The claim's number is compared with the store's (`order_id`) and the partner's
  (`partner_order_id`) number of every order; they may differ, either one matches.
* **An order already attributed** (by a click, or by an earlier claim) is the claimant's (the claim resolves at once)
  or another shopper's (the claim is rejected: it never takes an order, nor money, from that shopper).
* **An unattributed order** (no click matches its tracking value) matches only when the claim's facts agree with the
  order's: the order time within `window` of the claimed time (a bare date covers its whole day), and the claimed
  amount within `amount_tolerance` (relative, at least `amount_floor_usd`) of what the order's items cost, with or
  without shipping. The tolerance is for currency conversion: the shopper sees the price converted by a bank or by
  the store at a rate that is not the configuration's. A fact the claim does not give is not checked.
* **Several claims for one unattributed order** (different shoppers): the earliest filed wins, then the smallest
  claim id, so the answer never depends on the order in which claims and lines arrive.
* **A matched claim attributes the order as a click made at the order's `ordered_at`** (the rate cards and
  promotions in force then), with the claimant's account currency and country; the decision trail gets a `claim` step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator, model_validator

from accrual.domain.decision import OrderDecision, TrailStep
from accrual.domain.models import AccrualConfig, Click, Country, IsoCurrency, Key, OrderLine
from accrual.domain.money import ZERO, usd_from

CLAIM_SUB_ID_PREFIX = "claim:"  # the synthetic click of a claim carries this sub-id: never a real tracking value
CLAIM_CODE = "CLAIM_ATTRIBUTED"  # the trail's code for an order attributed by a claim


class ClaimState(StrEnum):
    OPEN = "open"
    MATCHED = "matched"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    REJECTED = "rejected"


SEARCHED_STATES = (ClaimState.OPEN, ClaimState.MATCHED, ClaimState.ESCALATED)  # the sweep looks at these


class RejectReason(StrEnum):
    ORDER_OF_ANOTHER_SHOPPER = "ORDER_OF_ANOTHER_SHOPPER"  # the order is credited to someone else
    UNKNOWN_SHOPPER = "UNKNOWN_SHOPPER"  # the claimant never clicked a cashback link: no account currency


class Verdict(StrEnum):
    """What one order says about one claim."""

    MINE = "mine"  # the order is (already) the claimant's
    OTHERS = "others"  # the order is another shopper's
    MATCHES = "matches"  # unattributed, and the claim's facts agree with it
    MISMATCH = "mismatch"  # unattributed, but the time or the amount disagree
    WAITING = "waiting"  # held for review, or its lines left it: nothing to decide now
    NOT_THIS = "not_this"  # another order number


# ---- configuration -----------------------------------------------------------------------------------------------
DEFAULT_REPORT_DELAY = timedelta(days=5)  # how late a partner's report can name an order (the pulls' overlap)
ESCALATION_MARGIN = timedelta(days=7)


@dataclass(frozen=True)
class ClaimRules:
    window: timedelta = timedelta(days=2)  # order time vs. claimed time: time zones, a date typed from memory
    amount_tolerance: Decimal = Decimal("0.05")  # relative: bank and store conversion rates differ by a few %
    amount_floor_usd: Decimal = Decimal("0.50")  # absolute minimum of the tolerance, for small orders
    report_delay: timedelta = DEFAULT_REPORT_DELAY
    escalate_after: timedelta | None = None  # default: report_delay + 7 days

    @property
    def escalation_delay(self) -> timedelta:
        return self.escalate_after if self.escalate_after is not None else self.report_delay + ESCALATION_MARGIN


# ---- the claim ---------------------------------------------------------------------------------------------------
def _positive_amount(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0 or value > 1_000_000:
        raise ValueError(f"amount {value} is not a positive amount up to 1,000,000")
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ValueError(f"amount {value} has more than 6 decimal places")
    return value


ClaimAmount = Annotated[Decimal, AfterValidator(_positive_amount)]


class ClaimRequest(BaseModel):
    """What a shopper (through the site) or an operator files: the shopper, the order number as the shopper knows it,
    and optionally when it was placed and what it cost. `ordered_at` is a time with a zone or a bare date."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    user_id: Key
    order_number: Key
    ordered_at: datetime | date | None = None
    amount: ClaimAmount | None = None
    currency: IsoCurrency | None = None
    country: Country | None = None

    @field_validator("ordered_at", mode="before")
    @classmethod
    def _bare_date(cls, value: object) -> object:
        """ "2026-11-03" is a day, not midnight UTC of it (pydantic would read it as a naive datetime)."""
        if isinstance(value, str) and len(value.strip()) == 10:
            return date.fromisoformat(value.strip())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClaimRequest:
        if (self.amount is None) != (self.currency is None):
            raise ValueError("amount and currency go together: give both or neither")
        if isinstance(self.ordered_at, datetime):
            if self.ordered_at.tzinfo is None:
                raise ValueError("ordered_at needs a time zone (or give a bare date)")
            if not 2000 <= self.ordered_at.year <= 2100:
                raise ValueError(f"ordered_at {self.ordered_at.isoformat()} is outside the years 2000..2100")
        elif isinstance(self.ordered_at, date) and not 2000 <= self.ordered_at.year <= 2100:
            raise ValueError(f"ordered_at {self.ordered_at.isoformat()} is outside the years 2000..2100")
        return self


def claim_id_of(user_id: str, order_number: str) -> str:
    """One claim per shopper and order number: filing it again (a double click, a redelivered message) finds it."""
    return "clm_" + hashlib.sha256(f"{user_id}\n{order_number}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Claim:
    claim_id: str
    user_id: str
    order_number: str
    filed_at: datetime
    escalate_at: datetime
    state: ClaimState = ClaimState.OPEN
    ordered_at: datetime | None = None
    ordered_on: date | None = None  # a bare date when the shopper gave no time
    amount: Decimal | None = None
    currency: str | None = None
    country: str | None = None
    account_currency: str | None = None
    order_key: str | None = None  # the order it matched or resolved to
    reason: str | None = None  # why rejected or escalated
    searched: tuple[dict[str, str], ...] = ()  # what the last search looked at and why nothing matched
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "claim_id": self.claim_id,
            "user_id": self.user_id,
            "order_number": self.order_number,
            "state": self.state.value,
            "filed_at": _iso(self.filed_at),
            "escalate_at": _iso(self.escalate_at),
            "ordered_at": _iso(self.ordered_at)
            if self.ordered_at
            else (self.ordered_on.isoformat() if self.ordered_on else None),
            "amount": str(self.amount) if self.amount is not None else None,
            "currency": self.currency,
            "country": self.country,
            "account_currency": self.account_currency,
            "order_key": self.order_key,
            "reason": self.reason,
            "searched": [dict(item) for item in self.searched],
            "updated_at": _iso(self.updated_at) if self.updated_at else None,
        }


def new_claim(request: ClaimRequest, *, now: datetime, rules: ClaimRules, account_currency: str | None) -> Claim:
    """A new claim: open, or rejected at once when the shopper has no account (never clicked a cashback link)."""
    ordered_at = request.ordered_at if isinstance(request.ordered_at, datetime) else None
    ordered_on = request.ordered_at if isinstance(request.ordered_at, date) and ordered_at is None else None
    claim = Claim(
        claim_id=claim_id_of(request.user_id, request.order_number),
        user_id=request.user_id,
        order_number=request.order_number,
        filed_at=now,
        escalate_at=now + rules.escalation_delay,
        ordered_at=ordered_at.astimezone(UTC) if ordered_at else None,
        ordered_on=ordered_on,
        amount=request.amount,
        currency=request.currency,
        country=request.country,
        account_currency=account_currency,
        updated_at=now,
    )
    if account_currency is None:
        return replace(claim, state=ClaimState.REJECTED, reason=RejectReason.UNKNOWN_SHOPPER.value)
    return claim


# ---- the order as a claim sees it ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderFacts:
    key: str
    partner: str
    order_id: str
    partner_order_ids: tuple[str, ...]
    user_id: str | None  # the shopper the order is attributed to (None: unattributed or in conflict)
    state: str | None
    ordered_at: datetime
    items_usd: Decimal | None  # what the items cost (None: a currency without a rate)
    total_usd: Decimal | None  # items and shipping

    def numbers(self) -> tuple[str, ...]:
        return (self.order_id, *self.partner_order_ids)


def _usd_rate(line: OrderLine, config: AccrualConfig | None) -> Decimal | None:
    if line.currency == "USD":
        return Decimal(1)
    if line.usd_rate is not None:
        return line.usd_rate
    if config is None:
        return None
    return fx_on(config, line.currency, line.ordered_at.date())


def fx_on(config: AccrualConfig, currency: str, day: date) -> Decimal | None:
    """Units of `currency` per USD of the latest configured day on or before `day` (None: no rate)."""
    if currency == "USD":
        return Decimal(1)
    best = None
    for rate_day, rates in sorted(config.fx_rates.items()):
        if rate_day <= day and currency in rates:
            best = rates[currency]
    return best


def order_facts(
    key: str, lines: Mapping[str, OrderLine], *, user_id: str | None, state: str | None, config: AccrualConfig | None
) -> OrderFacts:
    ordered = [lines[line_id] for line_id in sorted(lines)]
    first = ordered[0]
    items, total = ZERO, ZERO
    convertible = True
    for line in ordered:
        rate = _usd_rate(line, config)
        if rate is None:
            convertible = False
            continue
        items += usd_from(line.amount, line.currency, rate)
        total += usd_from(line.amount + line.shipping, line.currency, rate)
    return OrderFacts(
        key=key,
        partner=first.partner,
        order_id=first.order_id,
        partner_order_ids=tuple(sorted({line.partner_order_id for line in ordered if line.partner_order_id})),
        user_id=user_id,
        state=state,
        ordered_at=min(line.ordered_at for line in ordered),
        items_usd=items if convertible else None,
        total_usd=total if convertible else None,
    )


def judge(claim: Claim, facts: OrderFacts, rules: ClaimRules, config: AccrualConfig | None) -> tuple[Verdict, str]:
    """What this order says about this claim, and why in a few words (kept in the claim's `searched`)."""
    if claim.order_number not in facts.numbers():
        return Verdict.NOT_THIS, "another order number"
    if facts.state == "moved":
        return Verdict.WAITING, "the order's lines moved to another order"
    if facts.user_id == claim.user_id:
        return Verdict.MINE, "the order is credited to the claimant"
    if facts.user_id is not None:
        return Verdict.OTHERS, "the order is credited to another shopper"
    if facts.state == "on_review":
        return Verdict.WAITING, "the order is held for review"
    problems = []
    if claim.ordered_at is not None or claim.ordered_on is not None:
        if claim.ordered_at is not None:
            start, end = claim.ordered_at - rules.window, claim.ordered_at + rules.window
        else:
            day = datetime.combine(claim.ordered_on, time(0), tzinfo=UTC)  # type: ignore[arg-type]
            start, end = day - rules.window, day + timedelta(days=1) + rules.window
        if not start <= facts.ordered_at <= end:
            problems.append(f"ordered at {_iso(facts.ordered_at)}, not within {_days(rules.window)} of the claim")
    if claim.amount is not None and claim.currency is not None:
        rate = (
            fx_on(config, claim.currency, facts.ordered_at.date())
            if config is not None
            else (Decimal(1) if claim.currency == "USD" else None)
        )
        if rate is None:
            problems.append(f"no exchange rate for {claim.currency} to compare the amount")
        elif facts.items_usd is None or facts.total_usd is None:
            problems.append("the order's amount cannot be converted to USD")
        else:
            claimed = usd_from(claim.amount, claim.currency, rate)
            if not any(amount_agrees(claimed, actual, rules) for actual in (facts.items_usd, facts.total_usd)):
                problems.append(
                    f"the order's amount {facts.items_usd:.2f} USD ({facts.total_usd:.2f} with shipping)"
                    f" differs from the claimed {claimed:.2f} USD by more than the tolerance"
                )
    if problems:
        return Verdict.MISMATCH, "; ".join(problems)
    return Verdict.MATCHES, "unattributed order with the claim's number" + (
        ", time and amount" if claim.amount is not None else ""
    )


def amount_agrees(claimed_usd: Decimal, actual_usd: Decimal, rules: ClaimRules) -> bool:
    tolerance = max(actual_usd * rules.amount_tolerance, rules.amount_floor_usd)
    return abs(claimed_usd - actual_usd) <= tolerance


def claimant(
    claims: Iterable[Claim], facts: OrderFacts, rules: ClaimRules, config: AccrualConfig | None
) -> Claim | None:
    """The claim that attributes an unattributed order: among claims naming one of its numbers, not rejected, not
    resolved to another order, whose facts agree with it, the earliest filed (then the smallest id)."""
    candidates = [
        claim
        for claim in claims
        if claim.state != ClaimState.REJECTED
        and claim.order_key in (None, facts.key)
        and judge(claim, replace(facts, user_id=None), rules, config)[0] == Verdict.MATCHES
    ]
    candidates.sort(key=lambda claim: (claim.filed_at, claim.claim_id))
    return candidates[0] if candidates else None


def claim_click(claim: Claim, facts: OrderFacts) -> Click:
    """The click a matched claim stands for: made at the order's time, by the claimant, in the claimant's currency."""
    return Click(
        sub_id=f"{CLAIM_SUB_ID_PREFIX}{claim.claim_id}",
        user_id=claim.user_id,
        clicked_at=facts.ordered_at,
        partner=facts.partner,
        account_currency=claim.account_currency or "USD",
        country=claim.country,
    )


def with_claim_step(decision: OrderDecision, claim: Claim | None) -> OrderDecision:
    """The decision with a `claim` step after its inputs, saying the attribution came from a claim (no-op without)."""
    if claim is None:
        return decision
    step = TrailStep(
        rule="claim",
        code=CLAIM_CODE,
        line_id=None,
        numbers={"claim_id": claim.claim_id, "user_id": claim.user_id, "filed_at": _iso(claim.filed_at)},
        note="attributed by a missing-cashback claim, as if the click was made when the order was placed",
    )
    trail = list(decision.trail)
    at = next((index + 1 for index, item in enumerate(trail) if item.rule == "inputs"), 0)
    trail.insert(at, step)
    return decision.model_copy(update={"trail": tuple(trail)})


_CLAIM_NOTE = {
    "en": "The order was attributed by the missing-cashback claim {claim_id} of {user_id} (filed {filed_at}), as if"
    " the click had been made when the order was placed.",
    "ru": "Заказ отнесён к покупателю {user_id} по заявке на потерянный кэшбэк {claim_id} (подана {filed_at}), как"
    " если бы переход был сделан в момент заказа.",
}


def claim_note(decision: OrderDecision, lang: str = "en") -> str:
    """The explanation's sentence about a claim that attributed the order ("" when none did)."""
    for step in decision.trail:
        if step.rule == "claim":
            return "\n" + _CLAIM_NOTE.get(lang, _CLAIM_NOTE["en"]).format(**step.numbers)
    return ""


# ---- what a search concluded -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """The next state of a claim after looking at the orders its number finds."""

    state: ClaimState
    order_key: str | None = None
    reason: str | None = None
    searched: tuple[dict[str, str], ...] = field(default_factory=tuple)
    redecide: str | None = None  # an unattributed order the ledger should decide again with this claim


def conclude(claim: Claim, verdicts: list[tuple[OrderFacts, Verdict, str]], *, now: datetime) -> Outcome:
    """Pure: from the verdicts of every order found, what happens to the claim. The claimant's own order wins over
    everything, a matching unattributed order is handed to the ledger, another shopper's order rejects the claim,
    and a claim nothing answered escalates once its time has come."""
    searched = tuple(
        {"order": facts.key, "verdict": verdict.value, "why": why} for facts, verdict, why in verdicts
    ) or ({"order": "", "verdict": "none", "why": f"no order with the number {claim.order_number} was reported yet"},)
    by = {verdict: facts for facts, verdict, _ in reversed(verdicts)}  # the first order (by key) of each verdict
    if Verdict.MINE in by:
        return Outcome(ClaimState.RESOLVED, by[Verdict.MINE].key, None, searched)
    if Verdict.MATCHES in by:
        return Outcome(ClaimState.MATCHED, by[Verdict.MATCHES].key, None, searched, redecide=by[Verdict.MATCHES].key)
    if Verdict.OTHERS in by:
        # never takes an order (nor money) from the shopper it is credited to; a matched claim whose order went to
        # an earlier claim or a click meanwhile ends the same way
        return Outcome(
            ClaimState.REJECTED, by[Verdict.OTHERS].key, RejectReason.ORDER_OF_ANOTHER_SHOPPER.value, searched
        )
    if claim.state == ClaimState.ESCALATED or now >= claim.escalate_at:
        return Outcome(ClaimState.ESCALATED, None, "NOT_FOUND_IN_TIME", searched)
    return Outcome(ClaimState.OPEN, None, None, searched)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days != 1 else "1 day"
