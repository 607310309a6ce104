"""The explanation an operator reads: words, not codes, in its closing sentence; the base a product is computed from
shown as used; no currency conversion for an order that earns nothing; the closing sentence true after a review
verdict; times to the second."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from accrual.domain.rules import decide_order
from accrual.domain.trail import render_trail
from support.builders import NOW, click, config, line

CODE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")  # SHOP_EXCLUDED, PROMO_SECTION_3_FOR_5_99, ...


def in_short(text: str) -> str:
    (sentence,) = [row for row in text.splitlines() if row.startswith(("In short:", "Кратко:"))]
    return sentence


@pytest.mark.parametrize("lang", ["en", "ru"])
@pytest.mark.parametrize(
    "lines",
    [
        [line(shop_id="plaza")],  # every item excluded
        [line("a", shop_id="plaza"), line("b", category_id="gift_cards"), line("c")],  # some items, two reasons
        [line(status="invalid", paid_at=None)],
    ],
    ids=["all-excluded", "some-excluded", "invalid"],
)
def test_in_short_names_no_reason_code(lines, lang):
    sentence = in_short(render_trail(decide_order(lines, click(), config(), now=NOW), lang))
    assert not CODE.findall(sentence), sentence


def test_in_short_says_why_items_are_excluded():
    decision = decide_order([line("a", shop_id="plaza"), line("b")], click(), config(), now=NOW)
    assert "some items are excluded: the seller plaza is on the list of shops without cashback" in in_short(
        render_trail(decision)
    )


@pytest.mark.parametrize("amount", ["100.00", "99.99", "7.77", "1234.56"])
def test_the_base_shown_gives_the_product_shown(amount):
    # VAT of RU (20%) taken out of the price leaves a base that is not whole cents
    decision = decide_order([line(amount=amount, ship_to_country="RU")], click(), config(), now=NOW)
    text = render_trail(decision)
    (product,) = re.findall(r"([\d.]+) USD x ([\d.]+)% = ([\d.]+) USD", text)
    base, rate, raw = (Decimal(value) for value in product)
    assert (base * rate / 100).quantize(Decimal("0.0001")) == raw, product
    assert f"cashback base {product[0]} USD" in text  # the same base in the item's first sentence


def test_an_order_that_earns_nothing_has_no_currency_conversion():
    rub = click(account_currency="RUB")
    declined = render_trail(decide_order([line(shop_id="plaza")], rub, config(), now=NOW))
    assert "per USD" not in declined and "exchange rate" not in declined and "earns nothing" in declined
    earning = render_trail(decide_order([line()], rub, config(), now=NOW))
    assert "285.00 RUB at 95 RUB per USD (rate of 2026-11-10)" in earning


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_the_closing_sentence_follows_the_review_verdict(lang):
    held = decide_order([line(commission="1.00")], click(), config(max_cashback_share="1.0"), now=NOW)
    waiting = render_trail(held, lang)
    released = render_trail(held, lang, review="released")
    declined = render_trail(held, lang, review="declined")
    assert in_short(waiting) != in_short(released) != in_short(declined)
    if lang == "en":
        assert "held for review" in in_short(waiting)
        assert "held for review" not in in_short(released) and "released" in in_short(released)
        assert released.splitlines()[0].endswith("earns 3.00 USD.")
        assert declined.splitlines()[0].endswith("earns nothing.") and "declined" in in_short(declined)


def test_times_are_shown_to_the_second():
    decision = decide_order([line()], click(clicked_at="2026-11-11T10:00:00.123456Z"), config(), now=NOW)
    journal = [{"transition": "pending", "at": "2026-11-20T12:00:00.654321+00:00", "pending_usd": "3.00"}]
    text = render_trail(decision, journal=journal)
    assert "2026-11-20T12:00:00Z: 3.00 USD became pending" in text
    assert "Click on the cashback link at 2026-11-11T10:00:00Z." in text
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", text)
