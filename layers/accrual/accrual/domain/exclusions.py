"""The exclusions: one small function a rule, each returning its reason code when it fires, and their fixed
precedence (`EXCLUSION_RULES`: a line takes the first exclusion of the list that fires). The rules module
(`accrual.domain.rules`) applies them to each line of an order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from accrual.domain import trail_steps as trail
from accrual.domain.decision import Code
from accrual.domain.models import AccrualConfig, Click, LineStatus, OrderLine, PromoCodeKind, RateCard

PROMO_SECTION_WITHOUT_CASHBACK = "3_for_5_99"
ALLOWED_PROMO_CODE_KINDS = frozenset({PromoCodeKind.SERVICE, PromoCodeKind.SELLER_COUPON})


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
    """A settled line's amount is the partner's final figure: 0 there earns 0, with its own reason."""
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


def exclusion_figures(code: Code, ctx: LineContext) -> dict[str, str]:
    """The figures the trail explains an exclusion with."""
    return trail.exclusion_numbers(
        code,
        ctx.line,
        ctx.click,
        now=ctx.now,
        deadline=payment_deadline(ctx.line, ctx.config),
        awaiting_payment_days=ctx.config.awaiting_payment_days,
    )
