"""The decision trail in plain words: support questions answered from the stored decision, in English and Russian."""

from __future__ import annotations

import pytest

from accrual.domain.decision import OrderDecision
from accrual.domain.rules import decide_order
from accrual.domain.trail import percent, render_trail
from support.builders import NOW, click, config, line


def test_percent_drops_trailing_zeros() -> None:
    assert [percent(rate) for rate in ("0.055", "0.01", "0.40", "1", "0.125")] == ["5.5%", "1%", "40%", "100%", "12.5%"]


def test_why_1_percent_and_not_5_5_percent() -> None:
    decision = decide_order(
        [line(is_affiliate=False, category_id="100001")], click(clicked_at="2026-11-01T00:00:00Z"), config(), now=NOW
    )
    english = render_trail(decision, "en")
    assert "rate 1% and not 5.5%" in english
    assert "not in the store's affiliate programme" in english
    russian = render_trail(decision, "ru")
    assert "ставка 1%, а не 5.5%" in russian
    assert "не участвует в партнёрской программе" in russian


def test_why_smaller_than_the_rate_of_the_order_total() -> None:
    # paid 126 with 21 VAT and 9 shipping: base 105, 5.5% of it = 5.775 -> 5.78, not 5.5% of 135
    decision = decide_order(
        [line(amount="126.00", tax="21.00", shipping="9.00", category_id="100001")],
        click(clicked_at="2026-11-01T00:00:00Z"),
        config(),
        now=NOW,
    )
    english = render_trail(decision)
    assert "shipping 9.00 USD does not earn cashback" in english
    assert "VAT 21.00 USD reported by the store is taken out of the base" in english
    assert "105.00 USD x 5.5% = 5.7750 USD, rounded to 5.78 USD" in english
    assert "In short:" in english and "shipping is not part of the cashback base" in english
    russian = render_trail(decision, "ru")
    assert "доставка 9.00 USD не даёт кэшбэка" in russian
    assert "НДС 21.00 USD, указанный магазином, вычтен из базы" in russian


def test_cap_and_currency_are_explained() -> None:
    lines = [line("a", amount="600.00", category_id="100001"), line("b", amount="300.00", category_id="100001")]
    decision = decide_order(lines, click(account_currency="RUB"), config(), now=NOW)
    english = render_trail(decision)
    assert "earns 40.00 USD = 3800.00 RUB" in english
    assert "The order's cashback 72.00 USD is above the cap of 40.00 USD per order, so it is 40.00 USD." in english
    assert "Item a: 48.00 USD becomes 26.67 USD" in english
    assert "40.00 USD = 3800.00 RUB at 95 RUB per USD (rate of 2026-11-10)." in english
    assert "promotion started 2026-11-11T00:00:00Z 8%" in english
    russian = render_trail(decision, "ru")
    assert "выше лимита 40.00 USD на заказ" in russian
    assert "по курсу 95 RUB за 1 USD (курс на 2026-11-10)" in russian


@pytest.mark.parametrize(
    "changes, english, russian",
    [
        (
            {"shop_id": "plaza"},
            "the seller plaza is on the list of shops without cashback",
            "продавец plaza в списке магазинов без кэшбэка",
        ),
        (
            {"status": "invalid", "status_detail": "FullRefund"},
            "marked this item invalid (FullRefund)",
            "недействительной (FullRefund)",
        ),
        ({"promo_section": "3_for_5_99"}, '"3 for $5.99" section', "«3 за $5.99»"),
        (
            {"added_to_cart_at": "2026-11-10T00:00:00Z"},
            "added to the cart (2026-11-10T00:00:00Z) before the click",
            "добавлен в корзину",
        ),
        ({"category_id": "software"}, "category software is a virtual product", "виртуальный товар"),
        ({"dispute": True}, "a dispute was opened", "открыт спор"),
        ({"promo_code": "SALE", "promo_code_kind": "other"}, "the promo code SALE is neither", "промокод SALE"),
        ({"status": "awaiting_payment", "paid_at": None}, "not paid within 3 days", "не был оплачен в течение 3 дн."),
        ({"amount": "0.10"}, "under the minimum 0.01 USD", "меньше минимума 0.01 USD"),
    ],
)
def test_each_exclusion_in_plain_words(changes: dict, english: str, russian: str) -> None:
    decision = decide_order([line(**changes)], click(), config(), now=NOW)
    assert "earns nothing" in render_trail(decision, "en")
    assert english in render_trail(decision, "en")
    assert russian in render_trail(decision, "ru")


def test_no_rate_card_in_plain_words() -> None:
    decision = decide_order([line()], click(clicked_at="2025-06-01T00:00:00Z"), config(), now=NOW)
    assert "no cashback rate in force at the time of the click" in render_trail(decision)


def test_unattributed_and_on_review() -> None:
    unattributed = decide_order([line()], None, config(), now=NOW)
    assert "not attributed to any click" in render_trail(unattributed)
    assert "missing-cashback claim" in render_trail(unattributed)
    assert "не связан ни с одним переходом" in render_trail(unattributed, "ru")
    held = decide_order(
        [line(new_user_coupon=True, buyer_account="acc-2")],
        click(),
        config(),
        now=NOW,
        other_new_user_coupon_accounts=frozenset({"acc-1"}),
    )
    assert "is on review (3.00 USD held until a decision)" in render_trail(held)
    assert "на проверке" in render_trail(held, "ru")


def test_rendering_a_stored_decision_gives_the_same_words() -> None:
    decision = decide_order(
        [line(amount="120.00", ship_to_country="RU", is_hot=True)], click(account_currency="EUR"), config(), now=NOW
    )
    stored = OrderDecision.from_dict(decision.to_dict())
    for lang in ("en", "ru"):
        assert render_trail(stored, lang) == render_trail(decision, lang)
    assert "VAT of RU (20%) is taken out of the base: 20.00 USD" in render_trail(stored)


def test_unknown_language_is_refused() -> None:
    decision = decide_order([line()], click(), config(), now=NOW)
    with pytest.raises(ValueError, match="language"):
        render_trail(decision, "de")
