"""The limits of the shared formats and the validated value types built on them (times with a zone, amounts,
rates, currencies, ids, free texts). Checked when a record is built, so that no value a partner or an operator sends
can fail a DynamoDB key or item, or date and decimal arithmetic further on: such a record is refused with a message
naming the field and the value. The records themselves are in `accrual.domain.models`."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic.functional_validators import AfterValidator

from accrual.domain.currencies import ISO_4217

# Amounts arrive as decimal strings; floats would lose cents, so a JSON number is read through its text.
# An absurd amount (a unit mix-up in a partner feed) is refused rather than paid.
MAX_LINE_AMOUNT = Decimal("1000000")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time {value.isoformat()} has no zone; ISO-8601 with a zone is required")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _non_negative(value: Decimal) -> Decimal:
    # the value is shortened in the message: a 5,000-digit amount is quoted, not echoed
    if not value.is_finite():
        raise ValueError(f"amount {brief(value)} is not a finite number")
    if value < 0:
        raise ValueError(f"amount {brief(value)} is negative")
    if value > MAX_LINE_AMOUNT:
        raise ValueError(f"amount {brief(value)} is above the plausible maximum {MAX_LINE_AMOUNT}")
    return value


Amount = Annotated[Decimal, AfterValidator(_non_negative)]


def _fraction(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value > 1:
        raise ValueError(f'rate {value} is not a fraction between 0 and 1 ("0.055" is 5.5%)')
    return value


Rate = Annotated[Decimal, AfterValidator(_fraction)]


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValueError(f"currency {value!r} is not an ISO 4217 code")
    return value


Currency = Annotated[str, AfterValidator(_currency)]


def iso_currency(value: str) -> str:
    if value not in ISO_4217:
        hint = f"; did you mean {value.upper()!r}?" if value.upper() in ISO_4217 else ""
        raise ValueError(f"currency {value!r} is not an active ISO 4217 code{hint}")
    return value


def _country(value: str) -> str:
    if len(value) != 2 or not value.isalpha() or not value.isupper():
        raise ValueError(f"country {value!r} is not an ISO 3166 alpha-2 code")
    return value


Country = Annotated[str, AfterValidator(_country)]


# --- The limits of one normalised order line ------------------------------------------------------------------------
# Checked when a line is built, so that no value a partner sends can fail a DynamoDB write or key, or date and
# decimal arithmetic further on (docs/rules.md: "Nothing a partner sends can stop a feed"): such a line is quarantined.

# Ids end up in DynamoDB keys: pk `partner#order_id` (at most 2,048 bytes), sk `LINE#<line_id>` and the GSI key
# `partner#line_id` (at most 1,024 bytes), and the GSIs on order_id, partner_order_id and user_id. 256 bytes stays far
# below every one of them with its prefix, and far above any real id.
MAX_ID_BYTES = 256
ID_FIELDS = (
    "line_id",
    "order_id",
    "partner_order_id",
    "sub_id",
    "product_id",
    "category_id",
    "shop_id",
    "buyer_account",
    "promo_code",
)
# The partner starts every key of its lines and names S3 prefixes and SSM parameters: a short lowercase slug.
PARTNER_SLUG = re.compile(r"[a-z0-9_-]{1,32}")
# Free texts are shown to support and carried in notifications; a real sub-reason or section name is a few words.
MAX_TEXT_CHARS = 1000
TEXT_FIELDS = ("status_detail", "promo_section")
# Real orders happen in these years. The rules add days to times (3 days awaiting payment, the hold, 180 days) and
# convert zones: a year-1 or year-9999 time would overflow that arithmetic.
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100
# Amounts carry at most this many decimal places (and, with MAX_LINE_AMOUNT, at most 27 digits: DynamoDB keeps 38).
# A Decimal such as 1E-999999 is refused here instead of overflowing decimal arithmetic later.
MAX_AMOUNT_PLACES = 20
# usd_rate is units of the currency per 1 USD; real ones run from about 0.3 (KWD) to about 10^5 (IRR, VND).
MIN_USD_RATE = Decimal("0.000001")
MAX_USD_RATE = Decimal("10000000")
# A quarantine reason is read by people and stored beside the line: bounded whatever the partner sent; a value it
# quotes is shortened to MAX_SHOWN_CHARS with its length stated.
MAX_REASON_CHARS = 500
MAX_SHOWN_CHARS = 80
# A decimal amount as text: ASCII digits, an optional fraction after "." and an exponent (Decimal() alone also takes
# "NaN", "Infinity", "1_000" and non-ASCII digits).
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,9})?")


def brief(value: object) -> str:
    """A value as a reason quotes it: decimals and times as their text, strings quoted, anything long shortened with
    its length stated (a 450 KB field is never echoed into a reason). Never raises."""
    try:
        if isinstance(value, str):
            if len(value) <= MAX_SHOWN_CHARS:
                return repr(value)
            return f"{value[:MAX_SHOWN_CHARS]!r}... ({len(value)} chars)"
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
            return f"<an integer of {value.bit_length()} bits>"  # str() of a huge int raises
        text = (
            str(value)
            if isinstance(value, Decimal)
            else value.isoformat()
            if isinstance(value, datetime)
            else repr(value)
        )
    except Exception:  # noqa: BLE001 - a reason must be written even for a value that cannot be shown
        return f"<a {type(value).__name__} that cannot be shown>"
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[:MAX_SHOWN_CHARS]}... ({len(text)} chars)"


def _utf8_size(value: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: undecodable bytes in the report
        raise ValueError("not valid UTF-8 text (undecodable bytes)") from None


# Control and format characters (newlines, bell, bidi overrides, zero-width characters) and line or paragraph
# separators: an id holding one could start a new paragraph or reorder the text it is shown in.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def hidden_character(value: str) -> str | None:
    """The first control, format or separator character of `value` (as `U+XXXX`), or None."""
    for char in value:
        if unicodedata.category(char) in HIDDEN_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def _line_id(value: str) -> str:
    # A character is at least one byte: a long text is refused without encoding all of it.
    size = len(value) if len(value) > MAX_ID_BYTES else _utf8_size(value)
    if size > MAX_ID_BYTES:
        raise ValueError(f"an id of {size} bytes or more; at most {MAX_ID_BYTES} UTF-8 bytes")
    hidden = hidden_character(value)
    if hidden is not None:
        raise ValueError(f"an id may not hold control or format characters ({hidden})")
    return value


def partner_slug(value: str) -> str:
    if not PARTNER_SLUG.fullmatch(value):
        raise ValueError(f"not a partner slug ({PARTNER_SLUG.pattern})")
    return value


def _free_text(value: str) -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"a text of {len(value)} characters; at most {MAX_TEXT_CHARS}")
    _utf8_size(value)
    return value


def _line_time(value: datetime) -> datetime:
    # The year on the partner's own clock is checked before anything converts it: converting year 1 at +14:00
    # to UTC is itself the overflow.
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year {value.year} is outside {EARLIEST_YEAR}..{LATEST_YEAR}")
    return value


def _bounded_exponent(value: Decimal, what: str) -> None:
    # Also bounds a zero such as 0E+999999, which passes every comparison but no DynamoDB number (1E-130..1E+125).
    exponent = value.as_tuple().exponent  # a letter for NaN and infinity
    if not isinstance(exponent, int) or not -MAX_AMOUNT_PLACES <= exponent <= 7:
        raise ValueError(f"{what} {brief(value)} is not a plain decimal (at most {MAX_AMOUNT_PLACES} decimal places)")


def _line_amount(value: Decimal) -> Decimal:
    _non_negative(value)
    _bounded_exponent(value, "amount")
    return value


def _usd_rate(value: Decimal) -> Decimal:
    if not value.is_finite() or not MIN_USD_RATE <= value <= MAX_USD_RATE:
        raise ValueError(
            f"usd_rate {brief(value)} is not a plausible rate ({MIN_USD_RATE} to {MAX_USD_RATE} units per USD)"
        )
    _bounded_exponent(value, "usd_rate")
    return value


LineId = Annotated[str, AfterValidator(_line_id)]
FreeText = Annotated[str, AfterValidator(_free_text)]
LineTime = Annotated[datetime, AfterValidator(_aware), AfterValidator(_line_time)]
LineAmount = Annotated[Decimal, AfterValidator(_line_amount)]
UsdRate = Annotated[Decimal, AfterValidator(_usd_rate)]
LineCurrency = Annotated[str, AfterValidator(_currency), AfterValidator(iso_currency)]
