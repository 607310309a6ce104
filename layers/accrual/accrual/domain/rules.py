"""The accrual rules (docs/rules.md, "How the amount is computed" and "Exclusions"), each a small named function, composed
by `decide_order` into one `OrderDecision` with a decision trail that explains every number. The rules return values;
the trail's steps are recorded from those values by `accrual.domain.trail_steps`, and their words are in
`accrual.domain.reasons` and `accrual.domain.trail`.

Pure Python and Decimal only. The fixed choices these rules make, so that a decision can be reproduced and explained:

* **Line order.** Lines are handled sorted by `line_id`; the result never depends on the order they were passed in.
* **Base.** `amount - tax` when the partner reports `tax`; otherwise, when the ship-to country has a configured VAT
  rate, `amount / (1 + rate)`; otherwise `amount`. Shipping is a separate field and never earns. The base is converted
  to USD with the line's `usd_rate` (units of the line currency per 1 USD) and kept unrounded.
* **Rate card.** The card of the line's partner in force at the click time (`valid_from <= clicked_at < valid_to`);
  when several overlap, the one with the latest `valid_from` wins.
* **Rate.** A non-affiliate product earns exactly `non_affiliate_rate`. An affiliate product's candidates are, in this
  order: its category rate (or `default_rate`), `hot_product_rate` when it is hot, then every promotion of the partner
  in force at the click for its category, sorted by `starts_at`. The highest rate wins; on a tie the earlier candidate
  in that order wins (a promotion that only equals the category rate did not raise anything). The winner is never
  above `config.max_rate` (clamped, `RATE_LIMITED_TO_MAX`).
* **Exclusion precedence.** A line earns 0 with the first exclusion that fires, in this order: `PARTNER_INVALID`,
  `PARTNER_SETTLED_AT_ZERO`, `AWAITING_PAYMENT_EXPIRED`, `PROMO_SECTION_3_FOR_5_99`, `SHOP_EXCLUDED`, `CART_BEFORE_CLICK`, `VIRTUAL_PRODUCT`,
  `DISPUTE_OR_PRICE_ADJUSTED`, `PROMO_CODE_NOT_ALLOWED`, `NO_RATE_CARD`. The trail lists every exclusion that fired;
  the line's `exclusion` and `reasons` carry only the decisive one. An excluded line has rate 0 and no rate source.
* **Minimum and rounding.** `raw = base_usd * rate`; below `min_cashback_usd` the line earns 0 with `BELOW_MINIMUM`
  (its rate and rate source are kept, to show what was below the minimum); otherwise it is rounded half up to cents.
* **Cap.** The order's cashback is the sum of its lines' cents. Above `cap_usd` (taken down to whole cents) it becomes
  the cap, and the cap is spread over the earning lines by largest-remainder apportionment in cents: each line first
  gets `floor(cap * line / total)` cents, then the cents still missing go one each to the lines with the largest
  remainders, ties by `line_id`. The lines always add up exactly to the order's cashback and no line gets more than
  it earned before the cap. Reduced lines carry `CAP_APPLIED`.
* **Currency.** The order total (never the lines) is converted to the account currency at the fx rate of the latest
  day on or before the credit day that lists the currency; the credit day defaults to the earliest `paid_at` of the
  lines, else the earliest `ordered_at` (dates taken in UTC). A USD account uses rate 1 and no fx day. A non-USD
  account without such a rate raises `MissingFxRate`.
* **Outcome.** `UNATTRIBUTED` without a click (nothing earns; the line bases are still shown); else `ON_REVIEW` when a
  new-user coupon was used on this order by a store account other than one the same user already used a new-user
  coupon with (the amount is still computed so it can be released); else `EARNS` when the cashback is above 0; else
  `NOTHING`.
* **Commission and margin.** The order's commission is the partner's commission on its lines that earn (no
  exclusion, not below the minimum), each converted to USD with the line's own rate, summed and rounded half up to
  cents; its margin is the commission minus the cashback. With `max_cashback_share` configured, an order whose
  cashback is strictly above that share of its commission is held `ON_REVIEW` (`OVER_COMMISSION_SHARE`) with its
  amount computed, so an operator can release it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext

from accrual.domain import trail_steps as trail
from accrual.domain.decision import (
    Base,
    Code,
    LineDecision,
    MissingFxRate,
    OrderDecision,
    Outcome,
    TrailStep,
)
from accrual.domain.exclusions import (
    EXCLUSION_RULES,
    LineContext,
    exclusion_figures,
    exclusions_of,
    payment_deadline,
)
from accrual.domain.models import (
    AccrualConfig,
    Click,
    OrderLine,
)
from accrual.domain.money import CENT, floor_cents, to_account_currency, to_cents, usd_from
from accrual.domain.rates import category_rate, choose_rate, promotions_at, rate_card_at

# Re-exported: the rates and the exclusions are part of the rules' public surface (they live in rates.py and exclusions.py).
__all__ = [
    "EXCLUSION_RULES",
    "LineContext",
    "category_rate",
    "choose_rate",
    "decide_order",
    "exclusion_figures",
    "exclusions_of",
    "payment_deadline",
    "promotions_at",
    "rate_card_at",
]

ZERO = Decimal("0")
NO_CASHBACK = Decimal("0.00")
ONE = Decimal("1")
# Enough digits for any amount this job sees, fixed so a decision does not depend on the caller's decimal context.
PRECISION = 28


# --- base ------------------------------------------------------------------------------------------------------------


def line_base(line: OrderLine, config: AccrualConfig) -> Base:
    """Base = amount without VAT (reported tax, else the ship-to country's VAT rate); shipping never earns."""
    vat_rate = None
    if line.tax is not None:
        tax = line.tax
        base = line.amount - tax
    elif line.ship_to_country is not None and config.vat_rates.get(line.ship_to_country, ZERO) > 0:
        vat_rate = config.vat_rates[line.ship_to_country]
        base = line.amount / (ONE + vat_rate)
        tax = line.amount - base
    else:
        tax = ZERO
        base = line.amount
    codes = []
    if tax > 0:
        codes.append(Code.VAT_EXCLUDED)
    if line.shipping > 0:
        codes.append(Code.SHIPPING_EXCLUDED)
    usd_rate, usd_rate_day = line_usd_rate(line, config)
    return Base(
        amount=line.amount,
        tax=tax,
        vat_rate=vat_rate,
        shipping=line.shipping,
        base=base,
        base_usd=usd_from(base, line.currency, usd_rate),
        codes=tuple(codes),
        usd_rate=usd_rate,
        usd_rate_day=usd_rate_day,
    )


def line_day(line: OrderLine) -> date:
    """The day a line's own amounts are converted at: the day it was ordered (UTC)."""
    return line.ordered_at.astimezone(UTC).date()


def line_usd_rate(line: OrderLine, config: AccrualConfig) -> tuple[Decimal | None, date | None]:
    """Units of the line's currency per 1 USD: the report's own rate, else the configuration's rate of the line's
    day (the fx day used is returned; None when the report gave the rate). A line that has neither cannot be valued
    (the ingest quarantines it before it gets here)."""
    if line.currency == "USD":
        return None, None
    if line.usd_rate is not None:
        return line.usd_rate, None
    rate, fx_day = fx_rate_on(config, line.currency, line_day(line))
    return rate, fx_day


# --- minimum, cap, currency ------------------------------------------------------------------------------------------


def apply_minimum(raw: Decimal, minimum: Decimal) -> tuple[Decimal, Code | None]:
    """Below the minimum (before rounding) a line earns nothing; otherwise round half up to cents."""
    if raw < minimum:
        return NO_CASHBACK, Code.BELOW_MINIMUM
    return to_cents(raw), None


def apportion_cap(earned: Sequence[tuple[str, Decimal]], cap: Decimal) -> dict[str, Decimal]:
    """Spread `cap` over lines in proportion to what each earned (in cents), by largest remainder, ties by line_id.

    `earned` is (line_id, cents) with a total above `cap`; the shares add up exactly to `cap` (whole cents) and no
    share exceeds what the line earned.
    """
    cap_cents = int(floor_cents(cap) / CENT)
    cents = {line_id: int(amount / CENT) for line_id, amount in earned}
    total = sum(cents.values())
    shares = {line_id: cap_cents * amount // total for line_id, amount in cents.items()}
    remainders = {line_id: cap_cents * amount % total for line_id, amount in cents.items()}
    missing = cap_cents - sum(shares.values())
    for line_id in sorted(cents, key=lambda line_id: (-remainders[line_id], line_id))[:missing]:
        shares[line_id] += 1
    return {line_id: Decimal(share) * CENT for line_id, share in shares.items()}


def credit_day(lines: Sequence[OrderLine]) -> date:
    """The default credit day: the earliest payment, else the earliest order time, as a UTC date."""
    paid = [line.paid_at for line in lines if line.paid_at is not None]
    moments = paid or [line.ordered_at for line in lines]
    return min(moments).astimezone(UTC).date()


def fx_rate_on(config: AccrualConfig, currency: str, day: date) -> tuple[Decimal, date | None]:
    """Units of `currency` per 1 USD from the latest fx day on or before `day` listing it; USD is 1 with no day."""
    if currency == "USD":
        return ONE, None
    days = [fx_day for fx_day, rates in config.fx_rates.items() if fx_day <= day and currency in rates]
    if not days:
        raise MissingFxRate(
            f"no fx rate for {currency} on or before {day.isoformat()} in configuration {config.version}"
        )
    fx_day = max(days)
    return config.fx_rates[fx_day][currency], fx_day


def new_user_coupon_accounts_conflict(lines: Sequence[OrderLine], other_accounts: frozenset[str]) -> tuple[str, ...]:
    """The store accounts of this order that used a new-user coupon while the same user already used one with
    another store account."""
    return tuple(
        sorted(
            {
                line.buyer_account
                for line in lines
                if line.new_user_coupon
                and line.buyer_account is not None
                and any(account != line.buyer_account for account in other_accounts)
            }
        )
    )


# --- the decision ----------------------------------------------------------------------------------------------------


def _check_one_order(lines: Sequence[OrderLine]) -> None:
    if not lines:
        raise ValueError("decide_order needs at least one line")
    orders = {(line.partner, line.order_id) for line in lines}
    if len(orders) != 1:
        raise ValueError(f"lines of more than one order passed to decide_order: {sorted(orders)}")
    line_ids = [line.line_id for line in lines]
    if len(set(line_ids)) != len(line_ids):
        raise ValueError("a line_id appears twice: pass only the latest version of every line")


@dataclass(frozen=True)
class CapResult:
    total: Decimal  # the sum of the lines' cents
    cashback_usd: Decimal  # the order's cashback: the total, or the cap in whole cents
    shares: dict[str, Decimal]  # each earning line's share of the cap (empty when the total is within the cap)

    @property
    def applied(self) -> bool:
        return self.cashback_usd < self.total


def cap_order(earned: Sequence[tuple[str, Decimal]], cap_usd: Decimal) -> CapResult:
    """The order's cashback under the cap, and how the cap is shared among the lines that earned."""
    total = sum((cents for _, cents in earned), NO_CASHBACK)
    if total <= cap_usd:
        return CapResult(total, total, {})
    shares = apportion_cap([(line_id, cents) for line_id, cents in earned if cents > 0], cap_usd)
    return CapResult(total, floor_cents(cap_usd), shares)


@dataclass(frozen=True)
class Conversion:
    rate: Decimal  # units of the account currency per 1 USD
    day: date | None  # the fx day used (None for USD)
    cashback: Decimal  # the order's cashback in the account currency


def convert(cashback_usd: Decimal, currency: str, config: AccrualConfig, credited_on: date) -> Conversion:
    fx_rate, fx_day = fx_rate_on(config, currency, credited_on)
    return Conversion(fx_rate, fx_day, to_account_currency(cashback_usd, fx_rate))


def order_commission(works: Sequence[_LineWork]) -> Decimal:
    """The partner's commission on the lines that earn, in USD cents."""
    earning = (work for work in works if work.exclusion is None)
    total = sum((usd_from(work.line.commission, work.line.currency, work.base.usd_rate) for work in earning), ZERO)
    return to_cents(total)


def over_commission_share(cashback_usd: Decimal, commission_usd: Decimal, share: Decimal | None) -> bool:
    """The cashback is strictly above the configured share of the commission (no limit when none is set)."""
    return share is not None and cashback_usd > share * commission_usd


def order_outcome(held_for_review: bool, cashback_usd: Decimal) -> Outcome:
    if held_for_review:
        return Outcome.ON_REVIEW
    return Outcome.EARNS if cashback_usd > 0 else Outcome.NOTHING


@dataclass
class _LineWork:
    """A line's figures while the order is being decided (the cap may still change its cashback)."""

    line: OrderLine
    base: Base
    rate: Decimal = ZERO
    rate_source: str = ""
    raw: Decimal = ZERO
    cashback: Decimal = NO_CASHBACK
    exclusion: Code | None = None
    codes: tuple[Code, ...] = ()


def _decide_line(ctx: LineContext, base: Base, steps: list[TrailStep]) -> _LineWork:
    """One line: its base, then its first exclusion, or its rate and cents (or the minimum it is below)."""
    line_id = ctx.line.line_id
    work = _LineWork(line=ctx.line, base=base)
    steps.extend(trail.base(ctx.line, base))
    fired = exclusions_of(ctx)
    if fired:
        steps.extend(trail.exclusions(line_id, fired, {code: exclusion_figures(code, ctx) for code in fired}))
        work.exclusion = fired[0]
        work.codes = (fired[0],)
        return work
    assert ctx.card is not None  # no_rate_card would have fired
    choice = choose_rate(ctx.line, ctx.card, ctx.config, ctx.click.clicked_at)
    steps.extend(trail.rate(line_id, choice))
    work.rate, work.rate_source = choice.rate, choice.source
    work.raw = base.base_usd * choice.rate
    work.cashback, below = apply_minimum(work.raw, ctx.config.min_cashback_usd)
    codes = [*base.codes, *choice.codes]
    if below is not None:
        work.exclusion = below
        codes.append(below)
        steps.append(trail.below_minimum(line_id, base.base_usd, choice.rate, work.raw, ctx.config.min_cashback_usd))
    else:
        steps.append(trail.cashback(line_id, base.base_usd, choice.rate, work.raw, work.cashback))
    work.codes = tuple(codes)
    return work


def _line_decision(work: _LineWork) -> LineDecision:
    return LineDecision(
        line_id=work.line.line_id,
        status=work.line.status.value,
        base_usd=work.base.base_usd,
        rate=work.rate,
        rate_source=work.rate_source,
        raw_cashback_usd=work.raw,
        cashback_usd=work.cashback,
        exclusion=work.exclusion.value if work.exclusion is not None else None,
        reasons=tuple(sorted({code.value for code in work.codes})),
    )


def _order_decision(
    first: OrderLine,
    user_id: str | None,
    config: AccrualConfig,
    outcome: Outcome,
    cashback_usd: Decimal,
    currency: str,
    conversion: Conversion,
    commission_usd: Decimal,
    order_codes: set[Code],
    lines: tuple[LineDecision, ...],
    steps: list[TrailStep],
) -> OrderDecision:
    reasons = {code.value for code in order_codes}
    for decided in lines:
        reasons.update(decided.reasons)
    return OrderDecision(
        partner=first.partner,
        order_id=first.order_id,
        user_id=user_id,
        config_version=config.version,
        outcome=outcome,
        cashback_usd=cashback_usd,
        account_currency=currency,
        fx_rate=conversion.rate,
        fx_day=conversion.day,
        cashback=conversion.cashback,
        commission_usd=commission_usd,
        margin_usd=commission_usd - cashback_usd,
        reasons=tuple(sorted(reasons)),
        lines=lines,
        trail=tuple(steps),
    )


def _without_shopper(lines: list[OrderLine], config: AccrualConfig, conflict: tuple[str, ...]) -> OrderDecision:
    """No click names a shopper (unattributed), or the lines name several (a conflict held for review): nothing
    earns, the line bases still show what the order was worth."""
    code, outcome = (
        (Code.ATTRIBUTION_CONFLICT, Outcome.ON_REVIEW) if conflict else (Code.UNATTRIBUTED, Outcome.UNATTRIBUTED)
    )
    sub_ids = ",".join(sorted({line.sub_id for line in lines if line.sub_id}))
    steps = trail.without_shopper(config, sub_ids, conflict)
    decisions = []
    for line in lines:
        base = line_base(line, config)
        steps.extend(trail.base(line, base))
        decisions.append(_line_decision(_LineWork(line=line, base=base, exclusion=code, codes=(code,))))
    steps.append(trail.outcome(outcome, NO_CASHBACK, NO_CASHBACK, "USD"))
    return _order_decision(
        lines[0],
        None,
        config,
        outcome,
        NO_CASHBACK,
        "USD",
        Conversion(ONE, None, NO_CASHBACK),
        NO_CASHBACK,
        {code},
        tuple(decisions),
        steps,
    )


def decide_order(
    lines: Sequence[OrderLine],
    click: Click | None,
    config: AccrualConfig,
    *,
    now: datetime,
    credited_on: date | None = None,
    other_new_user_coupon_accounts: frozenset[str] = frozenset(),
    conflict: tuple[str, ...] = (),
) -> OrderDecision:
    """Decide what the shopper earns on one order (the latest version of each of its lines) and why. Without a
    click the order is unattributed, or held for review when `conflict` names the shoppers its lines disagree on
    (`accrual.domain.attribution`)."""
    _check_one_order(lines)
    ordered = sorted(lines, key=lambda line: line.line_id)
    with localcontext() as context:
        context.prec = PRECISION
        if click is None:
            return _without_shopper(ordered, config, conflict)
        return _decide_attributed(ordered, click, config, now, credited_on, other_new_user_coupon_accounts)


def _decide_attributed(
    lines: list[OrderLine],
    click: Click,
    config: AccrualConfig,
    now: datetime,
    credited_on: date | None,
    other_accounts: frozenset[str],
) -> OrderDecision:
    """The click and its rate card, the multi-account hold, each line, the cap, the currency, the outcome."""
    steps = [trail.inputs(click, config)]
    order_codes: set[Code] = set()
    card = rate_card_at(config, lines[0].partner, click.clicked_at)
    if card is not None:
        steps.append(trail.rate_card(card))
    conflicting = new_user_coupon_accounts_conflict(lines, other_accounts)
    if conflicting:
        order_codes.add(Code.MULTI_ACCOUNT_NEW_USER_COUPON)
        steps.append(trail.multi_account(conflicting, other_accounts))

    works = [
        _decide_line(
            LineContext(line=line, click=click, config=config, now=now, card=card), line_base(line, config), steps
        )
        for line in lines
    ]
    cashback_usd = _apply_cap(works, config.cap_usd, steps, order_codes)

    day = credited_on if credited_on is not None else credit_day(lines)
    conversion = convert(cashback_usd, click.account_currency, config, day)
    if click.account_currency != "USD":
        order_codes.add(Code.FX_CONVERTED)
        steps.append(
            trail.fx(cashback_usd, conversion.rate, conversion.day, day, click.account_currency, conversion.cashback)
        )

    commission_usd = order_commission(works)
    over_share = over_commission_share(cashback_usd, commission_usd, config.max_cashback_share)
    if over_share:
        assert config.max_cashback_share is not None
        order_codes.add(Code.OVER_COMMISSION_SHARE)
        steps.append(trail.commission_share(cashback_usd, commission_usd, config.max_cashback_share))

    outcome = order_outcome(bool(conflicting) or over_share, cashback_usd)
    steps.append(trail.outcome(outcome, cashback_usd, conversion.cashback, click.account_currency))
    return _order_decision(
        lines[0],
        click.user_id,
        config,
        outcome,
        cashback_usd,
        click.account_currency,
        conversion,
        commission_usd,
        order_codes,
        tuple(_line_decision(work) for work in works),
        steps,
    )


def _apply_cap(works: list[_LineWork], cap_usd: Decimal, steps: list[TrailStep], order_codes: set[Code]) -> Decimal:
    """The order's cashback under the cap; the lines' cents become their shares of it."""
    capped = cap_order([(work.line.line_id, work.cashback) for work in works], cap_usd)
    steps.append(trail.total(capped.total))
    if not capped.applied:
        return capped.total
    order_codes.add(Code.CAP_APPLIED)
    steps.append(trail.cap(capped.total, cap_usd, capped.cashback_usd))
    for work in works:
        if work.line.line_id not in capped.shares:
            continue
        before, after = work.cashback, capped.shares[work.line.line_id]
        steps.append(trail.cap_share(work.line.line_id, before, after))
        work.cashback = after
        if after < before:
            work.codes = (*work.codes, Code.CAP_APPLIED)
    return capped.cashback_usd
