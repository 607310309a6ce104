"""The decision trail's steps, built from what each rule returned (the rules themselves compute and return values;
they do not write the trail). One function per step kind; `accrual.domain.trail` renders the steps in words.

The steps' rule names, numbers and notes are stored with every decision: changing what a step records changes the
stored JSON, and the audit compares it byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from accrual.domain.decision import Base, Code, Outcome, RateChoice, TrailStep
from accrual.domain.models import AccrualConfig, Click, OrderLine, RateCard
from accrual.domain.reasons import note

TRAIL_TEXT_LIMIT = 80


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def _short(text: str) -> str:
    return text if len(text) <= TRAIL_TEXT_LIMIT else text[: TRAIL_TEXT_LIMIT - 1] + "…"


def step(
    rule: str, code: Code | None, line_id: str | None, numbers: Mapping[str, str], note_text: str = ""
) -> TrailStep:
    return TrailStep(
        rule=rule, code=code.value if code is not None else None, line_id=line_id, numbers=dict(numbers), note=note_text
    )


# --- the order's inputs ----------------------------------------------------------------------------------------------


def inputs(click: Click, config: AccrualConfig) -> TrailStep:
    numbers = {
        "config_version": config.version,
        "sub_id": click.sub_id,
        "user_id": click.user_id,
        "clicked_at": _iso(click.clicked_at),
        "account_currency": click.account_currency,
    }
    return step("inputs", None, None, numbers, "the click and the configuration the order is decided by")


def rate_card(card: RateCard) -> TrailStep:
    numbers = {"partner": card.partner, "valid_from": _iso(card.valid_from), "valid_to": _iso(card.valid_to)}
    return step("rate_card", None, None, numbers, "the rate card in force at the click")


def multi_account(conflicting: tuple[str, ...], other_accounts: frozenset[str]) -> TrailStep:
    code = Code.MULTI_ACCOUNT_NEW_USER_COUPON
    numbers = {"buyer_accounts": ",".join(conflicting), "other_accounts": ",".join(sorted(other_accounts))}
    return step("multi_account", code, None, numbers, note(code))


def without_shopper(config: AccrualConfig, sub_ids: str, conflict: tuple[str, ...]) -> list[TrailStep]:
    """No click names a shopper (unattributed), or the lines' clicks name several (a conflict held for review)."""
    given = {"config_version": config.version, "sub_id": sub_ids}
    if conflict:
        code = Code.ATTRIBUTION_CONFLICT
        return [
            step("inputs", None, None, given, "the lines' clicks name different shoppers"),
            step("attribution_conflict", code, None, {"user_ids": ",".join(conflict), "sub_id": sub_ids}, note(code)),
        ]
    code = Code.UNATTRIBUTED
    return [
        step("inputs", None, None, given, "no click matches the tracking value"),
        step("unattributed", code, None, {"sub_id": sub_ids}, note(code)),
    ]


# --- one line --------------------------------------------------------------------------------------------------------


def base(line: OrderLine, found: Base) -> list[TrailStep]:
    numbers = {
        "amount": str(found.amount),
        "currency": line.currency,
        "tax": str(found.tax),
        "shipping": str(found.shipping),
        "base": str(found.base),
        "base_usd": str(found.base_usd),
    }
    if line.currency != "USD":
        numbers["usd_rate"] = str(found.usd_rate)
        numbers["usd_rate_source"] = (
            "report" if found.usd_rate_day is None else f"configuration fx_rates {found.usd_rate_day.isoformat()}"
        )
    steps = [step("base", None, line.line_id, numbers, "item amount without VAT and shipping, in USD")]
    if Code.VAT_EXCLUDED in found.codes:
        vat = {"tax": str(found.tax), "amount": str(found.amount), "currency": line.currency}
        if found.vat_rate is not None:
            vat.update(vat_rate=str(found.vat_rate), country=line.ship_to_country or "")
            vat_note = f"VAT not reported: taken out at the {line.ship_to_country} rate"
        else:
            vat_note = note(Code.VAT_EXCLUDED)
        steps.append(step("vat", Code.VAT_EXCLUDED, line.line_id, vat, vat_note))
    if Code.SHIPPING_EXCLUDED in found.codes:
        steps.append(
            step(
                "shipping",
                Code.SHIPPING_EXCLUDED,
                line.line_id,
                {"shipping": str(found.shipping), "currency": line.currency},
                note(Code.SHIPPING_EXCLUDED),
            )
        )
    return steps


