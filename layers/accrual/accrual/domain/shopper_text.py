"""The short text a shopper reads in a notification, in the shopper's language (Russian or English).

Pure. The language comes from the country of the click the order was decided by (`language_of`): Russian for the
countries in RUSSIAN_COUNTRIES, English elsewhere; without a country (an older click, a claim the site sent without
one) the account currency decides (RUSSIAN_CURRENCIES), else English. The text says what changed, how much in the
account currency (and USD), and, in plain words, why: the reason for a decline or a reversal, and why a rate is lower
than the shopper may have expected ("the product is not in the affiliate programme, so the rate is 1% and not
5.5%"). The decision trail stays the full explanation (`accrual explain`); this is the one paragraph for a push or
an e-mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accrual.domain.decision import OrderDecision
from accrual.domain.models import Click

LANGUAGES = ("en", "ru")
FALLBACK_LANGUAGE = "en"
RUSSIAN_COUNTRIES = frozenset({"RU", "BY", "KZ", "KG", "TJ", "UZ", "AM", "AZ", "MD"})
RUSSIAN_CURRENCIES = frozenset({"RUB", "BYN", "KZT", "KGS"})


# A partner's value (an order number, an item id, a promo code) placed in a shopper's text is a plain token: letters,
# digits and "-", "_", "#" only, at most this many characters. Nothing a partner writes can become a new line or
# paragraph, markup (`<`, `>`), a link (a scheme needs ":", a host "."), or reorder the text (bidi controls).
MAX_TOKEN_CHARS = 64
SHORTENED = "…"


def _plain(char: str) -> bool:
    return char.isalnum() or char in "-_#"


def shopper_token(value: object) -> str:
    """`value` as a shopper may read it: its leading run of plain characters (letters, digits, "-", "_", "#"), with
    "…" where anything was left out (the rest after a character that is not plain, or beyond MAX_TOKEN_CHARS)."""
    text = "" if value is None else str(value)
    end = 0
    while end < len(text) and end < MAX_TOKEN_CHARS and _plain(text[end]):
        end += 1
    if end == len(text):
        return text
    return text[: min(end, MAX_TOKEN_CHARS - len(SHORTENED))] + SHORTENED


def language_of(country: str | None, account_currency: str | None = None) -> str:
    if country:
        return "ru" if country.upper() in RUSSIAN_COUNTRIES else "en"
    if account_currency and account_currency.upper() in RUSSIAN_CURRENCIES:
        return "ru"
    return FALLBACK_LANGUAGE


def percent(rate: str | Decimal) -> str:
    value = (Decimal(rate) * 100).normalize()
    return f"{value:f}%"


# the reason for an exclusion, in a few plain words a shopper understands
_WHY = {
    "en": {
        "PARTNER_INVALID": "the store cancelled the order{detail}",
        "PARTNER_SETTLED_AT_ZERO": "the store's final amount for the order is 0 (refunded or adjusted)",
        "AWAITING_PAYMENT_EXPIRED": "the order was not paid within the time allowed",
        "PROMO_SECTION_3_FOR_5_99": 'it was bought in the "3 for $5.99" section, which earns no cashback',
        "SHOP_EXCLUDED": "this seller does not pay cashback",
        "CART_BEFORE_CLICK": "the item was in the cart before you followed the cashback link",
        "VIRTUAL_PRODUCT": "gift cards, software, games and services earn no cashback",
        "DISPUTE_OR_PRICE_ADJUSTED": "a dispute was opened or the seller changed the price after the order",
        "PROMO_CODE_NOT_ALLOWED": "a promo code was used that is neither ours nor the seller's coupon",
        "MULTI_ACCOUNT_NEW_USER_COUPON": "new-user coupons were used from several store accounts",
        "BELOW_MINIMUM": "the cashback would be under 0.01 USD",
        "UNATTRIBUTED": "we could not link the order to a click on our cashback link",
        "ATTRIBUTION_CONFLICT": "the order's items were bought through links of different shoppers",
        "NO_RATE_CARD": "the store paid no cashback at the time of your click",
    },
    "ru": {
        "PARTNER_INVALID": "магазин отменил заказ{detail}",
        "PARTNER_SETTLED_AT_ZERO": "итоговая сумма магазина по заказу — 0 (возврат или изменение)",
        "AWAITING_PAYMENT_EXPIRED": "заказ не был оплачен в отведённый срок",
        "PROMO_SECTION_3_FOR_5_99": "товар куплен в разделе «3 за $5.99», где кэшбэк не начисляется",
        "SHOP_EXCLUDED": "этот продавец не платит кэшбэк",
        "CART_BEFORE_CLICK": "товар был в корзине до перехода по кэшбэк-ссылке",
        "VIRTUAL_PRODUCT": "за подарочные карты, программы, игры и услуги кэшбэк не начисляется",
        "DISPUTE_OR_PRICE_ADJUSTED": "по заказу открыт спор или продавец изменил цену после заказа",
        "PROMO_CODE_NOT_ALLOWED": "применён промокод, который не является ни нашим, ни купоном продавца",
        "MULTI_ACCOUNT_NEW_USER_COUPON": "купоны новых покупателей использованы с нескольких аккаунтов магазина",
        "BELOW_MINIMUM": "кэшбэк меньше 0,01 USD",
        "UNATTRIBUTED": "мы не смогли связать заказ с переходом по нашей кэшбэк-ссылке",
        "ATTRIBUTION_CONFLICT": "товары заказа куплены по ссылкам разных пользователей",
        "NO_RATE_CARD": "на момент перехода магазин не платил кэшбэк",
    },
}
_DETAIL = {
    "en": {"FullRefund": " (full refund)", "Antispam": " (flagged by the store's checks)"},
    "ru": {"FullRefund": " (полный возврат)", "Antispam": " (отклонён проверкой магазина)"},
}

_HEAD = {
    "en": {
        "cashback.pending": "Cashback {amount} for order {order} is pending: it is confirmed when the store settles"
        " the order.",
        "cashback.updated": "Cashback for order {order} changed by {change}; it is now {amount}.",
        "cashback.confirmed": "Cashback {amount} for order {order} is confirmed and added to your balance.",
        "cashback.declined": "Order {order} earns no cashback",
        "cashback.reversed": "Cashback {taken} for order {order} is taken back",
    },
    "ru": {
        "cashback.pending": "Кэшбэк {amount} за заказ {order} ожидает подтверждения: он будет подтверждён, когда"
        " магазин закроет заказ.",
        "cashback.updated": "Кэшбэк за заказ {order} изменился на {change}; теперь {amount}.",
        "cashback.confirmed": "Кэшбэк {amount} за заказ {order} подтверждён и зачислен на баланс.",
        "cashback.declined": "За заказ {order} кэшбэк не начислен",
        "cashback.reversed": "Кэшбэк {taken} за заказ {order} списан",
    },
}
_BECAUSE = {"en": ": {why}.", "ru": ": {why}."}
_REDUCED = {
    "en": "The product is not in the store's affiliate programme, so the rate is {rate} and not {category_rate}.",
    "ru": "Товар не участвует в партнёрской программе магазина, поэтому ставка {rate}, а не {category_rate}.",
}
_CAPPED = {"en": "Cashback per order is capped at {cap} USD.", "ru": "Кэшбэк за один заказ не больше {cap} USD."}
_PARTLY = {"en": "Some items earn nothing: {why}.", "ru": "За часть товаров кэшбэк не начислен: {why}."}
_MOVED = {
    "en": "Cashback for order {order} was moved: the store reported its items under another order or shopper.",
    "ru": "Кэшбэк за заказ {order} перенесён: магазин отнёс товары к другому заказу или покупателю.",
}
_REVIEW = {
    "en": "Cashback for order {order} is on hold while we check the order.",
    "ru": "Кэшбэк за заказ {order} временно удержан, пока мы проверяем заказ.",
}
_CLAIMED = {
    "en": "We found it through your missing-cashback claim.",
    "ru": "Мы нашли его по вашей заявке на потерянный кэшбэк.",
}


def _money(amount: str, currency: str, usd: str | None = None) -> str:
    text = f"{Decimal(amount):.2f} {currency}"
    if usd is not None and currency != "USD":
        text += f" ({Decimal(usd):.2f} USD)"
    return text


def _why(codes: list[str], lang: str, detail: str | None) -> str:
    words = []
    for code in codes:
        template = _WHY[lang].get(code)
        if template is None:
            continue
        words.append(template.format(detail=_DETAIL[lang].get(detail or "", "")))
    return "; ".join(dict.fromkeys(words))


def _exclusions(decision: OrderDecision) -> tuple[list[str], list[str]]:
    """(codes that exclude every line, codes that exclude only some lines)."""
    excluded = [line.exclusion for line in decision.lines if line.exclusion]
    if excluded and len(excluded) == len(decision.lines):
        return sorted(set(excluded)), []
    return [], sorted(set(excluded))


def _reduced_rate(decision: OrderDecision) -> tuple[str, str] | None:
    for step in decision.trail:
        numbers = step.numbers
        if (
            step.rule == "rate"
            and numbers.get("source") == "non_affiliate"
            and Decimal(numbers.get("category_rate", "0")) > Decimal(numbers.get("rate", "0"))
        ):
            return percent(numbers["rate"]), percent(numbers["category_rate"])
    return None


def cashback_text(
    body: Mapping[str, Any], decision: OrderDecision, lang: str, *, status_detail: str | None = None
) -> str:
    """The shopper's paragraph for a `cashback.*` notification body (the fields of the published message)."""
    event, order, currency = body["event_type"], shopper_token(body["order_id"]), body["account_currency"]
    amount = _money(body["cashback"], currency, body["cashback_usd"])
    change = body.get("change") or {}
    delta = Decimal(change.get("pending", "0")) + Decimal(change.get("confirmed", "0"))
    delta_usd = Decimal(change.get("pending_usd", "0")) + Decimal(change.get("confirmed_usd", "0"))
    state = body.get("state")
    if state == "moved":
        return _MOVED[lang].format(order=order)
    if state == "on_review" and event == "cashback.updated":
        return _REVIEW[lang].format(order=order)
    all_out, some_out = _exclusions(decision)
    detail = status_detail or _status_detail(decision)
    parts = []
    template = _HEAD[lang].get(event, _HEAD[lang]["cashback.updated"])
    head = template.format(
        order=order,
        amount=amount,
        change=_money(str(delta), currency, str(delta_usd)),
        taken=_money(str(abs(delta)), currency, str(abs(delta_usd))),
    )
    if event in ("cashback.declined", "cashback.reversed"):
        why = _why(all_out or list(decision.reasons), lang, detail)
        if not why and event == "cashback.reversed":
            why = _WHY[lang]["PARTNER_INVALID"].format(detail=_DETAIL[lang].get(detail or "", ""))
        head += _BECAUSE[lang].format(why=why) if why else "."
    parts.append(head)
    if any(step.rule == "claim" for step in decision.trail) and event == "cashback.pending":
        parts.append(_CLAIMED[lang])
    if event not in ("cashback.declined", "cashback.reversed"):
        reduced = _reduced_rate(decision)
        if reduced:
            parts.append(_REDUCED[lang].format(rate=reduced[0], category_rate=reduced[1]))
        if some_out:
            parts.append(_PARTLY[lang].format(why=_why(some_out, lang, detail)))
        cap = next((step.numbers.get("cap") for step in decision.trail if step.rule == "cap"), None)
        if cap:
            parts.append(_CAPPED[lang].format(cap=f"{Decimal(cap):.2f}"))
    return " ".join(parts)


