"""Money arithmetic: Decimal only, rounding half up to cents, and conversion between USD and other currencies."""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_cents(amount: Decimal) -> Decimal:
    """Round half up to cents (the rounding the service promises shoppers)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def floor_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_DOWN)


def usd_from(amount: Decimal, currency: str, usd_rate: Decimal | None) -> Decimal:
    """An amount in `currency` expressed in USD; `usd_rate` is units of `currency` per 1 USD (unrounded)."""
    if currency == "USD":
        return amount
    if usd_rate is None or usd_rate <= 0:
        raise ValueError(f"no usable usd_rate for {currency}")
    return amount / usd_rate


def to_account_currency(amount_usd: Decimal, rate: Decimal) -> Decimal:
    """USD to the account currency at `rate` (units per 1 USD), rounded half up to 2 decimals."""
    return to_cents(amount_usd * rate)


def money_str(amount: Decimal) -> str:
    """Decimal string with exactly two decimals, the wire format of every amount this job prints or publishes."""
    return str(to_cents(amount))
