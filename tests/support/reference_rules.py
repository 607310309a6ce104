"""The accrual rules and decision records exactly as they were before the typed-records refactor, kept verbatim as
the reference the refactored `accrual.domain.rules` is compared with (same money, same stored JSON, same trail).
Frozen: do not change this file when the rules change on purpose; delete it instead."""
# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    EARNS = "earns"  # at least one line earns cashback (possibly capped)
    NOTHING = "nothing"  # every line is excluded or below the minimum: cashback 0 with reason codes
    ON_REVIEW = "on_review"  # held for a decision (MULTI_ACCOUNT_NEW_USER_COUPON, ATTRIBUTION_CONFLICT)
    UNATTRIBUTED = "unattributed"  # no click matches the sub_id: kept for a missing-cashback claim


class Code(StrEnum):
    """Reason codes. Exclusions make a line earn 0; informational codes explain an amount that still earns."""

    # exclusions (docs/rules.md)
    PROMO_SECTION_3_FOR_5_99 = "PROMO_SECTION_3_FOR_5_99"
    SHOP_EXCLUDED = "SHOP_EXCLUDED"
    CART_BEFORE_CLICK = "CART_BEFORE_CLICK"
    AWAITING_PAYMENT_EXPIRED = "AWAITING_PAYMENT_EXPIRED"
    VIRTUAL_PRODUCT = "VIRTUAL_PRODUCT"
    DISPUTE_OR_PRICE_ADJUSTED = "DISPUTE_OR_PRICE_ADJUSTED"
    PROMO_CODE_NOT_ALLOWED = "PROMO_CODE_NOT_ALLOWED"
    MULTI_ACCOUNT_NEW_USER_COUPON = "MULTI_ACCOUNT_NEW_USER_COUPON"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    UNATTRIBUTED = "UNATTRIBUTED"
    ATTRIBUTION_CONFLICT = "ATTRIBUTION_CONFLICT"
    # exclusions this job adds: the partner itself invalidated the line; no rate card covers the click
    PARTNER_INVALID = "PARTNER_INVALID"
    PARTNER_SETTLED_AT_ZERO = "PARTNER_SETTLED_AT_ZERO"
    NO_RATE_CARD = "NO_RATE_CARD"
    # informational
    NON_AFFILIATE_RATE = "NON_AFFILIATE_RATE"
    HOT_PRODUCT_RATE = "HOT_PRODUCT_RATE"
    PROMO_RATE_AT_CLICK = "PROMO_RATE_AT_CLICK"
    VAT_EXCLUDED = "VAT_EXCLUDED"
    SHIPPING_EXCLUDED = "SHIPPING_EXCLUDED"
    CAP_APPLIED = "CAP_APPLIED"
    FX_CONVERTED = "FX_CONVERTED"
    RATE_LIMITED_TO_MAX = "RATE_LIMITED_TO_MAX"


EXCLUSIONS = frozenset(
    {
        Code.PROMO_SECTION_3_FOR_5_99,
        Code.SHOP_EXCLUDED,
        Code.CART_BEFORE_CLICK,
        Code.AWAITING_PAYMENT_EXPIRED,
        Code.VIRTUAL_PRODUCT,
        Code.DISPUTE_OR_PRICE_ADJUSTED,
        Code.PROMO_CODE_NOT_ALLOWED,
        Code.BELOW_MINIMUM,
        Code.UNATTRIBUTED,
        Code.ATTRIBUTION_CONFLICT,
        Code.PARTNER_INVALID,
        Code.PARTNER_SETTLED_AT_ZERO,
        Code.NO_RATE_CARD,
    }
)


class MissingFxRate(ValueError):
    """No fx rate on or before the credit day for the account currency: the order cannot be valued yet."""