def _status_detail(decision: OrderDecision) -> str | None:
    for step in decision.trail:
        detail = step.numbers.get("status_detail") if step.rule == "exclusion" else None
        if detail:
            return detail
    return None


def message_texts(body: Mapping[str, Any], decision: OrderDecision, click: Click | None) -> dict[str, str]:
    """What the notification builder adds to a `cashback.*` body: the language and the shopper's text."""
    lang = language_of(click.country if click else None, body.get("account_currency"))
    return {"lang": lang, "text": cashback_text(body, decision, lang)}


# ---- claims ------------------------------------------------------------------------------------------------------
_CLAIM = {
    "en": {
        "claim.resolved": "Your missing-cashback claim for order {number} is resolved: we found the order{cashback}.",
        "claim.escalated": "We have not found order {number} in the store's reports yet; your claim has been passed"
        " to our support team, who will reply to you.",
        "claim.rejected": "Your missing-cashback claim for order {number} cannot be accepted: {why}.",
        "cashback": ", cashback {amount}",
        "nothing": ", but it earns no cashback: {why}",
        "ORDER_OF_ANOTHER_SHOPPER": "this order is credited to another account",
        "UNKNOWN_SHOPPER": "we have no record of you following a cashback link",
        "REJECTED_BY_AGENT": "our support team checked the order and could not confirm it is yours",
        "ANOTHER_CLAIM_APPROVED": "our support team found that the order belongs to another account",
        "claim.needs_review": "Your missing-cashback claim for order {number} needs a check by our support team,"
        " who will reply to you.",
    },
    "ru": {
        "claim.resolved": "Ваша заявка на потерянный кэшбэк по заказу {number} решена: мы нашли заказ{cashback}.",
        "claim.escalated": "Заказ {number} пока не найден в отчётах магазина; заявка передана в службу поддержки,"
        " она ответит вам.",
        "claim.rejected": "Заявку на потерянный кэшбэк по заказу {number} принять нельзя: {why}.",
        "cashback": ", кэшбэк {amount}",
        "nothing": ", но кэшбэк за него не начисляется: {why}",
        "ORDER_OF_ANOTHER_SHOPPER": "этот заказ начислен другому аккаунту",
        "UNKNOWN_SHOPPER": "у нас нет ваших переходов по кэшбэк-ссылкам",
        "REJECTED_BY_AGENT": "служба поддержки проверила заказ и не смогла подтвердить, что он ваш",
        "ANOTHER_CLAIM_APPROVED": "служба поддержки установила, что заказ принадлежит другому аккаунту",
        "claim.needs_review": "Заявку на потерянный кэшбэк по заказу {number} проверит служба поддержки,"
        " она ответит вам.",
    },
}


