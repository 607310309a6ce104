"""What the rules decide for one order, with the decision trail that explains every number.

Plain frozen dataclasses: the ledger stores `to_dict()` with the order and rebuilds it with `from_dict()`, so an order
can always be explained with the inputs and configuration version it was decided by.
"""
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

    # exclusions (DOMAIN.md)
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
