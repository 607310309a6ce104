"""The words of every reason code, defined once: the note stored in the decision trail, the sentence an explanation
gives for an exclusion, and the plain "in short" sentence, in English and Russian.

The `note` is part of every stored decision (and of the notifications' trail summary): rewording it would make the
audit see stored orders as changed, so a note is never edited; the explanation sentences may be.
Sentences take `{name}` fields from the trail step's numbers; a missing figure renders empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from accrual.domain.decision import Code

LANGUAGES = ("en", "ru")


@dataclass(frozen=True)
class Words:
    en: str
    ru: str

    def in_language(self, lang: str) -> str:
        return self.ru if lang == "ru" else self.en


@dataclass(frozen=True)
class Reason:
    note: str = ""  # stored in the trail step (English); never reworded
    why: Words | None = None  # an exclusion's sentence: why the item earns nothing
    short: Words | None = None  # the closing "in short" sentence


REASONS: dict[Code, Reason] = {
    # --- exclusions, in precedence order -----------------------------------------------------------------------------
    Code.PARTNER_INVALID: Reason(
        note="the partner marked the line invalid",
        why=Words(
            en="the store marked this item invalid{detail}", ru="магазин признал эту позицию недействительной{detail}"
        ),
    ),
    Code.PARTNER_SETTLED_AT_ZERO: Reason(
        note="the partner settled the line with a final amount of 0",
        why=Words(
            en="the store's final figure for this item is 0 {currency} (refunded or adjusted after the order)",
            ru="итоговая сумма магазина по этой позиции — 0 {currency} (возврат или изменение после заказа)",
        ),
    ),
    Code.AWAITING_PAYMENT_EXPIRED: Reason(
        note="the order was not paid within the allowed days",
        why=Words(
            en="the order was not paid within {days} days of being placed (deadline {deadline}){paid}",
            ru="заказ не был оплачен в течение {days} дн. после оформления (срок {deadline}){paid}",
        ),
    ),
    Code.PROMO_SECTION_3_FOR_5_99: Reason(
        note="bought in the '3 for $5.99' section, which earns no cashback",
        why=Words(
            en='it was bought in the "3 for $5.99" section, which is outside the cashback programme',
            ru="товар куплен в разделе «3 за $5.99», который не участвует в программе",
        ),
    ),
    Code.SHOP_EXCLUDED: Reason(
        note="the seller is on the list of shops without cashback",
        why=Words(
            en="the seller {shop_id} is on the list of shops without cashback",
            ru="продавец {shop_id} в списке магазинов без кэшбэка",
        ),
    ),
    Code.CART_BEFORE_CLICK: Reason(
        note="the item was added to the cart before the click on the cashback link",
        why=Words(
            en="the item was added to the cart ({added_to_cart_at}) before the click on the cashback link"
            " ({clicked_at})",
            ru="товар добавлен в корзину ({added_to_cart_at}) до перехода по кэшбэк-ссылке ({clicked_at})",
        ),
    ),
    Code.VIRTUAL_PRODUCT: Reason(
        note="virtual products and services earn no cashback",
        why=Words(
            en="category {category_id} is a virtual product or service",
            ru="категория {category_id} — виртуальный товар или услуга",
        ),
    ),
    Code.DISPUTE_OR_PRICE_ADJUSTED: Reason(
        note="a dispute was opened or the seller changed the price",
        why=Words(
            en="a dispute was opened or the seller changed the price after the order",
            ru="по заказу открыт спор или продавец изменил цену после заказа",
        ),
    ),
    Code.PROMO_CODE_NOT_ALLOWED: Reason(
        note="a promo code other than the service's own or a seller's coupon was used",
        why=Words(
            en="the promo code {promo_code} is neither the cashback service's own code nor a seller's coupon",
            ru="применён промокод {promo_code}, который не является ни промокодом кэшбэк-сервиса, ни купоном продавца",
        ),
    ),
    Code.NO_RATE_CARD: Reason(
        note="no rate card of the partner was in force at the click",
        why=Words(
            en="the store had no cashback rate in force at the time of the click ({clicked_at})",
            ru="на момент перехода ({clicked_at}) у магазина не было действующей ставки кэшбэка",
        ),
    ),
    # --- order-level holds and the minimum ---------------------------------------------------------------------------
    Code.BELOW_MINIMUM: Reason(
        note="cashback below the minimum earns nothing",
        short=Words(en="cashback under the minimum is not paid", ru="кэшбэк меньше минимальной суммы не начисляется"),
    ),
    Code.MULTI_ACCOUNT_NEW_USER_COUPON: Reason(
        note="new-user coupons used from several store accounts of one person: held for review",
        short=Words(
            en="new-user coupons were used from several store accounts: the order is held for review",
            ru="купоны новых покупателей использованы с нескольких аккаунтов магазина: заказ на проверке",
        ),
    ),
    Code.OVER_COMMISSION_SHARE: Reason(
        note="the cashback is above the allowed share of the partner's commission: held for review",
        short=Words(
            en="the cashback would be more than the allowed share of what the store pays us: the order is held"
            " for review",
            ru="кэшбэк превысил бы допустимую долю комиссии магазина: заказ на проверке",
        ),
    ),
    Code.UNATTRIBUTED: Reason(
        note="kept for a missing-cashback claim",
        short=Words(
            en="no click on the cashback link matches this order; you can file a missing-cashback claim",
            ru="ни один переход по кэшбэк-ссылке не совпадает с заказом; можно подать заявку на потерянный кэшбэк",
        ),
    ),
    Code.ATTRIBUTION_CONFLICT: Reason(
        note="held for review: an operator decides which shopper the order belongs to",
        short=Words(
            en="the order's items were bought through links of different shoppers: the order is held until"
            " support decides whose it is",
            ru="позиции заказа куплены по ссылкам разных пользователей: заказ удержан, пока поддержка не решит, чей он",
        ),
    ),
    # --- informational: the amount still earns -----------------------------------------------------------------------
    Code.SHIPPING_EXCLUDED: Reason(
        note="paid shipping never earns cashback",
        short=Words(en="shipping is not part of the cashback base", ru="доставка не входит в базу для кэшбэка"),
    ),
    Code.VAT_EXCLUDED: Reason(
        note="VAT reported by the partner is taken out",  # the VAT step says which VAT when it was computed
        short=Words(
            en="VAT included in the price is taken out before the rate applies",
            ru="НДС, включённый в цену, вычитается до применения ставки",
        ),
    ),
    Code.NON_AFFILIATE_RATE: Reason(
        note="flat non-affiliate rate",
        short=Words(
            en="a product outside the store's affiliate programme earns the flat non-affiliate rate, not its"
            " category rate",
            ru="товар вне партнёрской программы магазина получает фиксированную ставку, а не ставку своей категории",
        ),
    ),
    Code.HOT_PRODUCT_RATE: Reason(
        short=Words(
            en="a hot product earns the higher hot-product rate",
            ru="горячий товар получает повышенную ставку горячих товаров",
        ),
    ),
    Code.PROMO_RATE_AT_CLICK: Reason(
        short=Words(
            en="the promotional rate in force at the click is honoured",
            ru="действует акционная ставка, которая была в силе в момент перехода",
        ),
    ),
    Code.RATE_LIMITED_TO_MAX: Reason(
        note="the rate never goes above the maximum",
        short=Words(en="no rate is above the maximum", ru="ставка не может быть выше максимальной"),
    ),
    Code.CAP_APPLIED: Reason(
        note="cashback per order is capped; the cap is shared by all lines of the order",
        short=Words(
            en="cashback per order is capped, and the cap is shared by all items of the order",
            ru="кэшбэк за один заказ ограничен, и лимит делится между всеми позициями заказа",
        ),
    ),
    Code.FX_CONVERTED: Reason(
        note="converted to the account currency at the rate of the credit day",
        short=Words(
            en="the amount in your currency uses the exchange rate of the credit day",
            ru="сумма в валюте счёта пересчитана по курсу дня начисления",
        ),
    ),
}


def note(code: Code) -> str:
    return REASONS[code].note


def why(code: Code, lang: str) -> str | None:
    words = REASONS[code].why
    return words.in_language(lang) if words else None


def short(code: Code, lang: str) -> str | None:
    words = REASONS[code].short
    return words.in_language(lang) if words else None
