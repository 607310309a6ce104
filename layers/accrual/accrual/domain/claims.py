"""Missing-cashback claims (docs/claims.md, docs/rules.md "Missing cashback"): what a claim is, when it is valid, and
how it matches an order. Pure: the claims service calls these functions and records what they conclude on the order
through the ledger (a `ClaimFact`, domain/attribution.py), so every later decision and the audit use the same fact.

Lifecycle of a claim::

    open ──evidence agrees, no rival──▶ matched ──the ledger credited the claimant──▶ resolved
      │── the order is already the claimant's ─────────────────────────────────────────▲
      │── evidence missing, a rival claim, or a contest before posting ──▶ needs_review ──agent──▶ resolved | rejected
      │── the order is another shopper's (a click, or posted to another claimant) ──▶ rejected
      └── nothing matched after `escalate_after` ──▶ escalated (still searched; resolved if the order shows up)

The matching rule:

* **By order number.** The claim's number is compared with the store's (`order_id`) and the partner's
  (`partner_order_id`) number of every order; they may differ, either one matches.
* **An order number is not evidence.** An unattributed order credits a claim automatically only when the claim gives
  both an amount and an order date and both agree with the report: the order time within `window` of the claimed
  time (a bare date covers its whole day), and the claimed amount within `amount_tolerance` (relative, at least
  `amount_floor_usd`) of what the order's items cost, with or without shipping. A claim without both waits for an
  agent (`needs_review`).
* **An order already attributed** is the claimant's (the claim resolves at once) or another shopper's: a click's, or
  a claimant's whose money was posted, rejects the claim; a claimant's not yet posted is contested (the order is held
  for review, both claims wait for an agent).
* **Two claims on one unattributed order** (different shoppers): neither is credited automatically; both wait.
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

from accrual.domain.attribution import ClaimFact
from accrual.domain.decision import OrderDecision, TrailStep
from accrual.domain.models import AccrualConfig, Country, IsoCurrency, Key, OrderLine
from accrual.domain.money import ZERO, usd_from

CLAIM_CODE = "CLAIM_ATTRIBUTED"  # the trail's code for an order attributed by a claim


class ClaimState(StrEnum):
    OPEN = "open"
    MATCHED = "matched"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    NEEDS_REVIEW = "needs_review"  # waits for an agent's verdict
    REJECTED = "rejected"


SEARCHED_STATES = (ClaimState.OPEN, ClaimState.MATCHED, ClaimState.ESCALATED)  # the sweep looks at these


class RejectReason(StrEnum):
    ORDER_OF_ANOTHER_SHOPPER = "ORDER_OF_ANOTHER_SHOPPER"  # the order is credited to someone else
    UNKNOWN_SHOPPER = "UNKNOWN_SHOPPER"  # the claimant never clicked a cashback link: no account currency
    REJECTED_BY_AGENT = "REJECTED_BY_AGENT"  # an agent's verdict (its reason is recorded with it)
    ANOTHER_CLAIM_APPROVED = "ANOTHER_CLAIM_APPROVED"  # an agent gave the order to another claimant


class ReviewReason(StrEnum):
    """Why a claim waits for an agent."""

    NOT_ENOUGH_EVIDENCE = "NOT_ENOUGH_EVIDENCE"  # no amount or no order date: an order number alone is guessable
    ANOTHER_CLAIM = "ANOTHER_CLAIM"  # another shopper claims the same unattributed order
    CONTESTED = "CONTESTED"  # another shopper's claim arrived after this one credited the order, before posting


class Verdict(StrEnum):
    """What one order says about one claim."""

    MINE = "mine"  # the order is (already) the claimant's
    OTHERS = "others"  # the order is another shopper's
    MATCHES = "matches"  # unattributed, and the claim's amount and date agree with it
    NEEDS_EVIDENCE = "needs_evidence"  # unattributed, but the claim lacks its amount or its date
    CONTESTS = "contests"  # credited to another claimant, not posted, and this claim's facts agree with it
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
    reason: str | None = None  # why rejected, escalated or waiting for an agent (a code)
    verdict_reason: str | None = None  # an agent's verdict in the agent's words
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
            "verdict_reason": self.verdict_reason,
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
    claim_ids: tuple[str, ...] = ()  # the claims recorded on the order
    posted: bool = False  # its money was posted (confirmed or reversed): it never changes shopper
    by_agent: bool = False  # an agent gave the order to a claimant: another claim no longer contests it
    clicked: bool = False  # a click names the order's shopper: a claim never takes it

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
    key: str,
    lines: Mapping[str, OrderLine],
    *,
    user_id: str | None,
    state: str | None,
    config: AccrualConfig | None,
    claims: Iterable[ClaimFact] = (),
    clicked: bool = False,
) -> OrderFacts:
    ordered = [lines[line_id] for line_id in sorted(lines)]
    recorded = tuple(claims)
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
        claim_ids=tuple(fact.claim_id for fact in recorded),
        posted=state in ("confirmed", "reversed"),
        by_agent=any(fact.by_agent for fact in recorded),
        clicked=clicked,
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
        if facts.posted or facts.by_agent or facts.clicked or not facts.claim_ids:
            return Verdict.OTHERS, "the order is credited to another shopper"
        problems = evidence_problems(claim, facts, rules, config)
        if problems:
            return Verdict.MISMATCH, "; ".join(problems)
        return Verdict.CONTESTS, "the order is credited to another claimant and not posted yet"
    if facts.state == "on_review":
        if claim.claim_id in facts.claim_ids:
            return Verdict.CONTESTS, "the order is held for review between this claim and another shopper"
        return Verdict.WAITING, "the order is held for review"
    if claim.amount is None or (claim.ordered_at is None and claim.ordered_on is None):
        return Verdict.NEEDS_EVIDENCE, "unattributed order with the claim's number; the claim gives no " + (
            "amount" if claim.amount is None else "order date"
        )
    problems = evidence_problems(claim, facts, rules, config)
    if problems:
        return Verdict.MISMATCH, "; ".join(problems)
    return Verdict.MATCHES, "unattributed order with the claim's number, date and amount"


def evidence_problems(claim: Claim, facts: OrderFacts, rules: ClaimRules, config: AccrualConfig | None) -> list[str]:
    """Where the claim's date and amount disagree with the order (a fact the claim does not give is not checked)."""
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
    return problems


