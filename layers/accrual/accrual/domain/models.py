"""The formats every part agrees on (docs/rules.md, "The two formats"): the normalised order line, the click and the
accrual configuration, as validated pydantic models (the models Powertools Parser consumes). Money is Decimal.

A bad value is rejected with a pydantic ValidationError whose message names the field and the value.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.functional_validators import AfterValidator
from pydantic_core import InitErrorDetails, PydanticCustomError

from accrual.domain.limits import (
    DECIMAL_TEXT,
    EARLIEST_YEAR,
    ID_FIELDS,
    LATEST_YEAR,
    MAX_AMOUNT_PLACES,
    MAX_ID_BYTES,
    MAX_LINE_AMOUNT,
    MAX_REASON_CHARS,
    MAX_SHOWN_CHARS,
    MAX_TEXT_CHARS,
    MAX_USD_RATE,
    MIN_USD_RATE,
    PARTNER_SLUG,
    TEXT_FIELDS,
    Amount,
    AwareDatetime,
    Country,
    FreeText,
    LineAmount,
    LineCurrency,
    LineId,
    LineTime,
    Rate,
    UsdRate,
    brief,
    hidden_character,
    iso_currency,
    partner_slug,
)

# Re-exported: the limits are read by the readers and their tests under this module's name.
__all__ = [
    "Country",
    "DECIMAL_TEXT",
    "EARLIEST_YEAR",
    "ID_FIELDS",
    "LATEST_YEAR",
    "MAX_AMOUNT_PLACES",
    "MAX_ID_BYTES",
    "MAX_LINE_AMOUNT",
    "MAX_REASON_CHARS",
    "MAX_SHOWN_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_USD_RATE",
    "MIN_USD_RATE",
    "PARTNER_SLUG",
    "TEXT_FIELDS",
    "brief",
    "AccrualConfig",
    "Click",
    "LineStatus",
    "OrderLine",
    "PromoCodeKind",
    "RateCard",
    "order_key",
]


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

    partner: Annotated[str, AfterValidator(partner_slug)]
    line_id: LineId = Field(min_length=1)
    order_id: LineId = Field(min_length=1)
    partner_order_id: LineId | None = None
    sub_id: LineId | None = None
    status: LineStatus
    status_detail: FreeText | None = None
    status_at: LineTime
    ordered_at: LineTime
    paid_at: LineTime | None = None
    settled_at: LineTime | None = None
    amount: LineAmount
    shipping: LineAmount = Decimal("0")
    tax: LineAmount | None = None
    currency: LineCurrency = "USD"
    # Optional in any currency: without it the ledger converts at the configuration's fx rate of the line's day.
    usd_rate: UsdRate | None = None
    commission: LineAmount = Decimal("0")
    category_id: LineId | None = None
    product_id: LineId | None = None
    shop_id: LineId | None = None
    is_affiliate: bool = True
    is_hot: bool = False
    promo_section: FreeText | None = None
    promo_code: LineId | None = None
    promo_code_kind: PromoCodeKind | None = None
    new_user_coupon: bool = False
    buyer_account: LineId | None = None
    added_to_cart_at: LineTime | None = None
    dispute: bool = False
    price_adjusted: bool = False
    ship_to_country: Country | None = None

    @field_validator("amount", "shipping", "tax", "commission", "usd_rate", mode="before")
    @classmethod
    def _money_from_text(cls, value):
        if isinstance(value, float):
            return Decimal(repr(value))
        # Decimal() also reads "1_234", "１２" and "١٢": an amount is ASCII digits with "." before the fraction
        if isinstance(value, str) and not DECIMAL_TEXT.fullmatch(value.strip()):
            raise ValueError("not a decimal number (ASCII digits, '.' before the fraction)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OrderLine:
        if self.tax is not None and self.tax > self.amount:
            raise ValueError(f"tax {self.tax} is larger than amount {self.amount}")
        return self

    @property
    def order_key(self) -> str:
        """The order the 40 USD cap is shared by: partner + the store's order number."""
        return order_key(self.partner, self.order_id)