@dataclass(frozen=True)
class TrailStep:
    """One rule that was applied: its name, the code it produced (if any), the line it concerns (None for the
    order), the numbers it used or produced as decimal strings, and a short plain-English statement."""

    rule: str
    code: str | None
    line_id: str | None
    numbers: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class LineDecision:
    line_id: str
    status: str
    base_usd: Decimal  # what the shopper paid for the items, without shipping and VAT, in USD (unrounded)
    rate: Decimal  # the rate applied (0 when excluded)
    rate_source: str  # "category:<id>", "default", "non_affiliate", "hot", "promotion:<starts_at>", "" if excluded
    raw_cashback_usd: Decimal  # base_usd * rate, before the minimum, rounding and the cap
    cashback_usd: Decimal  # the line's share of the order's cashback, in cents
    exclusion: str | None  # the exclusion code that makes the line earn 0, if any
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class OrderDecision:
    partner: str
    order_id: str
    user_id: str | None
    config_version: str
    outcome: Outcome
    cashback_usd: Decimal
    account_currency: str
    fx_rate: Decimal  # units of the account currency per 1 USD (1 for USD)
    fx_day: date | None  # the day of the fx table used (None for USD)
    cashback: Decimal  # in the account currency, rounded half up to 2 decimals
    reasons: tuple[str, ...]  # every code, sorted, unique
    lines: tuple[LineDecision, ...]
    trail: tuple[TrailStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OrderDecision":
        return cls(
            partner=data["partner"],
            order_id=data["order_id"],
            user_id=data.get("user_id"),
            config_version=data["config_version"],
            outcome=Outcome(data["outcome"]),
            cashback_usd=Decimal(data["cashback_usd"]),
            account_currency=data["account_currency"],
            fx_rate=Decimal(data["fx_rate"]),
            fx_day=date.fromisoformat(data["fx_day"]) if data.get("fx_day") else None,
            cashback=Decimal(data["cashback"]),
            reasons=tuple(data["reasons"]),
            lines=tuple(
                LineDecision(
                    line_id=line["line_id"],
                    status=line["status"],
                    base_usd=Decimal(line["base_usd"]),
                    rate=Decimal(line["rate"]),
                    rate_source=line["rate_source"],
                    raw_cashback_usd=Decimal(line["raw_cashback_usd"]),
                    cashback_usd=Decimal(line["cashback_usd"]),
                    exclusion=line.get("exclusion"),
                    reasons=tuple(line["reasons"]),
                )
                for line in data["lines"]
            ),
            trail=tuple(TrailStep(**step) for step in data["trail"]),
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value

# ---- rules ----
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext

from accrual.domain.models import (
    AccrualConfig,
    Click,
    LineStatus,
    OrderLine,
    PromoCodeKind,
    RateCard,
)
from accrual.domain.money import CENT, floor_cents, to_account_currency, to_cents, usd_from

ZERO = Decimal("0")
NO_CASHBACK = Decimal("0.00")
ONE = Decimal("1")
# Enough digits for any amount this job sees, fixed so a decision does not depend on the caller's decimal context.
PRECISION = 28

PROMO_SECTION_WITHOUT_CASHBACK = "3_for_5_99"
ALLOWED_PROMO_CODE_KINDS = frozenset({PromoCodeKind.SERVICE, PromoCodeKind.SELLER_COUPON})


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


TRAIL_TEXT_LIMIT = 80


def _short(text: str) -> str:
    return text if len(text) <= TRAIL_TEXT_LIMIT else text[: TRAIL_TEXT_LIMIT - 1] + "…"


# --- base ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """What the shopper paid for the items, without VAT and shipping, in the line currency and in USD."""

    amount: Decimal
    tax: Decimal  # VAT taken out of the amount (reported, or computed from the country's rate); 0 when none
    vat_rate: Decimal | None  # the configured VAT rate used when the partner did not report tax
    shipping: Decimal
    base: Decimal
    base_usd: Decimal
    codes: tuple[Code, ...]
    usd_rate: Decimal | None = None  # units of the line currency per 1 USD (None for USD)
    usd_rate_day: date | None = None  # the configuration's fx day, when the report gave no rate


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


# --- rate ------------------------------------------------------------------------------------------------------------


def rate_card_at(config: AccrualConfig, partner: str, moment: datetime) -> RateCard | None:
    """The partner's rate card in force at `moment` (the click time); the latest `valid_from` among overlapping."""
    cards = [card for card in config.rate_cards if card.partner == partner and card.in_force_at(moment)]
    return max(cards, key=lambda card: card.valid_from, default=None)


@dataclass(frozen=True)
class RateChoice:
    rate: Decimal  # the rate applied, after the max-rate clamp
    source: str  # "category:<id>", "default", "non_affiliate", "hot", "promotion:<starts_at iso>"
    winning_rate: Decimal  # the winning candidate before the clamp
    candidates: tuple[tuple[str, Decimal], ...]  # in tie-break order
    category_rate: Decimal  # the category (or default) rate, to explain a non-affiliate line
    codes: tuple[Code, ...]


def category_rate(line: OrderLine, card: RateCard) -> tuple[str, Decimal]:
    """The rate of the product's category on the card, else the card's default rate."""
    if line.category_id is not None and line.category_id in card.categories:
        return f"category:{line.category_id}", card.categories[line.category_id]
    return "default", card.default_rate


def promotions_at(config: AccrualConfig, line: OrderLine, moment: datetime) -> list[tuple[str, Decimal]]:
    """Promotions of the line's partner in force at the click for its category, sorted by start (then end, rate)."""
    promotions = [
        promotion
        for promotion in config.promotions
        if promotion.partner == line.partner
        and line.category_id is not None
        and line.category_id in promotion.categories
        and promotion.in_force_at(moment)
    ]
    promotions.sort(key=lambda promotion: (promotion.starts_at, promotion.ends_at, promotion.rate))
    return [(f"promotion:{promotion.starts_at.isoformat()}", promotion.rate) for promotion in promotions]


def choose_rate(line: OrderLine, card: RateCard, config: AccrualConfig, clicked_at: datetime) -> RateChoice:
    """Non-affiliate: exactly its flat rate. Affiliate: the highest of category/default, hot and the promotions
    in force at the click."""
    category_source, category = category_rate(line, card)
    if not line.is_affiliate:
        candidates = [("non_affiliate", card.non_affiliate_rate)]
    else:
        candidates = [(category_source, category)]
        if line.is_hot and card.hot_product_rate is not None:
            candidates.append(("hot", card.hot_product_rate))
        candidates.extend(promotions_at(config, line, clicked_at))
    source, winning = candidates[0]
    for candidate_source, candidate_rate in candidates[1:]:
        if candidate_rate > winning:  # strictly higher: on a tie the earlier candidate keeps the win
            source, winning = candidate_source, candidate_rate
    codes = []
    if source == "non_affiliate":
        codes.append(Code.NON_AFFILIATE_RATE)
    elif source == "hot":
        codes.append(Code.HOT_PRODUCT_RATE)
    elif source.startswith("promotion:"):
        codes.append(Code.PROMO_RATE_AT_CLICK)
    rate = winning
    if rate > config.max_rate:
        rate = config.max_rate
        codes.append(Code.RATE_LIMITED_TO_MAX)
    return RateChoice(
        rate=rate,
        source=source,
        winning_rate=winning,
        candidates=tuple(candidates),
        category_rate=category,
        codes=tuple(codes),
    )


# --- exclusions ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineContext:
    """Everything an exclusion rule may look at for one line."""

    line: OrderLine
    click: Click
    config: AccrualConfig
    now: datetime
    card: RateCard | None


def partner_invalid(ctx: LineContext) -> Code | None:
    return Code.PARTNER_INVALID if ctx.line.status == LineStatus.INVALID else None


def partner_settled_at_zero(ctx: LineContext) -> Code | None:
    return Code.PARTNER_SETTLED_AT_ZERO if ctx.line.status == LineStatus.SETTLED and ctx.line.amount == 0 else None


def payment_deadline(line: OrderLine, config: AccrualConfig) -> datetime:
    return line.ordered_at + timedelta(days=config.awaiting_payment_days)


def awaiting_payment_expired(ctx: LineContext) -> Code | None:
    """Unpaid past the deadline now, or paid only after it."""
    deadline = payment_deadline(ctx.line, ctx.config)
    still_unpaid = ctx.line.status == LineStatus.AWAITING_PAYMENT and ctx.now > deadline
    paid_late = ctx.line.paid_at is not None and ctx.line.paid_at > deadline
    return Code.AWAITING_PAYMENT_EXPIRED if still_unpaid or paid_late else None


def promo_section_excluded(ctx: LineContext) -> Code | None:
    return Code.PROMO_SECTION_3_FOR_5_99 if ctx.line.promo_section == PROMO_SECTION_WITHOUT_CASHBACK else None


def shop_excluded(ctx: LineContext) -> Code | None:
    shop = ctx.line.shop_id
    return Code.SHOP_EXCLUDED if shop is not None and shop in ctx.config.excluded_shops else None


def cart_before_click(ctx: LineContext) -> Code | None:
    added = ctx.line.added_to_cart_at
    return Code.CART_BEFORE_CLICK if added is not None and added < ctx.click.clicked_at else None


def virtual_product(ctx: LineContext) -> Code | None:
    category = ctx.line.category_id
    return Code.VIRTUAL_PRODUCT if category is not None and category in ctx.config.virtual_categories else None


def dispute_or_price_adjusted(ctx: LineContext) -> Code | None:
    return Code.DISPUTE_OR_PRICE_ADJUSTED if ctx.line.dispute or ctx.line.price_adjusted else None


def promo_code_not_allowed(ctx: LineContext) -> Code | None:
    """Only the service's own codes and sellers' coupons keep cashback; an unknown kind counts as not allowed.
    A code on the configuration's `own_promo_codes` (compared case-insensitively, surrounding spaces ignored) is the
    service's own, whatever kind the partner reported (Admitad reports the code without a kind)."""
    code = (ctx.line.promo_code or "").strip()
    if not code:
        return None
    if code.casefold() in {own.strip().casefold() for own in ctx.config.own_promo_codes}:
        return None
    if ctx.line.promo_code_kind not in ALLOWED_PROMO_CODE_KINDS:
        return Code.PROMO_CODE_NOT_ALLOWED
    return None


def no_rate_card(ctx: LineContext) -> Code | None:
    return Code.NO_RATE_CARD if ctx.card is None else None


# The fixed precedence: a line takes the first exclusion of this list that fires.
EXCLUSION_RULES: tuple[Callable[[LineContext], Code | None], ...] = (
    partner_invalid,
    partner_settled_at_zero,
    awaiting_payment_expired,
    promo_section_excluded,
    shop_excluded,
    cart_before_click,
    virtual_product,
    dispute_or_price_adjusted,
    promo_code_not_allowed,
    no_rate_card,
)


def exclusions_of(ctx: LineContext) -> tuple[Code, ...]:
    """Every exclusion that fires for the line, in precedence order (the first one is decisive)."""
    fired = (rule(ctx) for rule in EXCLUSION_RULES)
    return tuple(code for code in fired if code is not None)


def _exclusion_numbers(code: Code, ctx: LineContext) -> dict[str, str]:
    line = ctx.line
    if code == Code.PARTNER_INVALID:
        # the partner's free text is shortened: a trail stays small however many lines an order has
        return {"status": line.status.value, "status_detail": _short(line.status_detail or "")}
    if code == Code.PARTNER_SETTLED_AT_ZERO:
        return {"status": line.status.value, "amount": str(line.amount), "currency": line.currency}
    if code == Code.AWAITING_PAYMENT_EXPIRED:
        return {
            "ordered_at": _iso(line.ordered_at),
            "deadline": _iso(payment_deadline(line, ctx.config)),
            "paid_at": _iso(line.paid_at),
            "now": _iso(ctx.now),
            "awaiting_payment_days": str(ctx.config.awaiting_payment_days),
        }
    if code == Code.PROMO_SECTION_3_FOR_5_99:
        return {"promo_section": line.promo_section or ""}
    if code == Code.SHOP_EXCLUDED:
        return {"shop_id": line.shop_id or ""}
    if code == Code.CART_BEFORE_CLICK:
        return {"added_to_cart_at": _iso(line.added_to_cart_at), "clicked_at": _iso(ctx.click.clicked_at)}
    if code == Code.VIRTUAL_PRODUCT:
        return {"category_id": line.category_id or ""}
    if code == Code.DISPUTE_OR_PRICE_ADJUSTED:
        return {"dispute": str(line.dispute).lower(), "price_adjusted": str(line.price_adjusted).lower()}
    if code == Code.PROMO_CODE_NOT_ALLOWED:
        kind = line.promo_code_kind.value if line.promo_code_kind is not None else ""
        return {"promo_code": line.promo_code or "", "promo_code_kind": kind}
    return {"partner": line.partner, "clicked_at": _iso(ctx.click.clicked_at)}


_EXCLUSION_NOTES = {
    Code.PARTNER_INVALID: "the partner marked the line invalid",
    Code.PARTNER_SETTLED_AT_ZERO: "the partner settled the line with a final amount of 0",
    Code.AWAITING_PAYMENT_EXPIRED: "the order was not paid within the allowed days",
    Code.PROMO_SECTION_3_FOR_5_99: "bought in the '3 for $5.99' section, which earns no cashback",
    Code.SHOP_EXCLUDED: "the seller is on the list of shops without cashback",
    Code.CART_BEFORE_CLICK: "the item was added to the cart before the click on the cashback link",
    Code.VIRTUAL_PRODUCT: "virtual products and services earn no cashback",
    Code.DISPUTE_OR_PRICE_ADJUSTED: "a dispute was opened or the seller changed the price",
    Code.PROMO_CODE_NOT_ALLOWED: "a promo code other than the service's own or a seller's coupon was used",
    Code.NO_RATE_CARD: "no rate card of the partner was in force at the click",
}


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


def _base_steps(line: OrderLine, base: Base) -> list[TrailStep]:
    numbers = {
        "amount": str(base.amount),
        "currency": line.currency,
        "tax": str(base.tax),
        "shipping": str(base.shipping),
        "base": str(base.base),
        "base_usd": str(base.base_usd),
    }
    if line.currency != "USD":
        numbers["usd_rate"] = str(base.usd_rate)
        numbers["usd_rate_source"] = ("report" if base.usd_rate_day is None
                                      else f"configuration fx_rates {base.usd_rate_day.isoformat()}")
    steps = [TrailStep("base", None, line.line_id, numbers, "item amount without VAT and shipping, in USD")]
    if Code.VAT_EXCLUDED in base.codes:
        vat = {"tax": str(base.tax), "amount": str(base.amount), "currency": line.currency}
        if base.vat_rate is not None:
            vat.update(vat_rate=str(base.vat_rate), country=line.ship_to_country or "")
            note = f"VAT not reported: taken out at the {line.ship_to_country} rate"
        else:
            note = "VAT reported by the partner is taken out"
        steps.append(TrailStep("vat", Code.VAT_EXCLUDED.value, line.line_id, vat, note))
    if Code.SHIPPING_EXCLUDED in base.codes:
        steps.append(
            TrailStep(
                "shipping",
                Code.SHIPPING_EXCLUDED.value,
                line.line_id,
                {"shipping": str(base.shipping), "currency": line.currency},
                "paid shipping never earns cashback",
            )
        )
    return steps


def _rate_steps(line: OrderLine, choice: RateChoice) -> list[TrailStep]:
    numbers = {"rate": str(choice.rate), "source": choice.source, "category_rate": str(choice.category_rate)}
    numbers.update({f"candidate:{source}": str(rate) for source, rate in choice.candidates})
    main_code = next((code for code in choice.codes if code != Code.RATE_LIMITED_TO_MAX), None)
    note = "flat non-affiliate rate" if choice.source == "non_affiliate" else "highest candidate at the click"
    steps = [TrailStep("rate", main_code.value if main_code else None, line.line_id, numbers, note)]
    if Code.RATE_LIMITED_TO_MAX in choice.codes:
        steps.append(
            TrailStep(
                "rate_limit",
                Code.RATE_LIMITED_TO_MAX.value,
                line.line_id,
                {"rate_before": str(choice.winning_rate), "max_rate": str(choice.rate)},
                "the rate never goes above the maximum",
            )
        )
    return steps


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
    work = _LineWork(line=ctx.line, base=base)
    steps.extend(_base_steps(ctx.line, base))
    fired = exclusions_of(ctx)
    if fired:
        for position, code in enumerate(fired):
            numbers = {"decisive": "yes" if position == 0 else "no", **_exclusion_numbers(code, ctx)}
            steps.append(TrailStep("exclusion", code.value, ctx.line.line_id, numbers, _EXCLUSION_NOTES[code]))
        work.exclusion = fired[0]
        work.codes = (fired[0],)
        return work
    assert ctx.card is not None  # no_rate_card would have fired
    choice = choose_rate(ctx.line, ctx.card, ctx.config, ctx.click.clicked_at)
    steps.extend(_rate_steps(ctx.line, choice))
    work.rate, work.rate_source = choice.rate, choice.source
    work.raw = base.base_usd * choice.rate
    work.cashback, below = apply_minimum(work.raw, ctx.config.min_cashback_usd)
    codes = [*base.codes, *choice.codes]
    if below is not None:
        work.exclusion = below
        codes.append(below)
        steps.append(
            TrailStep(
                "minimum",
                below.value,
                ctx.line.line_id,
                {"base_usd": str(base.base_usd), "rate": str(choice.rate), "raw": str(work.raw),
                 "minimum": str(ctx.config.min_cashback_usd)},
                "cashback below the minimum earns nothing",
            )
        )
    else:
        steps.append(
            TrailStep(
                "cashback",
                None,
                ctx.line.line_id,
                {"base_usd": str(base.base_usd), "rate": str(choice.rate), "raw": str(work.raw),
                 "cashback_usd": str(work.cashback)},
                "base x rate, rounded half up to cents",
            )
        )
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


def _without_shopper(lines: list[OrderLine], config: AccrualConfig, conflict: tuple[str, ...]) -> OrderDecision:
    """No click names a shopper (unattributed), or the lines name several (a conflict held for review): nothing
    earns, the line bases still show what the order was worth."""
    first = lines[0]
    sub_ids = ",".join(sorted({line.sub_id for line in lines if line.sub_id}))
    if conflict:
        code, outcome = Code.ATTRIBUTION_CONFLICT, Outcome.ON_REVIEW
        steps = [
            TrailStep("inputs", None, None, {"config_version": config.version, "sub_id": sub_ids},
                      "the lines' clicks name different shoppers"),
            TrailStep("attribution_conflict", code.value, None, {"user_ids": ",".join(conflict), "sub_id": sub_ids},
                      "held for review: an operator decides which shopper the order belongs to"),
        ]
    else:
        code, outcome = Code.UNATTRIBUTED, Outcome.UNATTRIBUTED
        steps = [
            TrailStep("inputs", None, None, {"config_version": config.version, "sub_id": sub_ids},
                      "no click matches the tracking value"),
            TrailStep("unattributed", code.value, None, {"sub_id": sub_ids}, "kept for a missing-cashback claim"),
        ]
    decisions = []
    for line in lines:
        base = line_base(line, config)
        steps.extend(_base_steps(line, base))
        work = _LineWork(line=line, base=base, exclusion=code, codes=(code,))
        decisions.append(_line_decision(work))
    steps.append(
        TrailStep(
            "outcome",
            None,
            None,
            {"outcome": outcome.value, "cashback_usd": "0.00", "cashback": "0.00", "currency": "USD"},
        )
    )
    return OrderDecision(
        partner=first.partner,
        order_id=first.order_id,
        user_id=None,
        config_version=config.version,
        outcome=outcome,
        cashback_usd=NO_CASHBACK,
        account_currency="USD",
        fx_rate=ONE,
        fx_day=None,
        cashback=NO_CASHBACK,
        reasons=(code.value,),
        lines=tuple(decisions),
        trail=tuple(steps),
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
    first = lines[0]
    card = rate_card_at(config, first.partner, click.clicked_at)
    steps = [
        TrailStep(
            "inputs",
            None,
            None,
            {
                "config_version": config.version,
                "sub_id": click.sub_id,
                "user_id": click.user_id,
                "clicked_at": _iso(click.clicked_at),
                "account_currency": click.account_currency,
            },
            "the click and the configuration the order is decided by",
        )
    ]
    if card is not None:
        steps.append(
            TrailStep(
                "rate_card",
                None,
                None,
                {"partner": card.partner, "valid_from": _iso(card.valid_from), "valid_to": _iso(card.valid_to)},
                "the rate card in force at the click",
            )
        )
    order_codes: set[Code] = set()
    conflicting = new_user_coupon_accounts_conflict(lines, other_accounts)
    if conflicting:
        order_codes.add(Code.MULTI_ACCOUNT_NEW_USER_COUPON)
        steps.append(
            TrailStep(
                "multi_account",
                Code.MULTI_ACCOUNT_NEW_USER_COUPON.value,
                None,
                {"buyer_accounts": ",".join(conflicting), "other_accounts": ",".join(sorted(other_accounts))},
                "new-user coupons used from several store accounts of one person: held for review",
            )
        )

    works = []
    for line in lines:
        ctx = LineContext(line=line, click=click, config=config, now=now, card=card)
        works.append(_decide_line(ctx, line_base(line, config), steps))

    total = sum((work.cashback for work in works), NO_CASHBACK)
    steps.append(TrailStep("total", None, None, {"cashback_usd": str(total)}, "sum of the lines"))
    cashback_usd = total
    if total > config.cap_usd:
        cashback_usd = floor_cents(config.cap_usd)
        order_codes.add(Code.CAP_APPLIED)
        steps.append(
            TrailStep(
                "cap",
                Code.CAP_APPLIED.value,
                None,
                {"before": str(total), "cap": str(config.cap_usd), "after": str(cashback_usd)},
                "cashback per order is capped; the cap is shared by all lines of the order",
            )
        )
        earning = [(work.line.line_id, work.cashback) for work in works if work.cashback > 0]
        shares = apportion_cap(earning, config.cap_usd)
        for work in works:
            if work.line.line_id not in shares:
                continue
            before, after = work.cashback, shares[work.line.line_id]
            steps.append(
                TrailStep(
                    "cap_share",
                    Code.CAP_APPLIED.value,
                    work.line.line_id,
                    {"before": str(before), "after": str(after)},
                    "the line's share of the cap, in proportion to what it earned (largest remainder)",
                )
            )
            work.cashback = after
            if after < before:
                work.codes = (*work.codes, Code.CAP_APPLIED)

    day = credited_on if credited_on is not None else credit_day(lines)
    fx_rate, fx_day = fx_rate_on(config, click.account_currency, day)
    cashback = to_account_currency(cashback_usd, fx_rate)
    if click.account_currency != "USD":
        order_codes.add(Code.FX_CONVERTED)
        steps.append(
            TrailStep(
                "fx",
                Code.FX_CONVERTED.value,
                None,
                {
                    "cashback_usd": str(cashback_usd),
                    "rate": str(fx_rate),
                    "day": fx_day.isoformat() if fx_day else "",
                    "credited_on": day.isoformat(),
                    "currency": click.account_currency,
                    "cashback": str(cashback),
                },
                "converted to the account currency at the rate of the credit day",
            )
        )

    if conflicting:
        outcome = Outcome.ON_REVIEW
    elif cashback_usd > 0:
        outcome = Outcome.EARNS
    else:
        outcome = Outcome.NOTHING
    steps.append(
        TrailStep(
            "outcome",
            None,
            None,
            {
                "outcome": outcome.value,
                "cashback_usd": str(cashback_usd),
                "cashback": str(cashback),
                "currency": click.account_currency,
            },
        )
    )
    decisions = tuple(_line_decision(work) for work in works)
    reasons = {code.value for code in order_codes}
    for decision in decisions:
        reasons.update(decision.reasons)
    return OrderDecision(
        partner=first.partner,
        order_id=first.order_id,
        user_id=click.user_id,
        config_version=config.version,
        outcome=outcome,
        cashback_usd=cashback_usd,
        account_currency=click.account_currency,
        fx_rate=fx_rate,
        fx_day=fx_day,
        cashback=cashback,
        reasons=tuple(sorted(reasons)),
        lines=decisions,
        trail=tuple(steps),
    )