def amount_agrees(claimed_usd: Decimal, actual_usd: Decimal, rules: ClaimRules) -> bool:
    tolerance = max(actual_usd * rules.amount_tolerance, rules.amount_floor_usd)
    return abs(claimed_usd - actual_usd) <= tolerance


def rivals(
    claim: Claim, claims: Iterable[Claim], facts: OrderFacts, rules: ClaimRules, config: AccrualConfig | None
) -> list[Claim]:
    """Other shoppers' live claims on the same unattributed order: when there are any, nobody is credited
    automatically (an agent decides), whatever order the claims and the report arrived in."""
    unattributed = replace(facts, user_id=None)
    return [
        other
        for other in claims
        if other.user_id != claim.user_id
        and other.state != ClaimState.REJECTED
        and other.order_key in (None, facts.key)
        and judge(other, unattributed, rules, config)[0] in (Verdict.MATCHES, Verdict.NEEDS_EVIDENCE)
    ]


def fact_of(claim: Claim, *, by_agent: bool = False) -> ClaimFact:
    """The claim as the order records it."""
    currency = claim.account_currency or "USD"
    return ClaimFact(claim.claim_id, claim.user_id, claim.filed_at, currency, claim.country, by_agent)


def with_claim_step(decision: OrderDecision, claim: ClaimFact | None) -> OrderDecision:
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
    credit: str | None = None  # an unattributed order the ledger is to credit to the claimant
    contest: str | None = None  # an order credited to another claimant, to hold for review with this claim on it


def conclude(
    claim: Claim, verdicts: list[tuple[OrderFacts, Verdict, str]], *, now: datetime, rivalled: frozenset[str]
) -> Outcome:
    """Pure: from the verdicts of every order found (and the orders other shoppers' claims also name, `rivalled`),
    what happens to the claim. The claimant's own order wins over everything; a matching unattributed order nobody
    else claims is handed to the ledger; a claim that lacks evidence, has a rival or contests a credit not yet posted
    waits for an agent; another shopper's order rejects the claim; a claim nothing answered escalates in time."""
    searched = tuple(
        {"order": facts.key, "verdict": verdict.value, "why": why} for facts, verdict, why in verdicts
    ) or ({"order": "", "verdict": "none", "why": f"no order with the number {claim.order_number} was reported yet"},)
    by = {verdict: facts.key for facts, verdict, _ in reversed(verdicts)}  # the first order (by key) of each verdict
    if Verdict.MINE in by:
        return Outcome(ClaimState.RESOLVED, by[Verdict.MINE], None, searched)
    if Verdict.MATCHES in by:
        key = by[Verdict.MATCHES]
        if key in rivalled:
            return Outcome(ClaimState.NEEDS_REVIEW, key, ReviewReason.ANOTHER_CLAIM.value, searched)
        return Outcome(ClaimState.MATCHED, key, None, searched, credit=key)
    if Verdict.CONTESTS in by:
        key = by[Verdict.CONTESTS]
        return Outcome(ClaimState.NEEDS_REVIEW, key, ReviewReason.CONTESTED.value, searched, contest=key)
    if Verdict.NEEDS_EVIDENCE in by:
        key = by[Verdict.NEEDS_EVIDENCE]
        reason = ReviewReason.ANOTHER_CLAIM if key in rivalled else ReviewReason.NOT_ENOUGH_EVIDENCE
        return Outcome(ClaimState.NEEDS_REVIEW, key, reason.value, searched)
    if Verdict.OTHERS in by:
        # never takes an order (nor money) from the shopper it is credited to
        return Outcome(ClaimState.REJECTED, by[Verdict.OTHERS], RejectReason.ORDER_OF_ANOTHER_SHOPPER.value, searched)
    if claim.state == ClaimState.ESCALATED or now >= claim.escalate_at:
        return Outcome(ClaimState.ESCALATED, None, "NOT_FOUND_IN_TIME", searched)
    return Outcome(ClaimState.OPEN, None, None, searched)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days != 1 else "1 day"
