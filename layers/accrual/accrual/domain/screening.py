"""Checks of a normalised line against the accrual configuration, made before the ledger sees it.

A reader knows the partner's format; only the configuration knows which partners exist and what a currency was worth
on a day. A line that fails here is quarantined with its reason like a line that could not be read, so an inverted
exchange rate or an unknown partner never reaches a shopper's balance (docs/rules.md, "Identity and integrity").
"""

from __future__ import annotations

from accrual.domain.decision import MissingFxRate
from accrual.domain.models import MAX_LINE_AMOUNT, AccrualConfig, OrderLine
from accrual.domain.rules import fx_rate_on, line_day


def screen_line(line: OrderLine, config: AccrualConfig) -> str | None:
    """None when the line may be reconciled, else the reason it is quarantined (naming the field and the value)."""
    partners = config.partners
    if line.partner not in partners:
        return (
            f"partner={line.partner!r}: not a partner of configuration {config.version} "
            f"(known: {', '.join(sorted(partners))})"
        )
    if line.currency == "USD":
        return None
    day = line_day(line)
    try:
        configured, fx_day = fx_rate_on(config, line.currency, day)
    except MissingFxRate:
        if line.usd_rate is None:
            return (
                f"currency={line.currency!r}: the report gives no usd_rate and configuration {config.version} "
                f"has no fx rate for {line.currency} on or before {day.isoformat()}"
            )
        # a reported rate nobody can check could be inverted or off by a power of ten: it is not paid on trust
        return (
            f"usd_rate={line.usd_rate}: cannot be checked, configuration {config.version} has no fx rate for "
            f"{line.currency} on or before {day.isoformat()}"
        )
    rate = line.usd_rate if line.usd_rate is not None else configured
    if line.usd_rate is not None:
        tolerance = config.fx_tolerance
        deviation = abs(line.usd_rate / configured - 1)
        if deviation > tolerance:
            return (
                f"usd_rate={line.usd_rate}: {deviation:.0%} away from the configured {line.currency} rate "
                f"{configured} of {fx_day.isoformat() if fx_day else day.isoformat()} "
                f"(tolerance {tolerance:.0%}); an inverted or mistyped rate is not paid"
            )
    if line.amount / rate > MAX_LINE_AMOUNT:
        return (
            f"amount={line.amount} {line.currency}: {line.amount / rate:.2f} USD is above the plausible maximum "
            f"{MAX_LINE_AMOUNT} USD"
        )
    return None
