"""The decision trail in plain words, English ("en") or Russian ("ru").

`render_trail` reads only the stored `OrderDecision` (its trail steps and totals), so support can answer "why 1% and not
5.5%?" or "why is my cashback smaller than 5% of the order?" for any order, with the figures it was decided by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from accrual.domain import reasons
from accrual.domain.decision import Code, OrderDecision, Outcome, TrailStep
from accrual.domain.money import money_str
from accrual.domain.reasons import LANGUAGES
from accrual.domain.shopper_text import shopper_token
from accrual.domain.trail_words import OUTCOME as _OUTCOME
from accrual.domain.trail_words import TEXT as _TEXT


def percent(rate: str | Decimal) -> str:
    """A fraction as a percentage without trailing zeros: 0.055 -> "5.5%"."""
    value = (Decimal(rate) * 100).normalize()
    return f"{value:f}%"


def money(amount: str | Decimal) -> str:
    return money_str(Decimal(amount))


def _amount(amount: str | Decimal) -> str:
    """An amount in cents when it is whole cents, else to 4 decimals: the base a product is computed from is shown
    as it was used, so that base x rate visibly gives the product."""
    value = Decimal(amount)
    return money(value) if value == value.quantize(Decimal("0.01")) else _raw(str(amount))


_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|\+00:00)?")


def _time(value: Any) -> str:
    """A stored time as the explanation shows it: to the second, UTC written Z, as the timeline does (the ledger
    keeps microseconds; a reader has no use for them)."""
    return _TIME.sub(lambda match: match[1] + ("Z" if match[2] else ""), str(value))


def _fx_rate(rate: str) -> str:
    return f"{Decimal(rate).normalize():f}"


def _rate_source_words(source: str, lang: str) -> str:
    if source.startswith("category:"):
        category = shopper_token(source.split(":", 1)[1])  # the partner's category id
        return f"category {category}" if lang == "en" else f"категория {category}"
    if source.startswith("promotion:"):
        start = _time(source.split(":", 1)[1])
        return f"promotion started {start}" if lang == "en" else f"акция с {start}"
    return {
        "en": {"default": "default rate", "hot": "hot product", "non_affiliate": "non-affiliate product"},
        "ru": {"default": "базовая ставка", "hot": "горячий товар", "non_affiliate": "товар вне партнёрской программы"},
    }[lang].get(source, source)


def _raw(amount: str) -> str:
    """An unrounded amount shown to 4 decimals: enough to see why it rounds the way it does."""
    try:
        return f"{Decimal(amount).quantize(Decimal('0.0001')):f}"
    except InvalidOperation:
        return amount


# The trail figures that are a partner's text (ids, codes, sub-reasons): shown as plain tokens (shopper_token).
_PARTNER_TEXT = ("shop_id", "category_id", "promo_code", "promo_code_kind", "promo_section", "status_detail", "sub_id")


def _exclusion_sentence(step: TrailStep, lang: str) -> str:
    numbers = {
        name: shopper_token(value) if name in _PARTNER_TEXT else _time(value) for name, value in step.numbers.items()
    }
    detail = numbers.get("status_detail", "")
    numbers["detail"] = f" ({detail})" if detail else ""
    numbers["days"] = numbers.get("awaiting_payment_days", "")
    paid_at = numbers.get("paid_at", "")
    numbers["paid"] = _TEXT[lang]["paid_late"].format(paid_at=paid_at) if paid_at else ""
    return (reasons.why(Code(str(step.code)), lang) or str(step.code)).format_map(_Default(numbers))


class _Default(dict):
    """Formatting that leaves a missing figure empty instead of failing: old trails may lack newer numbers."""

    def __missing__(self, key: str) -> str:
        return ""


_LINE_STATUS = {
    "en": {
        "awaiting_payment": "awaiting payment",
        "paid": "paid",
        "received": "received by the buyer",
        "settled": "settled",
        "invalid": "invalid",
    },
    "ru": {
        "awaiting_payment": "ожидает оплаты",
        "paid": "оплачена",
        "received": "получена покупателем",
        "settled": "завершена",
        "invalid": "недействительна",
    },
}
_STATE = {
    "en": {
        "declined": "declined",
        "on_review": "held for review",
        "unattributed": "no longer attributed",
        "awaiting_payment": "back to awaiting payment",
        "moved": "moved to another order",
        "pending": "pending",
        "confirmed": "confirmed",
        "reversed": "reversed",
    },
    "ru": {
        "declined": "отклонён",
        "on_review": "на проверке",
        "unattributed": "больше не связан с переходом",
        "awaiting_payment": "снова ожидает оплаты",
        "moved": "перенесён в другой заказ",
        "pending": "в ожидании",
        "confirmed": "подтверждён",
        "reversed": "списан",
    },
}
# The lifecycle's refusals (accrual.domain.lifecycle), in words; another reason is shown as it is recorded.
_REFUSAL = {
    "en": {
        "reversed is final": "cashback that was clawed back is not given again",
        "confirmed amount does not grow": "confirmed cashback does not grow",
        "confirmed does not go back to pending": "confirmed cashback does not go back to pending",
    },
    "ru": {
        "reversed is final": "списанный обратно кэшбэк повторно не начисляется",
        "confirmed amount does not grow": "подтверждённый кэшбэк не увеличивается",
        "confirmed does not go back to pending": "подтверждённый кэшбэк не возвращается в ожидание",
    },
}


def _payment_words(decision: OrderDecision) -> dict[str, str]:
    """How each item's amount is introduced: "paid", or "ordered ... and not paid" for an item still awaiting payment
    or past its payment deadline with no payment, or just "ordered" for one the store invalidated (the stored
    decision does not say whether it had been paid)."""
    words = {
        line.line_id: "base_unpaid"
        if line.status == "awaiting_payment"
        else "base_invalid"
        if line.status == "invalid"
        else "base"
        for line in decision.lines
    }
    for step in decision.trail:
        if (
            step.rule == "exclusion"
            and step.code == Code.AWAITING_PAYMENT_EXPIRED.value
            and step.line_id
            and not step.numbers.get("paid_at")
        ):
            words[step.line_id] = "base_unpaid"
    return words


def _line_sentence(step: TrailStep, lang: str, paid_words: str = "base") -> str | None:
    text = _TEXT[lang]
    n = step.numbers
    if step.rule == "base":
        usd = ""
        if n.get("currency", "USD") != "USD":
            usd = text["usd"].format(usd_rate=_fx_rate(n.get("usd_rate", "1")), currency=n["currency"])
        return text[paid_words].format(
            amount=money(n["amount"]), currency=n["currency"], usd=usd, base_usd=_amount(n["base_usd"])
        )
    if step.rule == "vat":
        if "vat_rate" in n:
            return text["vat_country"].format(
                country=n.get("country", ""),
                vat_rate=percent(n["vat_rate"]),
                tax=money(n["tax"]),
                currency=n["currency"],
            )
        return text["vat_reported"].format(tax=money(n["tax"]), currency=n["currency"])
    if step.rule == "shipping":
        return text["shipping"].format(shipping=money(n["shipping"]), currency=n["currency"])
    if step.rule == "exclusion":
        key = "excluded" if n.get("decisive") == "yes" else "also"
        return text[key].format(why=_exclusion_sentence(step, lang))
    if step.rule == "rate":
        if n.get("source") == "non_affiliate":
            return text["non_affiliate"].format(rate=percent(n["rate"]), category_rate=percent(n["category_rate"]))
        candidates = ", ".join(
            f"{_rate_source_words(key.split(':', 1)[1], lang)} {percent(value)}"
            for key, value in n.items()
            if key.startswith("candidate:")
        )
        return text["rate"].format(
            rate=percent(n["rate"]), source=_rate_source_words(n["source"], lang), candidates=candidates
        )
    if step.rule == "rate_limit":
        return text["rate_limit"].format(rate_before=percent(n["rate_before"]), max_rate=percent(n["max_rate"]))
    if step.rule == "cashback":
        return text["cashback"].format(
            base_usd=_amount(n["base_usd"]),
            rate=percent(n["rate"]),
            raw=_raw(n["raw"]),
            cashback_usd=money(n["cashback_usd"]),
        )
    if step.rule == "minimum":
        return text["minimum"].format(
            base_usd=_amount(n["base_usd"]), rate=percent(n["rate"]), raw=_raw(n["raw"]), minimum=money(n["minimum"])
        )
    return None


def _order_sentence(step: TrailStep, lang: str) -> str | None:
    text = _TEXT[lang]
    n = step.numbers
    if step.rule == "attribution_conflict":
        return (reasons.short(Code.ATTRIBUTION_CONFLICT, lang) or "").capitalize() + "."
    if step.rule == "inputs":
        if "user_ids" in n or "clicked_at" not in n and step.note.startswith("the lines' clicks"):
            return None
        if "clicked_at" in n:
            return text["click"].format(clicked_at=_time(n["clicked_at"]))
        return text["no_click"].format(sub_id=shopper_token(n.get("sub_id", "")))
    if step.rule == "rate_card":
        return text["rate_card"].format(valid_from=_time(n["valid_from"]))
    if step.rule == "multi_account":
        accounts = ",".join(shopper_token(account) for account in n.get("buyer_accounts", "").split(","))
        return text["multi_account"].format(accounts=accounts)
    if step.rule == "commission_share":
        return text["commission_share"].format(
            cashback_usd=money(n["cashback_usd"]),
            share=n["max_cashback_share"],
            commission_usd=money(n["commission_usd"]),
            limit_usd=money(n["limit_usd"]),
        )
    if step.rule == "unattributed":
        return text["unattributed"]
    if step.rule == "total":
        return text["total"].format(cashback_usd=money(n["cashback_usd"]))
    if step.rule == "cap":
        return text["cap"].format(before=money(n["before"]), cap=money(n["cap"]), after=money(n["after"]))
    if step.rule == "cap_share":
        return text["cap_share"].format(
            line_id=shopper_token(step.line_id), before=money(n["before"]), after=money(n["after"])
        )
    if step.rule == "fx":
        return text["fx"].format(
            cashback_usd=money(n["cashback_usd"]),
            cashback=money(n["cashback"]),
            currency=n["currency"],
            rate=_fx_rate(n["rate"]),
            day=n.get("day", ""),
        )
    return None


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def _clawed_back(journal: Sequence[Mapping[str, Any]], lang: str) -> str | None:
    """'11.00 USD was confirmed and then clawed back' when confirmed money was taken back."""
    confirmed = sum(
        (_decimal(entry.get("confirmed_usd")) for entry in journal if entry.get("transition") == "post"), Decimal("0")
    )
    clawed = -sum(
        (_decimal(entry.get("confirmed_usd")) for entry in journal if entry.get("transition") == "reverse"),
        Decimal("0"),
    )
    if clawed <= 0:
        return None
    if clawed == confirmed:
        return _TEXT[lang]["clawed_back"].format(amount=money(clawed))
    return _TEXT[lang]["clawed_back_part"].format(confirmed=money(confirmed), amount=money(clawed))


def _history(journal: Sequence[Mapping[str, Any]], refused: Sequence[Mapping[str, Any]], lang: str) -> list[str]:
    """Every move of this order's money and every report that was not applied, in the order of the facts: a move is
    dated by the fact behind it (the report's status time, the claim's time, when the order fell due), never by the
    `now` of the command that read it, and never before the move it follows (the journal's own order), so a
    claw-back never appears before the confirmation it undoes."""
    text = _TEXT[lang]
    events: list[tuple[str, int, str]] = []
    pending = Decimal("0")
    latest = ""
    for position, entry in enumerate(journal):
        latest = max(latest, _moment(entry.get("fact_at") or entry.get("at")))
        transition, at = str(entry.get("transition", "")), latest
        pending_delta, confirmed_delta = _decimal(entry.get("pending_usd")), _decimal(entry.get("confirmed_usd"))
        pending += pending_delta
        state = _STATE[lang].get(str(entry.get("state_to", "")), str(entry.get("state_to", "")))
        if transition == "pending":
            sentence = text["pending"].format(at=at, amount=money(pending))
        elif transition == "adjust":
            sign = "+" if pending_delta > 0 else ""
            sentence = text["adjust"].format(at=at, delta=f"{sign}{money(pending_delta)}", amount=money(pending))
        elif transition == "post":
            sentence = text["post"].format(at=at, amount=money(confirmed_delta))
        elif transition == "void":
            sentence = text["void"].format(at=at, amount=money(-pending_delta), state=state)
        elif transition == "reverse":
            sentence = text["reverse"].format(at=at, amount=money(-confirmed_delta))
        else:
            sentence = f"{at}: {transition}"
        events.append((at, position, sentence))
    for position, item in enumerate(refused, start=len(events)):
        at = _moment(item.get("at"))  # when the report was read and refused
        reason = str(item.get("reason", ""))
        status = str(item.get("status", ""))
        sentence = text["refused"].format(
            at=at,
            line_id=shopper_token(item.get("line_id", "")),
            status=_LINE_STATUS[lang].get(status, status),
            status_at=item.get("status_at", ""),
            reason=_REFUSAL[lang].get(reason, reason),
        )
        events.append((at, position, sentence))
    return [sentence for _, _, sentence in sorted(events)]


def _moment(value: Any) -> str:
    """A time as the timeline sorts and shows it: UTC to the second (stored times differ in their fraction digits)."""
    text = str(value or "")
    return text[:19] + "Z" if len(text) >= 19 else text


def render_trail(
    decision: OrderDecision,
    lang: str = "en",
    *,
    journal: Sequence[Mapping[str, Any]] = (),
    refused: Sequence[Mapping[str, Any]] = (),
    review: str | None = None,
) -> str:
    """The decision explained in plain words: the order's result, each item's base, rate and exclusions, the cap, the
    currency conversion, and a closing "in short" sentence naming every reason the amount is what it is.

    With the order's `journal` (its money moves, oldest first: `transition`, `at`, `pending_usd` and `confirmed_usd`
    changes, `state_to`) and its `refused` reports (`line_id`, `status`, `status_at`, `reason`, `at`), the text also
    tells what happened to the money: what was pending, confirmed, withdrawn or clawed back, and which later reports
    were not applied and why. With the operator's `review` verdict ("released" or "declined") on an order held for
    review, the result and the closing sentence are the verdict's."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not supported; use one of {', '.join(LANGUAGES)}")
    text = _TEXT[lang]
    usd = money(decision.cashback_usd)
    verdict = review if decision.outcome == Outcome.ON_REVIEW and review in ("released", "declined") else None
    result = {None: decision.outcome, "released": Outcome.EARNS, "declined": Outcome.NOTHING}[verdict]
    if result == Outcome.EARNS and decision.cashback_usd == 0:
        result = Outcome.NOTHING
    refused = [{**item, "status_at": _time(item.get("status_at", ""))} for item in refused]
    outcome = _OUTCOME[lang][result].format(usd=usd)
    if decision.account_currency != "USD" and result in (Outcome.EARNS, Outcome.ON_REVIEW):
        outcome += f" = {money(decision.cashback)} {decision.account_currency}"
    clawed_back = _clawed_back(journal, lang)
    if clawed_back:
        outcome += f"; {clawed_back}"
    out = [
        text["header"].format(
            order_id=shopper_token(decision.order_id),
            partner=decision.partner,
            version=decision.config_version,
            outcome=outcome,
        )
    ]
    paid_words = _payment_words(decision)
    current_line: str | None = None
    for step in decision.trail:
        if step.line_id is not None and step.rule != "cap_share":
            if step.line_id != current_line:
                current_line = step.line_id
                out.append(text["line"].format(line_id=shopper_token(step.line_id)))
            sentence = _line_sentence(step, lang, paid_words.get(step.line_id, "base"))
            if sentence:
                out.append(f"  - {sentence}")
            continue
        current_line = None
        if step.rule == "fx" and result not in (Outcome.EARNS, Outcome.ON_REVIEW):
            continue  # nothing to convert
        sentence = _order_sentence(step, lang)
        if sentence:
            out.append(sentence)
    history = _history(journal, refused, lang)
    if history:
        out.append(text["history"])
        out.extend(f"  - {sentence}" for sentence in history)
    held = {Code.MULTI_ACCOUNT_NEW_USER_COUPON.value, Code.OVER_COMMISSION_SHARE.value, Code.ATTRIBUTION_CONFLICT.value}
    unsaid = held if verdict else set()
    if result not in (Outcome.EARNS, Outcome.ON_REVIEW):
        unsaid = unsaid | {Code.FX_CONVERTED.value}  # nothing was converted
    codes = [code for code in decision.reasons if code not in unsaid]
    short = [words for words in (reasons.short(Code(code), lang) for code in codes) if words]
    if verdict:
        short.append(text[verdict])
    whys = _exclusion_whys(decision, lang)
    if whys:
        every = all(line.exclusion for line in decision.lines)
        short.append(text["all_excluded" if every else "excluded_items"].format(why="; ".join(whys)))
    if short:
        out.append(text["in_short"].format(reasons="; ".join(short)))
    return "\n".join(out)


def _exclusion_whys(decision: OrderDecision, lang: str) -> list[str]:
    """Why the excluded items earn nothing, in words (each exclusion once, as its first decisive step says it)."""
    whys: dict[str, str] = {}
    excluded = {line.exclusion for line in decision.lines if line.exclusion}
    for step in decision.trail:
        code = step.code
        if step.rule == "exclusion" and code in excluded and code not in whys and reasons.why(Code(code), lang):
            whys[code] = _exclusion_sentence(step, lang)
    for code in excluded - whys.keys():  # a trail without the step: the sentence without its figures
        words = reasons.why(Code(code), lang)
        if words:
            whys[code] = words.format_map(_Default())
    return [whys[code] for code in sorted(whys)]
