"""The formats every part agrees on (DOMAIN.md, "The two formats"): the normalised order line, the click and the
accrual configuration, as validated pydantic models (the models Powertools Parser consumes). Money is Decimal.

A bad value is rejected with a pydantic ValidationError whose message names the field and the value.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.functional_validators import AfterValidator

# Amounts arrive as decimal strings; floats would lose cents, so a JSON number is read through its text.
# An absurd amount (a unit mix-up in a partner feed) is refused rather than paid.
MAX_LINE_AMOUNT = Decimal("1000000")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time {value.isoformat()} has no zone; ISO-8601 with a zone is required")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _non_negative(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"amount {value} is not a finite number")
    if value < 0:
        raise ValueError(f"amount {value} is negative")
    if value > MAX_LINE_AMOUNT:
        raise ValueError(f"amount {value} is above the plausible maximum {MAX_LINE_AMOUNT}")
    return value


Amount = Annotated[Decimal, AfterValidator(_non_negative)]


def _fraction(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value > 1:
        raise ValueError(f"rate {value} is not a fraction between 0 and 1 (\"0.055\" is 5.5%)")
    return value


Rate = Annotated[Decimal, AfterValidator(_fraction)]


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValueError(f"currency {value!r} is not an ISO 4217 code")
    return value


Currency = Annotated[str, AfterValidator(_currency)]


def _country(value: str) -> str:
    if len(value) != 2 or not value.isalpha() or not value.isupper():
        raise ValueError(f"country {value!r} is not an ISO 3166 alpha-2 code")
    return value


Country = Annotated[str, AfterValidator(_country)]


class LineStatus(StrEnum):
    """The partner's status of one line, normalised."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    RECEIVED = "received"  # the buyer confirmed receipt: still pending
    SETTLED = "settled"  # final, commission paid: confirm after the hold
    INVALID = "invalid"


class PromoCodeKind(StrEnum):
    SERVICE = "service"
    SELLER_COUPON = "seller_coupon"
    OTHER = "other"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class OrderLine(_Strict):
    """One line of a partner report, normalised. A repeated `line_id` is an update of the same line."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    partner: str = Field(min_length=1)
    line_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    partner_order_id: str | None = None
    sub_id: str | None = None
    status: LineStatus
    status_detail: str | None = None
    status_at: AwareDatetime
    ordered_at: AwareDatetime
    paid_at: AwareDatetime | None = None
    settled_at: AwareDatetime | None = None
    amount: Amount
    shipping: Amount = Decimal("0")
    tax: Amount | None = None
    currency: Currency = "USD"
    usd_rate: Decimal | None = None
    commission: Amount = Decimal("0")
    category_id: str | None = None
    product_id: str | None = None
    shop_id: str | None = None
    is_affiliate: bool = True
    is_hot: bool = False
    promo_section: str | None = None
    promo_code: str | None = None
    promo_code_kind: PromoCodeKind | None = None
    new_user_coupon: bool = False
    buyer_account: str | None = None
    added_to_cart_at: AwareDatetime | None = None
    dispute: bool = False
    price_adjusted: bool = False
    ship_to_country: Country | None = None

    @field_validator("amount", "shipping", "tax", "commission", "usd_rate", mode="before")
    @classmethod
    def _money_from_text(cls, value):
        if isinstance(value, float):
            return Decimal(repr(value))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "OrderLine":
        if self.currency != "USD" and (self.usd_rate is None or self.usd_rate <= 0):
            raise ValueError(f"usd_rate is required and must be positive when currency is {self.currency}")
        if self.tax is not None and self.tax > self.amount:
            raise ValueError(f"tax {self.tax} is larger than amount {self.amount}")
        return self

    @property
    def order_key(self) -> str:
        """The order the 40 USD cap is shared by: partner + the store's order number."""
        return order_key(self.partner, self.order_id)


def order_key(partner: str, order_id: str) -> str:
    return f"{partner}#{order_id}"


class Click(_Strict):
    """A redirect recorded by the site; the partner echoes `sub_id` back in its report."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    sub_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    clicked_at: AwareDatetime
    partner: str = Field(min_length=1)
    account_currency: Currency = "USD"
    country: Country | None = None


class RateCard(_Strict):
    partner: str
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    default_rate: Rate
    non_affiliate_rate: Rate = Decimal("0.01")
    hot_product_rate: Rate | None = None
    categories: dict[str, Rate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window(self) -> "RateCard":
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"valid_to {self.valid_to.isoformat()} is not after valid_from")
        return self

    def in_force_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)


class Promotion(_Strict):
    partner: str
    categories: list[str]
    rate: Rate
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _window(self) -> "Promotion":
        if self.ends_at <= self.starts_at:
            raise ValueError(f"ends_at {self.ends_at.isoformat()} is not after starts_at")
        return self

    def in_force_at(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


class AccrualConfig(_Strict):
    """The accrual configuration, one versioned document (DOMAIN.md)."""

    version: str = Field(min_length=1)
    rate_cards: list[RateCard] = Field(min_length=1)
    promotions: list[Promotion] = Field(default_factory=list)
    excluded_shops: list[str] = Field(default_factory=list)
    virtual_categories: list[str] = Field(default_factory=list)
    vat_rates: dict[Country, Rate] = Field(default_factory=dict)
    fx_rates: dict[date, dict[Currency, Decimal]] = Field(default_factory=dict)
    cap_usd: Amount = Decimal("40.00")
    min_cashback_usd: Amount = Decimal("0.01")
    max_rate: Rate = Decimal("0.40")
    awaiting_payment_days: int = Field(default=3, ge=0)
    hold_days: dict[str, int] = Field(default_factory=dict)

    @field_validator("fx_rates")
    @classmethod
    def _positive_fx(cls, value: dict[date, dict[str, Decimal]]):
        for day, rates in value.items():
            for currency, rate in rates.items():
                if not rate.is_finite() or rate <= 0:
                    raise ValueError(f"fx_rates[{day}][{currency}] = {rate} is not a positive rate")
        return value

    def hold_days_for(self, partner: str) -> int:
        return self.hold_days.get(partner, 0)