def exclusion_numbers(
    code: Code, line: OrderLine, click: Click, *, now: datetime, deadline: datetime, awaiting_payment_days: int
) -> dict[str, str]:
    """The figures an exclusion is explained with."""
    if code == Code.PARTNER_INVALID:
        # the partner's free text is shortened: a trail stays small however many lines an order has
        return {"status": line.status.value, "status_detail": _short(line.status_detail or "")}
    if code == Code.PARTNER_SETTLED_AT_ZERO:
        return {"status": line.status.value, "amount": str(line.amount), "currency": line.currency}
    if code == Code.AWAITING_PAYMENT_EXPIRED:
        return {
            "ordered_at": _iso(line.ordered_at),
            "deadline": _iso(deadline),
            "paid_at": _iso(line.paid_at),
            "now": _iso(now),
            "awaiting_payment_days": str(awaiting_payment_days),
        }
    if code == Code.PROMO_SECTION_3_FOR_5_99:
        return {"promo_section": line.promo_section or ""}
    if code == Code.SHOP_EXCLUDED:
        return {"shop_id": line.shop_id or ""}
    if code == Code.CART_BEFORE_CLICK:
        return {"added_to_cart_at": _iso(line.added_to_cart_at), "clicked_at": _iso(click.clicked_at)}
    if code == Code.VIRTUAL_PRODUCT:
        return {"category_id": line.category_id or ""}
    if code == Code.DISPUTE_OR_PRICE_ADJUSTED:
        return {"dispute": str(line.dispute).lower(), "price_adjusted": str(line.price_adjusted).lower()}
    if code == Code.PROMO_CODE_NOT_ALLOWED:
        kind = line.promo_code_kind.value if line.promo_code_kind is not None else ""
        return {"promo_code": line.promo_code or "", "promo_code_kind": kind}
    return {"partner": line.partner, "clicked_at": _iso(click.clicked_at)}


def exclusions(line_id: str, fired: tuple[Code, ...], numbers_of: Mapping[Code, Mapping[str, str]]) -> list[TrailStep]:
    """Every exclusion that fired, in precedence order; the first is decisive."""
    return [
        step("exclusion", code, line_id, {"decisive": "yes" if position == 0 else "no", **numbers_of[code]}, note(code))
        for position, code in enumerate(fired)
    ]


def rate(line_id: str, choice: RateChoice) -> list[TrailStep]:
    numbers = {"rate": str(choice.rate), "source": choice.source, "category_rate": str(choice.category_rate)}
    numbers.update({f"candidate:{source}": str(candidate) for source, candidate in choice.candidates})
    main_code = next((code for code in choice.codes if code != Code.RATE_LIMITED_TO_MAX), None)
    rate_note = note(Code.NON_AFFILIATE_RATE) if choice.source == "non_affiliate" else "highest candidate at the click"
    steps = [step("rate", main_code, line_id, numbers, rate_note)]
    if Code.RATE_LIMITED_TO_MAX in choice.codes:
        steps.append(
            step(
                "rate_limit",
                Code.RATE_LIMITED_TO_MAX,
                line_id,
                {"rate_before": str(choice.winning_rate), "max_rate": str(choice.rate)},
                note(Code.RATE_LIMITED_TO_MAX),
            )
        )
    return steps


def below_minimum(line_id: str, base_usd: Decimal, line_rate: Decimal, raw: Decimal, minimum: Decimal) -> TrailStep:
    numbers = {"base_usd": str(base_usd), "rate": str(line_rate), "raw": str(raw), "minimum": str(minimum)}
    return step("minimum", Code.BELOW_MINIMUM, line_id, numbers, note(Code.BELOW_MINIMUM))


def cashback(line_id: str, base_usd: Decimal, line_rate: Decimal, raw: Decimal, cents: Decimal) -> TrailStep:
    numbers = {"base_usd": str(base_usd), "rate": str(line_rate), "raw": str(raw), "cashback_usd": str(cents)}
    return step("cashback", None, line_id, numbers, "base x rate, rounded half up to cents")


# --- the order's totals ----------------------------------------------------------------------------------------------


def total(cashback_usd: Decimal) -> TrailStep:
    return step("total", None, None, {"cashback_usd": str(cashback_usd)}, "sum of the lines")


def cap(before: Decimal, cap_usd: Decimal, after: Decimal) -> TrailStep:
    numbers = {"before": str(before), "cap": str(cap_usd), "after": str(after)}
    return step("cap", Code.CAP_APPLIED, None, numbers, note(Code.CAP_APPLIED))


def cap_share(line_id: str, before: Decimal, after: Decimal) -> TrailStep:
    return step(
        "cap_share",
        Code.CAP_APPLIED,
        line_id,
        {"before": str(before), "after": str(after)},
        "the line's share of the cap, in proportion to what it earned (largest remainder)",
    )


def commission_share(cashback_usd: Decimal, commission_usd: Decimal, share: Decimal) -> TrailStep:
    code = Code.OVER_COMMISSION_SHARE
    numbers = {
        "cashback_usd": str(cashback_usd),
        "commission_usd": str(commission_usd),
        "max_cashback_share": str(share),
        "limit_usd": str(share * commission_usd),
    }
    return step("commission_share", code, None, numbers, note(code))


def fx(
    cashback_usd: Decimal, fx_rate: Decimal, fx_day: date | None, credited_on: date, currency: str, converted: Decimal
) -> TrailStep:
    numbers = {
        "cashback_usd": str(cashback_usd),
        "rate": str(fx_rate),
        "day": fx_day.isoformat() if fx_day else "",
        "credited_on": credited_on.isoformat(),
        "currency": currency,
        "cashback": str(converted),
    }
    return step("fx", Code.FX_CONVERTED, None, numbers, note(Code.FX_CONVERTED))


def outcome(result: Outcome, cashback_usd: Decimal | str, converted: Decimal | str, currency: str) -> TrailStep:
    numbers = {
        "outcome": result.value,
        "cashback_usd": str(cashback_usd),
        "cashback": str(converted),
        "currency": currency,
    }
    return step("outcome", None, None, numbers)