def order_key(partner: str, order_id: str) -> str:
    return f"{partner}#{order_id}"


# --- limits of the click and the configuration (docs/rules.md, "Identity and integrity") --------------------------------
# sub_id and user_id are DynamoDB keys (a partition key may hold 2048 bytes): bounded well below, in UTF-8 bytes.
MAX_KEY_BYTES = 256
MAX_SLUG_LENGTH = 64
SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
DEFAULT_PARTNERS = ("aliexpress", "admitad")
MAX_CASHBACK_RATE = Decimal("0.40")  # the rules' maximum rate (docs/rules.md: "never above 40%")
MAX_DAYS = 3650  # a number of days (hold, awaiting payment): 0 .. ten years
MIN_FX_RATE, MAX_FX_RATE = Decimal("1e-4"), Decimal("1e6")  # plausible units of a currency per 1 USD
FX_BAND = Decimal("2")  # a new fx rate within a factor of 2 of the previous version's rate, unless forced


def _key(value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise ValueError(f"{value[:40]!r}… is {size} bytes in UTF-8; at most {MAX_KEY_BYTES} are allowed")
    hidden = hidden_character(value)
    if hidden is not None:
        raise ValueError(f"{value[:40]!r} contains a control or format character ({hidden})")
    return value


Key = Annotated[str, Field(min_length=1), AfterValidator(_key)]


def _slug(value: str) -> str:
    if len(value) <= MAX_SLUG_LENGTH and SLUG_PATTERN.fullmatch(value):
        return value
    hint = value.strip().lower().replace(" ", "-")
    if hint != value and len(hint) <= MAX_SLUG_LENGTH and SLUG_PATTERN.fullmatch(hint):
        raise ValueError(f"partner {value!r} is not a lowercase slug; did you mean {hint!r}?")
    raise ValueError(
        f"partner {value!r} is not a lowercase slug (a-z, 0-9, '-' or '_', at most "
        f"{MAX_SLUG_LENGTH} characters, like 'aliexpress')"
    )


Slug = Annotated[str, AfterValidator(_slug)]


IsoCurrency = Annotated[str, AfterValidator(iso_currency)]


def _click_time(value: datetime) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"time {value.isoformat()} is outside the years {EARLIEST_YEAR}..{LATEST_YEAR}")
    return value


ClickTime = Annotated[AwareDatetime, AfterValidator(_click_time)]


