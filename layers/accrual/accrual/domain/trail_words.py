"""The sentences of an explanation that are not tied to a reason code (how an outcome, a base, a rate, the cap, the
currency conversion and the history of money moves are told), in English and Russian. The words of each reason code
are in `accrual.domain.reasons`; `accrual.domain.trail` puts them together."""

from __future__ import annotations

from accrual.domain.decision import Outcome

OUTCOME = {
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

TEXT = {
    "en": {
        "header": "Order {order_id} ({partner}, configuration {version}) {outcome}.",
        "click": "Click on the cashback link at {clicked_at}.",
        "rate_card": "Rates come from the rate card in force at the click (valid from {valid_from}).",
        "no_click": "No click matches the tracking value {sub_id}.",
        "line": "Item {line_id}:",
        "base": "paid {amount} {currency}{usd}; cashback base {base_usd} USD",
        "base_unpaid": "ordered for {amount} {currency}{usd} and not paid; cashback base {base_usd} USD",
        "base_invalid": "ordered for {amount} {currency}{usd}; cashback base {base_usd} USD",
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
        "commission_share": "The cashback {cashback_usd} USD is above {share} of the store's commission"
        " {commission_usd} USD (at most {limit_usd} USD): the order is held for review; the amount is kept until a"
        " decision.",
        "unattributed": "The order is kept for a missing-cashback claim.",
        "in_short": "In short: {reasons}.",
        "excluded_items": "some items are excluded: {why}",
        "all_excluded": "every item is excluded: {why}",
        "released": "support reviewed the order and released it",
        "declined": "support reviewed the order and declined it",
        "paid_late": ", and it was paid only at {paid_at}",
        "clawed_back": "{amount} USD was confirmed and then clawed back",
        "clawed_back_part": "{confirmed} USD was confirmed and then {amount} USD of it clawed back",
        "history": "What happened:",
        "pending": "{at}: {amount} USD became pending",
        "adjust": "{at}: the pending amount changed by {delta} USD to {amount} USD",
        "post": "{at}: {amount} USD was confirmed",
        "void": "{at}: the pending {amount} USD was withdrawn ({state})",
        "reverse": "{at}: {amount} USD of confirmed cashback was clawed back",
        "refused": "{at}: the store's report that item {line_id} is {status} (as of {status_at}) was not applied:"
        " {reason}",
    },
    "ru": {
        "header": "Заказ {order_id} ({partner}, конфигурация {version}): {outcome}.",
        "click": "Переход по кэшбэк-ссылке: {clicked_at}.",
        "rate_card": "Ставки взяты из тарифа, действовавшего в момент перехода (действует с {valid_from}).",
        "no_click": "Ни один переход не совпадает с меткой {sub_id}.",
        "line": "Позиция {line_id}:",
        "base": "оплачено {amount} {currency}{usd}; база для кэшбэка {base_usd} USD",
        "base_unpaid": "заказано на {amount} {currency}{usd}, не оплачено; база для кэшбэка {base_usd} USD",
        "base_invalid": "заказано на {amount} {currency}{usd}; база для кэшбэка {base_usd} USD",
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
        "commission_share": "Кэшбэк {cashback_usd} USD больше доли {share} от комиссии магазина"
        " {commission_usd} USD (не более {limit_usd} USD): заказ на проверке, сумма сохранена до решения.",
        "unattributed": "Заказ сохранён для заявки на потерянный кэшбэк.",
        "in_short": "Кратко: {reasons}.",
        "excluded_items": "часть позиций исключена: {why}",
        "all_excluded": "все позиции исключены: {why}",
        "released": "поддержка проверила заказ и подтвердила начисление",
        "declined": "поддержка проверила заказ и отклонила начисление",
        "paid_late": ", а оплачен он только {paid_at}",
        "clawed_back": "{amount} USD было подтверждено, а затем списано обратно",
        "clawed_back_part": "{confirmed} USD было подтверждено, а затем {amount} USD из них списано обратно",
        "history": "Что происходило:",
        "pending": "{at}: {amount} USD поставлено в ожидание",
        "adjust": "{at}: ожидаемая сумма изменилась на {delta} USD, до {amount} USD",
        "post": "{at}: {amount} USD подтверждено",
        "void": "{at}: ожидавшиеся {amount} USD сняты ({state})",
        "reverse": "{at}: {amount} USD подтверждённого кэшбэка списано обратно",
        "refused": "{at}: отчёт магазина о том, что позиция {line_id} {status} (на {status_at}), не применён: {reason}",
    },
}
