"""The decision trail in plain words, English ("en") or Russian ("ru").

`render_trail` reads only the stored `OrderDecision` (its trail steps and totals), so support can answer "why 1% and not
5.5%?" or "why is my cashback smaller than 5% of the order?" for any order, with the figures it was decided by.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from accrual.domain.decision import Code, OrderDecision, Outcome, TrailStep
from accrual.domain.money import money_str

LANGUAGES = ("en", "ru")


def percent(rate: str | Decimal) -> str:
    """A fraction as a percentage without trailing zeros: 0.055 -> "5.5%"."""
    value = (Decimal(rate) * 100).normalize()
    return f"{value:f}%"


def money(amount: str | Decimal) -> str:
    return money_str(Decimal(amount))


def _fx_rate(rate: str) -> str:
    return f"{Decimal(rate).normalize():f}"


def _rate_source_words(source: str, lang: str) -> str:
    if source.startswith("category:"):
        category = source.split(":", 1)[1]
        return f"category {category}" if lang == "en" else f"категория {category}"
    if source.startswith("promotion:"):
        start = source.split(":", 1)[1]
        return f"promotion started {start}" if lang == "en" else f"акция с {start}"
    return {
        "en": {"default": "default rate", "hot": "hot product", "non_affiliate": "non-affiliate product"},
        "ru": {"default": "базовая ставка", "hot": "горячий товар", "non_affiliate": "товар вне партнёрской программы"},
    }[lang].get(source, source)


_OUTCOME = {
    "en": {
        Outcome.EARNS: "earns {usd} USD",
        Outcome.NOTHING: "earns nothing",
        Outcome.ON_REVIEW: "is on review ({usd} USD held until a decision)",
        Outcome.UNATTRIBUTED: "is not attributed to any click and earns nothing",
    },
    "ru": {
        Outcome.EARNS: "начислен кэшбэк {usd} USD",
        Outcome.NOTHING: "кэшбэк не начислен",
        Outcome.ON_REVIEW: "на проверке ({usd} USD удержано до решения)",
        Outcome.UNATTRIBUTED: "не связан ни с одним переходом, кэшбэк не начислен",
    },
}

_EXCLUSION = {
    "en": {
        Code.PARTNER_INVALID: "the store marked this item invalid{detail}, so it earns nothing",
        Code.AWAITING_PAYMENT_EXPIRED: "the order was not paid within {days} days of being placed (deadline {deadline}),"
        " so it earns nothing",
        Code.PROMO_SECTION_3_FOR_5_99: "it was bought in the \"3 for $5.99\" section, which earns no cashback",
        Code.SHOP_EXCLUDED: "the seller {shop_id} is on the list of shops without cashback",
        Code.CART_BEFORE_CLICK: "the item was added to the cart ({added_to_cart_at}) before the click on the cashback"
        " link ({clicked_at})",
        Code.VIRTUAL_PRODUCT: "category {category_id} is a virtual product or service, which earns no cashback",
        Code.DISPUTE_OR_PRICE_ADJUSTED: "a dispute was opened or the seller changed the price after the order",
        Code.PROMO_CODE_NOT_ALLOWED: "the promo code {promo_code} is neither the cashback service's own code nor a"
        " seller's coupon",
        Code.NO_RATE_CARD: "the store had no cashback rate in force at the time of the click ({clicked_at})",
    },
    "ru": {
        Code.PARTNER_INVALID: "магазин признал эту позицию недействительной{detail}, кэшбэк не начисляется",
        Code.AWAITING_PAYMENT_EXPIRED: "заказ не был оплачен в течение {days} дн. после оформления (срок {deadline}),"
        " кэшбэк не начисляется",
        Code.PROMO_SECTION_3_FOR_5_99: "товар куплен в разделе «3 за $5.99», где кэшбэк не начисляется",
        Code.SHOP_EXCLUDED: "продавец {shop_id} в списке магазинов без кэшбэка",
        Code.CART_BEFORE_CLICK: "товар добавлен в корзину ({added_to_cart_at}) до перехода по кэшбэк-ссылке"
        " ({clicked_at})",
        Code.VIRTUAL_PRODUCT: "категория {category_id} — виртуальный товар или услуга, кэшбэк не начисляется",
        Code.DISPUTE_OR_PRICE_ADJUSTED: "по заказу открыт спор или продавец изменил цену после заказа",
        Code.PROMO_CODE_NOT_ALLOWED: "применён промокод {promo_code}, который не является ни промокодом кэшбэк-сервиса,"
        " ни купоном продавца",
        Code.NO_RATE_CARD: "на момент перехода ({clicked_at}) у магазина не было действующей ставки кэшбэка",
    },
}

# One plain sentence per code for the closing "in short" answer.
_SHORT = {
    "en": {
        Code.SHIPPING_EXCLUDED: "shipping is not part of the cashback base",
        Code.VAT_EXCLUDED: "VAT included in the price is not part of the cashback base",
        Code.NON_AFFILIATE_RATE: "a product outside the store's affiliate programme earns the flat non-affiliate rate,"
        " not its category rate",
        Code.HOT_PRODUCT_RATE: "a hot product earns the higher hot-product rate",
        Code.PROMO_RATE_AT_CLICK: "the promotional rate in force at the click is honoured",
        Code.RATE_LIMITED_TO_MAX: "no rate is above the maximum",
        Code.CAP_APPLIED: "cashback per order is capped, and the cap is shared by all items of the order",
        Code.FX_CONVERTED: "the amount in your currency uses the exchange rate of the credit day",
        Code.BELOW_MINIMUM: "cashback under the minimum is not paid",
        Code.MULTI_ACCOUNT_NEW_USER_COUPON: "new-user coupons were used from several store accounts: the order is held"
        " for review",
        Code.UNATTRIBUTED: "no click on the cashback link matches this order; you can file a missing-cashback claim",
        Code.ATTRIBUTION_CONFLICT: "the order's items were bought through links of different shoppers: the order is"
        " held until support decides whose it is",
    },
    "ru": {
        Code.SHIPPING_EXCLUDED: "доставка не входит в базу для кэшбэка",
        Code.VAT_EXCLUDED: "НДС, включённый в цену, не входит в базу для кэшбэка",
        Code.NON_AFFILIATE_RATE: "товар вне партнёрской программы магазина получает фиксированную ставку, а не ставку"
        " своей категории",
        Code.HOT_PRODUCT_RATE: "горячий товар получает повышенную ставку горячих товаров",
        Code.PROMO_RATE_AT_CLICK: "действует акционная ставка, которая была в силе в момент перехода",
        Code.RATE_LIMITED_TO_MAX: "ставка не может быть выше максимальной",
        Code.CAP_APPLIED: "кэшбэк за один заказ ограничен, и лимит делится между всеми позициями заказа",
        Code.FX_CONVERTED: "сумма в валюте счёта пересчитана по курсу дня начисления",
        Code.BELOW_MINIMUM: "кэшбэк меньше минимальной суммы не начисляется",
        Code.MULTI_ACCOUNT_NEW_USER_COUPON: "купоны новых покупателей использованы с нескольких аккаунтов магазина:"
        " заказ на проверке",
        Code.UNATTRIBUTED: "ни один переход по кэшбэк-ссылке не совпадает с заказом; можно подать заявку на"
        " потерянный кэшбэк",
        Code.ATTRIBUTION_CONFLICT: "позиции заказа куплены по ссылкам разных пользователей: заказ удержан, пока"
        " поддержка не решит, чей он",
    },
}

_TEXT = {
    "en": {
        "header": "Order {order_id} ({partner}, configuration {version}) {outcome}.",
        "click": "Click on the cashback link at {clicked_at}.",
        "rate_card": "Rates come from the rate card in force at the click (valid from {valid_from}).",
        "no_click": "No click matches the tracking value {sub_id}.",
        "line": "Item {line_id}:",
        "base": "paid {amount} {currency}{usd}; cashback base {base_usd} USD",
        "usd": " (at {usd_rate} {currency} per USD)",
        "vat_reported": "VAT {tax} {currency} reported by the store is taken out of the base",
        "vat_country": "VAT of {country} ({vat_rate}) is taken out of the base: {tax} {currency}",
        "shipping": "shipping {shipping} {currency} does not earn cashback",
        "excluded": "earns nothing: {why}",
        "also": "also: {why}",
        "non_affiliate": "rate {rate} and not {category_rate}: the product is not in the store's affiliate programme,"
        " so it earns the flat non-affiliate rate whatever its category",
        "rate": "rate {rate} ({source}), the highest of: {candidates}",
        "rate_limit": "the rate {rate_before} is limited to the maximum {max_rate}",
        "cashback": "{base_usd} USD x {rate} = {raw} USD, rounded to {cashback_usd} USD",
        "minimum": "{base_usd} USD x {rate} = {raw} USD, under the minimum {minimum} USD, so it earns nothing",
        "total": "Items together: {cashback_usd} USD.",
        "cap": "The order's cashback {before} USD is above the cap of {cap} USD per order, so it is {after} USD.",
        "cap_share": "Item {line_id}: {before} USD becomes {after} USD (the cap is shared in proportion to what each"
        " item earned).",
        "fx": "{cashback_usd} USD = {cashback} {currency} at {rate} {currency} per USD (rate of {day}).",
        "multi_account": "New-user coupons were used from several store accounts of one person ({accounts}): the order"
        " is held for review; the amount is kept until a decision.",
        "unattributed": "The order is kept for a missing-cashback claim.",
        "in_short": "In short: {reasons}.",
    },
    "ru": {
        "header": "Заказ {order_id} ({partner}, конфигурация {version}): {outcome}.",
        "click": "Переход по кэшбэк-ссылке: {clicked_at}.",
        "rate_card": "Ставки взяты из тарифа, действовавшего в момент перехода (действует с {valid_from}).",
        "no_click": "Ни один переход не совпадает с меткой {sub_id}.",
        "line": "Позиция {line_id}:",
        "base": "оплачено {amount} {currency}{usd}; база для кэшбэка {base_usd} USD",
        "usd": " (по курсу {usd_rate} {currency} за 1 USD)",
        "vat_reported": "НДС {tax} {currency}, указанный магазином, вычтен из базы",
        "vat_country": "НДС страны {country} ({vat_rate}) вычтен из базы: {tax} {currency}",
        "shipping": "доставка {shipping} {currency} не даёт кэшбэка",
        "excluded": "кэшбэк не начисляется: {why}",
        "also": "также: {why}",
        "non_affiliate": "ставка {rate}, а не {category_rate}: товар не участвует в партнёрской программе магазина,"
        " поэтому получает фиксированную ставку независимо от категории",
        "rate": "ставка {rate} ({source}) — наибольшая из: {candidates}",
        "rate_limit": "ставка {rate_before} ограничена максимумом {max_rate}",
        "cashback": "{base_usd} USD x {rate} = {raw} USD, округлено до {cashback_usd} USD",
        "minimum": "{base_usd} USD x {rate} = {raw} USD — меньше минимума {minimum} USD, кэшбэк не начисляется",
        "total": "Все позиции вместе: {cashback_usd} USD.",
        "cap": "Кэшбэк заказа {before} USD выше лимита {cap} USD на заказ, поэтому начислено {after} USD.",
        "cap_share": "Позиция {line_id}: {before} USD стало {after} USD (лимит делится пропорционально кэшбэку"
        " позиций).",
        "fx": "{cashback_usd} USD = {cashback} {currency} по курсу {rate} {currency} за 1 USD (курс на {day}).",
        "multi_account": "Купоны новых покупателей использованы с нескольких аккаунтов магазина одного человека"
        " ({accounts}): заказ на проверке, сумма сохранена до решения.",
        "unattributed": "Заказ сохранён для заявки на потерянный кэшбэк.",
        "in_short": "Кратко: {reasons}.",
    },
}


def _raw(amount: str) -> str:
    """An unrounded amount shown to 4 decimals: enough to see why it rounds the way it does."""
    try:
        return f"{Decimal(amount).quantize(Decimal('0.0001')):f}"
    except InvalidOperation:
        return amount


def _exclusion_sentence(step: TrailStep, lang: str) -> str:
    code = Code(step.code)
    numbers = dict(step.numbers)
    detail = numbers.get("status_detail", "")
    numbers["detail"] = f" ({detail})" if detail else ""
    numbers["days"] = numbers.get("awaiting_payment_days", "")
    return _EXCLUSION[lang][code].format_map(_Default(numbers))


class _Default(dict):
    """Formatting that leaves a missing figure empty instead of failing: old trails may lack newer numbers."""

    def __missing__(self, key: str) -> str:
        return ""


def _line_sentence(step: TrailStep, lang: str) -> str | None:
    text = _TEXT[lang]
    n = step.numbers
    if step.rule == "base":
        usd = ""
        if n.get("currency", "USD") != "USD":
            usd = text["usd"].format(usd_rate=_fx_rate(n.get("usd_rate", "1")), currency=n["currency"])
        return text["base"].format(
            amount=money(n["amount"]), currency=n["currency"], usd=usd, base_usd=money(n["base_usd"])
        )
    if step.rule == "vat":
        if "vat_rate" in n:
            return text["vat_country"].format(
                country=n.get("country", ""), vat_rate=percent(n["vat_rate"]), tax=money(n["tax"]),
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
            base_usd=money(n["base_usd"]), rate=percent(n["rate"]), raw=_raw(n["raw"]),
            cashback_usd=money(n["cashback_usd"]),
        )
    if step.rule == "minimum":
        return text["minimum"].format(
            base_usd=money(n["base_usd"]), rate=percent(n["rate"]), raw=_raw(n["raw"]), minimum=money(n["minimum"])
        )
    return None


def _order_sentence(step: TrailStep, lang: str) -> str | None:
    text = _TEXT[lang]
    n = step.numbers
    if step.rule == "attribution_conflict":
        return _SHORT[lang][Code.ATTRIBUTION_CONFLICT].capitalize() + "."
    if step.rule == "inputs":
        if "user_ids" in n or "clicked_at" not in n and step.note.startswith("the lines' clicks"):
            return None
        if "clicked_at" in n:
            return text["click"].format(clicked_at=n["clicked_at"])
        return text["no_click"].format(sub_id=n.get("sub_id", ""))
    if step.rule == "rate_card":
        return text["rate_card"].format(valid_from=n["valid_from"])
    if step.rule == "multi_account":
        return text["multi_account"].format(accounts=n.get("buyer_accounts", ""))
    if step.rule == "unattributed":
        return text["unattributed"]
    if step.rule == "total":
        return text["total"].format(cashback_usd=money(n["cashback_usd"]))
    if step.rule == "cap":
        return text["cap"].format(before=money(n["before"]), cap=money(n["cap"]), after=money(n["after"]))
    if step.rule == "cap_share":
        return text["cap_share"].format(line_id=step.line_id, before=money(n["before"]), after=money(n["after"]))
    if step.rule == "fx":
        return text["fx"].format(
            cashback_usd=money(n["cashback_usd"]), cashback=money(n["cashback"]), currency=n["currency"],
            rate=_fx_rate(n["rate"]), day=n.get("day", ""),
        )
    return None


def render_trail(decision: OrderDecision, lang: str = "en") -> str:
    """The decision explained in plain words: the order's result, each item's base, rate and exclusions, the cap, the
    currency conversion, and a closing "in short" sentence naming every reason the amount is what it is."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not supported; use one of {', '.join(LANGUAGES)}")
    text = _TEXT[lang]
    usd = money(decision.cashback_usd)
    outcome = _OUTCOME[lang][decision.outcome].format(usd=usd)
    if decision.account_currency != "USD" and decision.outcome in (Outcome.EARNS, Outcome.ON_REVIEW):
        outcome += f" = {money(decision.cashback)} {decision.account_currency}"
    out = [
        text["header"].format(
            order_id=decision.order_id, partner=decision.partner, version=decision.config_version, outcome=outcome
        )
    ]
    current_line: str | None = None
    for step in decision.trail:
        if step.line_id is not None and step.rule != "cap_share":
            if step.line_id != current_line:
                current_line = step.line_id
                out.append(text["line"].format(line_id=step.line_id))
            sentence = _line_sentence(step, lang)
            if sentence:
                out.append(f"  - {sentence}")
            continue
        current_line = None
        sentence = _order_sentence(step, lang)
        if sentence:
            out.append(sentence)
    short = [_SHORT[lang][Code(code)] for code in decision.reasons if Code(code) in _SHORT[lang]]
    exclusions = sorted(
        {line.exclusion for line in decision.lines if line.exclusion and Code(line.exclusion) in _EXCLUSION[lang]}
    )
    if exclusions:
        label = "some items are excluded" if lang == "en" else "часть позиций исключена"
        short.append(f"{label} ({', '.join(exclusions)})")
    if short:
        out.append(text["in_short"].format(reasons="; ".join(short)))
    return "\n".join(out)