def _cashback_rate(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value > MAX_CASHBACK_RATE:
        raise ValueError(f'rate {value} is outside 0..{MAX_CASHBACK_RATE} (fractions: "0.055" is 5.5%)')
    return value


CashbackRate = Annotated[Decimal, AfterValidator(_cashback_rate)]


def _fx_rate(value: Decimal) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise ValueError(f"fx rate {value} is not a positive finite number")
    if not MIN_FX_RATE <= value <= MAX_FX_RATE:
        raise ValueError(
            f"fx rate {value} is not plausible: units of the currency per 1 USD must be between "
            f"{MIN_FX_RATE} and {MAX_FX_RATE:f}"
        )
    return value


FxRate = Annotated[Decimal, AfterValidator(_fx_rate)]
Days = Annotated[int, Field(strict=True, ge=0, le=MAX_DAYS)]


class Click(_Strict):
    """A redirect recorded by the site; the partner echoes `sub_id` back in its report. A stored click is a fact:
    its `sub_id` never changes content, and a shopper (`user_id`) has one `account_currency`."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    sub_id: Key
    user_id: Key
    clicked_at: ClickTime
    partner: Slug
    account_currency: IsoCurrency = "USD"
    country: Country | None = None


class RateCard(_Strict):
    partner: Slug
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    default_rate: CashbackRate
    non_affiliate_rate: CashbackRate = Decimal("0.01")
    hot_product_rate: CashbackRate | None = None
    categories: dict[str, CashbackRate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window(self) -> RateCard:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"valid_to {self.valid_to.isoformat()} is not after valid_from")
        return self

    def in_force_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)


class Promotion(_Strict):
    partner: Slug
    categories: list[str]
    rate: CashbackRate
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _window(self) -> Promotion:
        if self.ends_at <= self.starts_at:
            raise ValueError(f"ends_at {self.ends_at.isoformat()} is not after starts_at")
        return self

    def in_force_at(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


class AccrualConfig(_Strict):
    """The accrual configuration, one versioned document (docs/rules.md). It is checked against the world on load: rate
    cards, promotions and hold days name known `partners`, rates lie within 0..40% (a lower `max_rate` clamps them
    when the rules apply it), days are non-negative integers, fx rates are plausible positive numbers of an active
    ISO 4217 currency per 1 USD."""

    version: str = Field(min_length=1)
    partners: list[Slug] = Field(default_factory=lambda: list(DEFAULT_PARTNERS), min_length=1)
    rate_cards: list[RateCard] = Field(min_length=1)
    promotions: list[Promotion] = Field(default_factory=list)
    excluded_shops: list[str] = Field(default_factory=list)
    virtual_categories: list[str] = Field(default_factory=list)
    own_promo_codes: list[str] = Field(default_factory=list)
    vat_rates: dict[Country, Rate] = Field(default_factory=dict)
    fx_rates: dict[date, dict[IsoCurrency, FxRate]] = Field(default_factory=dict)
    cap_usd: Amount = Decimal("40.00")
    min_cashback_usd: Amount = Decimal("0.01")
    max_rate: CashbackRate = MAX_CASHBACK_RATE
    awaiting_payment_days: Days = 3
    hold_days: dict[Slug, Days] = Field(default_factory=dict)
    # how far a reported usd_rate may be from the fx rate of its day before the line is quarantined
    fx_tolerance: Rate = Decimal("0.20")
    # an order whose cashback is above this share of the partner's commission on it is held for review
    # (OVER_COMMISSION_SHARE); "1.0" never pays a shopper more than the partner pays. None: no such hold.
    max_cashback_share: Amount | None = None

    @field_validator("own_promo_codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for index, code in enumerate(value):
            if not code.strip():
                raise ValueError(f"own_promo_codes[{index}] is empty")
        return value

    @model_validator(mode="after")
    def _known_to_the_world(self) -> AccrualConfig:
        """Every problem with its field path and value, in one ValidationError."""
        problems: list[InitErrorDetails] = []

        def problem(loc: tuple, value, message: str) -> None:
            error = PydanticCustomError("accrual_config", "{message}", {"message": message})
            problems.append(InitErrorDetails(type=error, loc=loc, input=value))

        known = set(self.partners)
        if len(known) != len(self.partners):
            problem(("partners",), self.partners, "a partner is listed twice")
        named: list[tuple[tuple[str | int, ...], str]] = [
            (("rate_cards", index, "partner"), card.partner) for index, card in enumerate(self.rate_cards)
        ]
        named += [(("promotions", index, "partner"), promo.partner) for index, promo in enumerate(self.promotions)]
        named += [(("hold_days", partner), partner) for partner in self.hold_days]
        for loc, partner in named:
            if partner not in known:
                problem(
                    loc,
                    partner,
                    f"partner {partner!r} is not one of the known partners "
                    f"{sorted(known)} (add it to `partners` first)",
                )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def fx_rate_on(self, currency: str, day: date) -> tuple[Decimal, date] | None:
        """The rate of the latest day on or before `day` that has one for `currency` (else the earliest day's)."""
        days = sorted(fx_day for fx_day, rates in self.fx_rates.items() if currency in rates)
        if not days:
            return None
        before = [fx_day for fx_day in days if fx_day <= day]
        chosen = before[-1] if before else days[0]
        return self.fx_rates[chosen][currency], chosen

    def hold_days_for(self, partner: str) -> int:
        return self.hold_days.get(partner, 0)