def claim_text(claim: Any, order: Mapping[str, Any], decision: OrderDecision | None, lang: str) -> str:
    """The shopper's paragraph for a `claim.*` notification (`claim` is accrual.domain.claims.Claim); a claim that
    waits for an agent is announced as `claim.escalated`, in its own words."""
    words = _CLAIM[lang]
    state = str(claim.state)
    event = "claim.escalated" if state == "needs_review" else f"claim.{state}"
    if event == "claim.rejected":
        why = words.get(claim.reason or "", claim.reason or "")  # a code's words, or the agent's own
        return words[event].format(number=shopper_token(claim.order_number), why=why)
    if event == "claim.escalated":
        key = "claim.needs_review" if state == "needs_review" else event
        return words[key].format(number=shopper_token(claim.order_number))
    cashback = ""
    if Decimal(order.get("cashback") or "0") > 0:
        cashback = words["cashback"].format(
            amount=_money(order["cashback"], order["account_currency"], order.get("cashback_usd"))
        )
    elif decision is not None:
        all_out, _ = _exclusions(decision)
        why = _why(all_out or list(decision.reasons), lang, _status_detail(decision))
        if why:
            cashback = words["nothing"].format(why=why)
    return words["claim.resolved"].format(number=shopper_token(claim.order_number), cashback=cashback)
