"""What the rules decide for one order, with the decision trail that explains every number.

Frozen pydantic models: the ledger stores `to_dict()` (pydantic's JSON form) with the order and rebuilds it with
`from_dict()`, so an order can always be explained with the inputs and configuration version it was decided by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    EARNS = "earns"  # at least one line earns cashback (possibly capped)
    NOTHING = "nothing"  # every line is excluded or below the minimum: cashback 0 with reason codes
    ON_REVIEW = "on_review"  # held for a decision (MULTI_ACCOUNT_NEW_USER_COUPON, ATTRIBUTION_CONFLICT,
    # OVER_COMMISSION_SHARE)
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
    # a hold this job adds: the cashback is above the configured share of the partner's commission
    OVER_COMMISSION_SHARE = "OVER_COMMISSION_SHARE"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    UNATTRIBUTED = "UNATTRIBUTED"
    ATTRIBUTION_CONFLICT = "ATTRIBUTION_CONFLICT"
    # exclusions this job adds: the partner itself invalidated the line, or settled it with a final amount of 0 (its
    # last word: never replaced by an earlier figure); no rate card covers the click
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


class _Record(BaseModel):
    """Frozen, and stored as JSON by pydantic itself: decimals as their exact strings (`str(Decimal)`), dates in ISO
    form, enums as their values, tuples as lists. The ledger's stored decisions depend on that form staying as it is."""

    model_config = ConfigDict(frozen=True)


class TrailStep(_Record):
    """One rule that was applied: its name, the code it produced (if any), the line it concerns (None for the
    order), the numbers it used or produced as decimal strings, and a short plain-English statement."""

    rule: str
    code: str | None
    line_id: str | None
    numbers: dict[str, str] = Field(default_factory=dict)
    note: str = ""


class LineDecision(_Record):
    line_id: str
    status: str
    base_usd: Decimal  # what the shopper paid for the items, without shipping and VAT, in USD (unrounded)
    rate: Decimal  # the rate applied (0 when excluded)
    rate_source: str  # "category:<id>", "default", "non_affiliate", "hot", "promotion:<starts_at>", "" if excluded
    raw_cashback_usd: Decimal  # base_usd * rate, before the minimum, rounding and the cap
    cashback_usd: Decimal  # the line's share of the order's cashback, in cents
    exclusion: str | None  # the exclusion code that makes the line earn 0, if any
    reasons: tuple[str, ...]


class OrderDecision(_Record):
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
    # the partner's commission on the lines that earn (before the cap), in USD cents, and what is left of it
    # after the cashback: commission_usd - cashback_usd (negative when the shopper gets more than the partner pays)
    commission_usd: Decimal
    margin_usd: Decimal
    reasons: tuple[str, ...]  # every code, sorted, unique
    lines: tuple[LineDecision, ...]
    trail: tuple[TrailStep, ...]

    def to_dict(self) -> dict[str, Any]:
        """The stored form (JSON-ready; the ledger stores it as canonical JSON)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderDecision:
        return cls.model_validate(data)


# ---- the rules' intermediate values (domain/rules.py computes them, domain/trail_steps.py records them) ----
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


@dataclass(frozen=True)
class RateChoice:
    rate: Decimal  # the rate applied, after the max-rate clamp
    source: str  # "category:<id>", "default", "non_affiliate", "hot", "promotion:<starts_at iso>"
    winning_rate: Decimal  # the winning candidate before the clamp
    candidates: tuple[tuple[str, Decimal], ...]  # in tie-break order
    category_rate: Decimal  # the category (or default) rate, to explain a non-affiliate line
    codes: tuple[Code, ...]
