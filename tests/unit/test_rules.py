"""Worked examples of the accrual rules, figures computed by hand in each row (docs/rules.md, "How the amount is
computed" and "Exclusions"). The example configuration: default 3%, category 100001 5.5%, category 200002 15%, hot 12%,
non-affiliate 1%, promotion 8% on 100001 for clicks on 11 Nov 2026, VAT RU 20%, cap 40 USD, RUB 92.50 (1 Nov),
95.00 (10 Nov), 99.00 (20 Nov), EUR 0.93 (1 Nov)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from accrual.domain.decision import Code, MissingFxRate, OrderDecision, Outcome
from accrual.domain.models import OrderLine
from accrual.domain.rules import (
    apply_minimum,
    apportion_cap,
    choose_rate,
    credit_day,
    decide_order,
    exclusions_of,
    fx_rate_on,
    line_base,
    rate_card_at,
)
from support.builders import NOW, click, config, line


@dataclass
class Example:
    name: str
    lines: list[OrderLine]
    cashback_usd: str
    outcome: Outcome
    reasons: tuple[str, ...]
    line_cashback: dict[str, str] = field(default_factory=dict)
    exclusions: dict[str, str | None] = field(default_factory=dict)
    rate_sources: dict[str, str] = field(default_factory=dict)
    click: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    cashback: str | None = None  # in the account currency


EXAMPLES = [
    # --- base -------------------------------------------------------------------------------------------------------
    Example(
        "default rate: 100 x 3% = 3.00",
        [line()],
        "3.00",
        Outcome.EARNS,
        (),
        {"L1": "3.00"},
        rate_sources={"L1": "default"},
    ),
    Example(
        "category rate: 10 x 15% = 1.50",
        [line(category_id="200002", amount="10.00")],
        "1.50",
        Outcome.EARNS,
        (),
        rate_sources={"L1": "category:200002"},
    ),
    Example(
        "shipping never earns: (100, shipping 15) x 3% = 3.00",
        [line(shipping="15.00")],
        "3.00",
        Outcome.EARNS,
        ("SHIPPING_EXCLUDED",),
    ),
    Example(
        "VAT reported: (120 - 20) x 3% = 3.00",
        [line(amount="120.00", tax="20.00", ship_to_country="RU")],
        "3.00",
        Outcome.EARNS,
        ("VAT_EXCLUDED",),
    ),
    Example(
        "VAT not reported, RU 20%: 120 / 1.2 x 3% = 3.00",
        [line(amount="120.00", ship_to_country="RU")],
        "3.00",
        Outcome.EARNS,
        ("VAT_EXCLUDED",),
    ),
    Example(
        "tax reported as 0 wins over the country rate: 120 x 3% = 3.60",
        [line(amount="120.00", tax="0", ship_to_country="RU")],
        "3.60",
        Outcome.EARNS,
        (),
    ),
    Example(
        "no VAT configured for the country: 120 x 3% = 3.60",
        [line(amount="120.00", ship_to_country="DE")],
        "3.60",
        Outcome.EARNS,
        (),
    ),
    Example(
        "VAT and shipping together: (126 - 21 tax), shipping 9 -> 105 x 3% = 3.15",
        [line(amount="126.00", tax="21.00", shipping="9.00")],
        "3.15",
        Outcome.EARNS,
        ("SHIPPING_EXCLUDED", "VAT_EXCLUDED"),
    ),
    Example(
        "other currency: 9250 RUB / 92.5 = 100 USD x 3% = 3.00",
        [line(amount="9250.00", currency="RUB", usd_rate="92.5")],
        "3.00",
        Outcome.EARNS,
        (),
    ),
    Example(
        "other currency with VAT: 11100 RUB / 1.2 = 9250 / 92.5 = 100 x 3% = 3.00",
        [line(amount="11100.00", currency="RUB", usd_rate="92.5", ship_to_country="RU")],
        "3.00",
        Outcome.EARNS,
        ("VAT_EXCLUDED",),
    ),
    # --- rates ------------------------------------------------------------------------------------------------------
    Example(
        "non-affiliate earns 1% whatever its category: 100 x 1% = 1.00",
        [line(is_affiliate=False, category_id="200002")],
        "1.00",
        Outcome.EARNS,
        ("NON_AFFILIATE_RATE",),
        rate_sources={"L1": "non_affiliate"},
    ),
    Example(
        "non-affiliate with an active promotion at the click still earns 1%",
        [line(is_affiliate=False, category_id="100001")],
        "1.00",
        Outcome.EARNS,
        ("NON_AFFILIATE_RATE",),
        rate_sources={"L1": "non_affiliate"},
    ),
    Example(
        "non-affiliate hot product still earns 1%",
        [line(is_affiliate=False, is_hot=True)],
        "1.00",
        Outcome.EARNS,
        ("NON_AFFILIATE_RATE",),
    ),
    Example(
        "hot product above the category rate: 100 x 12% = 12.00 (not 5.5%)",
        [line(is_hot=True, category_id="100001")],
        "12.00",
        Outcome.EARNS,
        ("HOT_PRODUCT_RATE",),
        rate_sources={"L1": "hot"},
        click={"clicked_at": "2026-11-01T10:00:00Z"},
    ),
    Example(
        "hot product below the category rate: the category's 15% wins",
        [line(is_hot=True, category_id="200002")],
        "15.00",
        Outcome.EARNS,
        (),
        rate_sources={"L1": "category:200002"},
    ),
    Example(
        "promotion ended before the order but active at the click: 100 x 8% = 8.00",
        [line(category_id="100001")],
        "8.00",
        Outcome.EARNS,
        ("PROMO_RATE_AT_CLICK",),
        rate_sources={"L1": "promotion:2026-11-11T00:00:00+00:00"},
    ),
    Example(
        "promotion active at the order but not at the click: 5.5%",
        [line(category_id="100001", ordered_at="2026-11-11T05:00:00Z", paid_at="2026-11-11T06:00:00Z")],
        "5.50",
        Outcome.EARNS,
        (),
        rate_sources={"L1": "category:100001"},
        click={"clicked_at": "2026-11-10T23:59:59Z"},
    ),
    Example(
        "promotion ends exactly at the click: not in force",
        [line(category_id="100001")],
        "5.50",
        Outcome.EARNS,
        (),
        click={"clicked_at": "2026-11-12T00:00:00Z"},
    ),
    Example("promotion of another category does not apply", [line(category_id="200002")], "15.00", Outcome.EARNS, ()),
    Example(
        "hot 12% beats an 8% promotion",
        [line(category_id="100001", is_hot=True)],
        "12.00",
        Outcome.EARNS,
        ("HOT_PRODUCT_RATE",),
        rate_sources={"L1": "hot"},
    ),
    Example(
        "a promotion equal to the category rate: the category keeps the win (tie to the earlier candidate)",
        [line(category_id="200002")],
        "15.00",
        Outcome.EARNS,
        (),
        rate_sources={"L1": "category:200002"},
        config={
            "promotions": [
                {
                    "partner": "aliexpress",
                    "categories": ["200002"],
                    "rate": "0.15",
                    "starts_at": "2026-11-11T00:00:00Z",
                    "ends_at": "2026-11-12T00:00:00Z",
                }
            ]
        },
    ),
    Example(
        "rate above max_rate is clamped: 50 x 30% (hot 35%, max_rate 30%) = 15.00",
        [line(amount="50.00", is_hot=True)],
        "15.00",
        Outcome.EARNS,
        ("HOT_PRODUCT_RATE", "RATE_LIMITED_TO_MAX"),
        config={
            "max_rate": "0.30",
            "rate_cards": [
                {
                    "partner": "aliexpress",
                    "valid_from": "2026-01-01T00:00:00Z",
                    "default_rate": "0.03",
                    "hot_product_rate": "0.35",
                }
            ],
        },
    ),
    Example(
        "rate card in force at the click, not the newer one: 100 x 5% = 5.00",
        [line()],
        "5.00",
        Outcome.EARNS,
        (),
        click={"clicked_at": "2026-05-31T23:00:00Z"},
        config={
            "rate_cards": [
                {
                    "partner": "aliexpress",
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_to": "2026-06-01T00:00:00Z",
                    "default_rate": "0.05",
                },
                {"partner": "aliexpress", "valid_from": "2026-06-01T00:00:00Z", "default_rate": "0.02"},
            ]
        },
    ),
    # --- minimum and rounding ---------------------------------------------------------------------------------------
    Example(
        "below the minimum: 0.33 x 3% = 0.0099 earns nothing",
        [line(amount="0.33")],
        "0.00",
        Outcome.NOTHING,
        ("BELOW_MINIMUM",),
        {"L1": "0.00"},
        {"L1": "BELOW_MINIMUM"},
    ),
    Example("exactly the minimum: 0.34 x 3% = 0.0102 -> 0.01", [line(amount="0.34")], "0.01", Outcome.EARNS, ()),
    Example(
        "round half up: 2.50 x 1% = 0.025 -> 0.03",
        [line(amount="2.50", is_affiliate=False)],
        "0.03",
        Outcome.EARNS,
        ("NON_AFFILIATE_RATE",),
    ),
    Example(
        "each line rounds before the sum: 0.50 x 3% = 0.015 -> 0.02, twice = 0.04",
        [line("a", amount="0.50"), line("b", amount="0.50")],
        "0.04",
        Outcome.EARNS,
        (),
        {"a": "0.02", "b": "0.02"},
    ),
    # --- cap --------------------------------------------------------------------------------------------------------
    Example(
        "cap with sub-orders: 600 x 5.5% = 33.00 and 300 x 5.5% = 16.50 -> 49.50 capped to 40.00 "
        "(4000*3300/4950 = 2666.67c, 4000*1650/4950 = 1333.33c: the spare cent to the larger remainder)",
        [line("a", amount="600.00", category_id="100001"), line("b", amount="300.00", category_id="100001")],
        "40.00",
        Outcome.EARNS,
        ("CAP_APPLIED",),
        {"a": "26.67", "b": "13.33"},
        click={"clicked_at": "2026-11-01T00:00:00Z"},
    ),
    Example(
        "cap with equal lines: 3 x 20.00 = 60 -> 40: 1333.33c each, the spare cent to the first line_id",
        [line("c", amount="2000.00"), line("a", amount="2000.00"), line("b", amount="2000.00")],
        "40.00",
        Outcome.EARNS,
        ("CAP_APPLIED",),
        {"a": "13.34", "b": "13.33", "c": "13.33"},
        config={
            "rate_cards": [{"partner": "aliexpress", "valid_from": "2026-01-01T00:00:00Z", "default_rate": "0.01"}]
        },
    ),
    Example(
        "cap with account currency: 1000 x 12% = 120 -> 40.00 USD x 95.00 (rate of 10 Nov) = 3800.00 RUB",
        [line(amount="1000.00", is_hot=True)],
        "40.00",
        Outcome.EARNS,
        ("CAP_APPLIED", "FX_CONVERTED", "HOT_PRODUCT_RATE"),
        {"L1": "40.00"},
        click={"account_currency": "RUB"},
        cashback="3800.00",
    ),
    Example(
        "exactly the cap is not capped: 1000 x 4% = 40.00",
        [line(amount="1000.00")],
        "40.00",
        Outcome.EARNS,
        (),
        config={
            "rate_cards": [{"partner": "aliexpress", "valid_from": "2026-01-01T00:00:00Z", "default_rate": "0.04"}]
        },
    ),
    Example(
        "an excluded line takes no share of the cap",
        [line("a", amount="1000.00", is_hot=True), line("b", amount="500.00", is_hot=True, dispute=True)],
        "40.00",
        Outcome.EARNS,
        ("CAP_APPLIED", "DISPUTE_OR_PRICE_ADJUSTED", "HOT_PRODUCT_RATE"),
        {"a": "40.00", "b": "0.00"},
        {"a": None, "b": "DISPUTE_OR_PRICE_ADJUSTED"},
    ),
    # --- currency ---------------------------------------------------------------------------------------------------
    Example(
        "RUB account: 3.00 USD x 95.00 (latest day on or before the payment, 10 Nov) = 285.00 RUB",
        [line()],
        "3.00",
        Outcome.EARNS,
        ("FX_CONVERTED",),
        click={"account_currency": "RUB"},
        cashback="285.00",
    ),
    Example(
        "EUR account: 5.50 USD x 0.93 = 5.115 -> 5.12 EUR (half up; EUR only listed on 1 Nov)",
        [line(amount="550.00", is_affiliate=False)],
        "5.50",
        Outcome.EARNS,
        ("FX_CONVERTED", "NON_AFFILIATE_RATE"),
        click={"account_currency": "EUR"},
        cashback="5.12",
    ),
    # --- exclusions -------------------------------------------------------------------------------------------------
    Example(
        "3 for $5.99 section",
        [line(promo_section="3_for_5_99")],
        "0.00",
        Outcome.NOTHING,
        ("PROMO_SECTION_3_FOR_5_99",),
        {"L1": "0.00"},
        {"L1": "PROMO_SECTION_3_FOR_5_99"},
    ),
    Example("another promo section earns", [line(promo_section="superdeals")], "3.00", Outcome.EARNS, ()),
    Example(
        "excluded shop",
        [line(shop_id="plaza")],
        "0.00",
        Outcome.NOTHING,
        ("SHOP_EXCLUDED",),
        exclusions={"L1": "SHOP_EXCLUDED"},
    ),
    Example(
        "added to the cart before the click",
        [line(added_to_cart_at="2026-11-11T09:59:59Z")],
        "0.00",
        Outcome.NOTHING,
        ("CART_BEFORE_CLICK",),
        exclusions={"L1": "CART_BEFORE_CLICK"},
    ),
    Example(
        "added to the cart after the click earns",
        [line(added_to_cart_at="2026-11-11T10:00:00Z")],
        "3.00",
        Outcome.EARNS,
        (),
    ),
    Example(
        "virtual product",
        [line(category_id="gift_cards")],
        "0.00",
        Outcome.NOTHING,
        ("VIRTUAL_PRODUCT",),
        exclusions={"L1": "VIRTUAL_PRODUCT"},
    ),
    Example(
        "dispute",
        [line(dispute=True)],
        "0.00",
        Outcome.NOTHING,
        ("DISPUTE_OR_PRICE_ADJUSTED",),
        exclusions={"L1": "DISPUTE_OR_PRICE_ADJUSTED"},
    ),
    Example("price adjusted", [line(price_adjusted=True)], "0.00", Outcome.NOTHING, ("DISPUTE_OR_PRICE_ADJUSTED",)),
    Example(
        "other promo code",
        [line(promo_code="SALE10", promo_code_kind="other")],
        "0.00",
        Outcome.NOTHING,
        ("PROMO_CODE_NOT_ALLOWED",),
        exclusions={"L1": "PROMO_CODE_NOT_ALLOWED"},
    ),
    Example(
        "promo code of unknown kind", [line(promo_code="SALE10")], "0.00", Outcome.NOTHING, ("PROMO_CODE_NOT_ALLOWED",)
    ),
    Example(
        "the service's own promo code earns",
        [line(promo_code="CB5", promo_code_kind="service")],
        "3.00",
        Outcome.EARNS,
        (),
    ),
    Example(
        "a seller's coupon earns", [line(promo_code="S1", promo_code_kind="seller_coupon")], "3.00", Outcome.EARNS, ()
    ),
    Example(
        "awaiting payment more than 3 days",
        [line(status="awaiting_payment", paid_at=None)],
        "0.00",
        Outcome.NOTHING,
        ("AWAITING_PAYMENT_EXPIRED",),
        exclusions={"L1": "AWAITING_PAYMENT_EXPIRED"},
    ),
    Example(
        "paid more than 3 days after the order",
        [line(ordered_at="2026-11-13T08:00:00Z", paid_at="2026-11-16T08:00:01Z")],
        "0.00",
        Outcome.NOTHING,
        ("AWAITING_PAYMENT_EXPIRED",),
    ),
    Example(
        "paid exactly 3 days after the order earns",
        [line(ordered_at="2026-11-13T08:00:00Z", paid_at="2026-11-16T08:00:00Z")],
        "3.00",
        Outcome.EARNS,
        (),
    ),
    Example(
        "partner invalid",
        [line(status="invalid", status_detail="FullRefund")],
        "0.00",
        Outcome.NOTHING,
        ("PARTNER_INVALID",),
        exclusions={"L1": "PARTNER_INVALID"},
    ),
    Example(
        "no rate card at the click",
        [line()],
        "0.00",
        Outcome.NOTHING,
        ("NO_RATE_CARD",),
        exclusions={"L1": "NO_RATE_CARD"},
        click={"clicked_at": "2025-12-31T23:59:59Z"},
    ),
    Example(
        "precedence: an excluded shop with a dispute is SHOP_EXCLUDED",
        [line(shop_id="plaza", dispute=True)],
        "0.00",
        Outcome.NOTHING,
        ("SHOP_EXCLUDED",),
        exclusions={"L1": "SHOP_EXCLUDED"},
    ),
    Example(
        "precedence: partner invalid comes first",
        [line(status="invalid", promo_section="3_for_5_99")],
        "0.00",
        Outcome.NOTHING,
        ("PARTNER_INVALID",),
    ),
    Example(
        "one excluded line, one earning",
        [line("a"), line("b", category_id="software")],
        "3.00",
        Outcome.EARNS,
        ("VIRTUAL_PRODUCT",),
        {"a": "3.00", "b": "0.00"},
        {"a": None, "b": "VIRTUAL_PRODUCT"},
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_worked_example(example: Example) -> None:
    decision = decide_order(example.lines, click(**example.click), config(**example.config), now=NOW)
    assert decision.cashback_usd == D(example.cashback_usd)
    assert str(decision.cashback_usd) == example.cashback_usd  # always in cents
    assert decision.outcome == example.outcome
    assert decision.reasons == example.reasons
    by_id = {line_decision.line_id: line_decision for line_decision in decision.lines}
    for line_id, cents in example.line_cashback.items():
        assert by_id[line_id].cashback_usd == D(cents)
    for line_id, code in example.exclusions.items():
        assert by_id[line_id].exclusion == code
    for line_id, source in example.rate_sources.items():
        assert by_id[line_id].rate_source == source
    assert sum(line_decision.cashback_usd for line_decision in decision.lines) == decision.cashback_usd
    if example.cashback is not None:
        assert decision.cashback == D(example.cashback)
    else:
        assert decision.account_currency == "USD" and decision.cashback == decision.cashback_usd


def test_unattributed_keeps_the_bases_and_earns_nothing() -> None:
    lines = [line("a", amount="120.00", ship_to_country="RU"), line("b", amount="50.00")]
    decision = decide_order(lines, None, config(), now=NOW)
    assert decision.outcome == Outcome.UNATTRIBUTED
    assert decision.user_id is None
    assert decision.cashback_usd == 0 and decision.cashback == 0
    assert decision.reasons == ("UNATTRIBUTED",)
    assert [(d.line_id, d.base_usd, d.cashback_usd, d.exclusion) for d in decision.lines] == [
        ("a", D("100"), D("0"), "UNATTRIBUTED"),
        ("b", D("50.00"), D("0"), "UNATTRIBUTED"),
    ]


def test_new_user_coupon_from_another_account_of_the_user_is_on_review_with_the_amount_kept() -> None:
    lines = [line(new_user_coupon=True, buyer_account="acc-2")]
    decision = decide_order(lines, click(), config(), now=NOW, other_new_user_coupon_accounts=frozenset({"acc-1"}))
    assert decision.outcome == Outcome.ON_REVIEW
    assert decision.cashback_usd == D("3.00")
    assert decision.reasons == ("MULTI_ACCOUNT_NEW_USER_COUPON",)


@pytest.mark.parametrize(
    "order_line, others",
    [
        (line(new_user_coupon=True, buyer_account="acc-1"), frozenset({"acc-1"})),  # the same account again
        (line(new_user_coupon=False, buyer_account="acc-2"), frozenset({"acc-1"})),  # no coupon on this order
        (line(new_user_coupon=True, buyer_account=None), frozenset({"acc-1"})),  # account unknown
        (line(new_user_coupon=True, buyer_account="acc-2"), frozenset()),  # first coupon of the user
    ],
)
def test_new_user_coupon_without_a_second_account_earns(order_line: OrderLine, others: frozenset[str]) -> None:
    decision = decide_order([order_line], click(), config(), now=NOW, other_new_user_coupon_accounts=others)
    assert decision.outcome == Outcome.EARNS
    assert Code.MULTI_ACCOUNT_NEW_USER_COUPON.value not in decision.reasons


def test_awaiting_payment_within_the_window_is_not_excluded() -> None:
    order_line = line(status="awaiting_payment", paid_at=None)
    within = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # exactly 72 h after the order
    decision = decide_order([order_line], click(), config(), now=within)
    assert decision.lines[0].exclusion is None
    expired = decide_order([order_line], click(), config(), now=datetime(2026, 11, 16, 8, 0, 1, tzinfo=UTC))
    assert expired.lines[0].exclusion == "AWAITING_PAYMENT_EXPIRED"


def test_partner_invalid_shows_the_partner_sub_reason_in_the_trail() -> None:
    decision = decide_order([line(status="invalid", status_detail="Antispam")], click(), config(), now=NOW)
    step = next(step for step in decision.trail if step.code == "PARTNER_INVALID")
    assert step.numbers["status_detail"] == "Antispam"


def test_trail_lists_every_exclusion_that_fired_and_marks_the_decisive_one() -> None:
    decision = decide_order([line(shop_id="plaza", dispute=True, category_id="software")], click(), config(), now=NOW)
    fired = [(step.code, step.numbers["decisive"]) for step in decision.trail if step.rule == "exclusion"]
    assert fired == [("SHOP_EXCLUDED", "yes"), ("VIRTUAL_PRODUCT", "no"), ("DISPUTE_OR_PRICE_ADJUSTED", "no")]
    assert decision.lines[0].rate == 0 and decision.lines[0].rate_source == ""


def test_trail_carries_inputs_rate_candidates_cap_and_fx() -> None:
    lines = [line("a", amount="600.00", category_id="100001"), line("b", amount="300.00", category_id="100001")]
    decision = decide_order(lines, click(account_currency="RUB"), config(), now=NOW)
    steps = {(step.rule, step.line_id): step for step in decision.trail}
    assert steps[("inputs", None)].numbers["clicked_at"] == "2026-11-11T10:00:00+00:00"
    assert steps[("inputs", None)].numbers["config_version"] == "2026-11-01"
    assert steps[("rate_card", None)].numbers["valid_from"] == "2026-01-01T00:00:00+00:00"
    rate = steps[("rate", "a")]
    assert rate.code == "PROMO_RATE_AT_CLICK"
    assert rate.numbers["candidate:category:100001"] == "0.055"
    assert rate.numbers["candidate:promotion:2026-11-11T00:00:00+00:00"] == "0.08"
    # 600 x 8% = 48.00 and 300 x 8% = 24.00 -> 72.00, capped: 4000*4800/7200 = 2666.67c, 1333.33c
    assert steps[("cap", None)].numbers == {"before": "72.00", "cap": "40.00", "after": "40.00"}
    assert steps[("cap_share", "a")].numbers == {"before": "48.00", "after": "26.67"}
    assert steps[("cap_share", "b")].numbers == {"before": "24.00", "after": "13.33"}
    fx = steps[("fx", None)]
    assert fx.numbers["rate"] == "95.00" and fx.numbers["day"] == "2026-11-10"
    assert fx.numbers["cashback"] == "3800.00"  # 40.00 x 95.00
    assert decision.fx_day == date(2026, 11, 10)


def test_fx_day_follows_credited_on() -> None:
    decision = decide_order([line()], click(account_currency="RUB"), config(), now=NOW, credited_on=date(2026, 11, 25))
    assert (decision.fx_rate, decision.fx_day, decision.cashback) == (D("99.00"), date(2026, 11, 20), D("297.00"))


def test_credit_day_is_the_earliest_payment_else_the_earliest_order() -> None:
    paid = [line("a", paid_at="2026-11-14T01:00:00Z"), line("b", paid_at="2026-11-13T23:30:00-02:00")]
    assert credit_day(paid) == date(2026, 11, 14)  # 23:30 at -02:00 is 01:30 UTC on the 14th
    unpaid = [line("a", paid_at=None, ordered_at="2026-11-02T10:00:00Z"), line("b", paid_at=None)]
    assert credit_day(unpaid) == date(2026, 11, 2)


def test_missing_fx_rate_raises() -> None:
    with pytest.raises(MissingFxRate):
        decide_order([line()], click(account_currency="KZT"), config(), now=NOW)
    with pytest.raises(MissingFxRate):  # RUB only from 1 Nov
        decide_order([line()], click(account_currency="RUB"), config(), now=NOW, credited_on=date(2026, 10, 31))


def test_usd_account_uses_rate_one_and_no_fx_day() -> None:
    decision = decide_order([line()], click(), config(fx_rates={}), now=NOW)
    assert (decision.fx_rate, decision.fx_day) == (D("1"), None)
    assert "FX_CONVERTED" not in decision.reasons


def test_decision_does_not_depend_on_line_order_and_round_trips() -> None:
    lines = [line("b", amount="700.00", is_hot=True), line("a", amount="90.00"), line("c", shop_id="plaza")]
    forward = decide_order(lines, click(account_currency="RUB"), config(), now=NOW)
    backward = decide_order(list(reversed(lines)), click(account_currency="RUB"), config(), now=NOW)
    assert forward == backward
    assert [d.line_id for d in forward.lines] == ["a", "b", "c"]
    assert OrderDecision.from_dict(forward.to_dict()) == forward


def test_lines_of_two_orders_or_a_repeated_line_are_refused() -> None:
    with pytest.raises(ValueError, match="more than one order"):
        decide_order([line("a"), line("b", order_id="O-2")], click(), config(), now=NOW)
    with pytest.raises(ValueError, match="twice"):
        decide_order([line("a"), line("a")], click(), config(), now=NOW)
    with pytest.raises(ValueError):
        decide_order([], click(), config(), now=NOW)


# --- the rules one by one ---------------------------------------------------------------------------------------------


def test_line_base_figures() -> None:
    base = line_base(
        line(amount="120.00", shipping="7.00", ship_to_country="RU", currency="EUR", usd_rate="0.5"), config()
    )
    assert (base.base, base.tax, base.vat_rate, base.base_usd) == (D("100"), D("20"), D("0.20"), D("200"))
    assert base.codes == (Code.VAT_EXCLUDED, Code.SHIPPING_EXCLUDED)


def test_rate_card_at_picks_the_card_in_force() -> None:
    cfg = config(
        rate_cards=[
            {
                "partner": "aliexpress",
                "valid_from": "2026-01-01T00:00:00Z",
                "valid_to": "2026-06-01T00:00:00Z",
                "default_rate": "0.05",
            },
            {"partner": "aliexpress", "valid_from": "2026-06-01T00:00:00Z", "default_rate": "0.02"},
            {"partner": "admitad", "valid_from": "2020-01-01T00:00:00Z", "default_rate": "0.07"},
        ]
    )
    assert rate_card_at(cfg, "aliexpress", datetime(2026, 6, 1, tzinfo=UTC)).default_rate == D("0.02")
    assert rate_card_at(cfg, "aliexpress", datetime(2026, 5, 1, tzinfo=UTC)).default_rate == D("0.05")
    assert rate_card_at(cfg, "aliexpress", datetime(2025, 5, 1, tzinfo=UTC)) is None


def test_choose_rate_names_candidates_in_tie_break_order() -> None:
    cfg = config()
    card = cfg.rate_cards[0]
    choice = choose_rate(line(category_id="100001", is_hot=True), card, cfg, datetime(2026, 11, 11, tzinfo=UTC))
    assert choice.candidates == (
        ("category:100001", D("0.055")),
        ("hot", D("0.12")),
        ("promotion:2026-11-11T00:00:00+00:00", D("0.08")),
    )
    assert (choice.rate, choice.source, choice.codes) == (D("0.12"), "hot", (Code.HOT_PRODUCT_RATE,))


def test_exclusions_of_returns_every_fired_code_in_precedence_order() -> None:
    from accrual.domain.rules import LineContext

    cfg = config()
    ctx = LineContext(
        line=line(status="invalid", promo_code="X", price_adjusted=True, shop_id="plaza"),
        click=click(),
        config=cfg,
        now=NOW,
        card=None,
    )
    assert exclusions_of(ctx) == (
        Code.PARTNER_INVALID,
        Code.SHOP_EXCLUDED,
        Code.DISPUTE_OR_PRICE_ADJUSTED,
        Code.PROMO_CODE_NOT_ALLOWED,
        Code.NO_RATE_CARD,
    )


def test_apply_minimum() -> None:
    assert apply_minimum(D("0.0099999"), D("0.01")) == (D("0.00"), Code.BELOW_MINIMUM)
    assert apply_minimum(D("0.01"), D("0.01")) == (D("0.01"), None)
    assert apply_minimum(D("1.005"), D("0.01")) == (D("1.01"), None)


def test_apportion_cap_largest_remainder() -> None:
    # 10.00 + 10.00 + 0.01 = 20.01 over 10.00: 1000*1000/2001 = 499.75c twice, 1000*1/2001 = 0.4998c
    # floors 499 + 499 + 0 = 998, 2 cents spare: to a (0.75), b (0.75), not c (0.4998)
    shares = apportion_cap([("a", D("10.00")), ("b", D("10.00")), ("c", D("0.01"))], D("10.00"))
    assert shares == {"a": D("5.00"), "b": D("5.00"), "c": D("0.00")}
    assert apportion_cap([("x", D("0.03")), ("y", D("0.03"))], D("0.05")) == {"x": D("0.03"), "y": D("0.02")}


def test_fx_rate_on_takes_the_latest_day_listing_the_currency() -> None:
    cfg = config()
    assert fx_rate_on(cfg, "EUR", date(2026, 11, 30)) == (D("0.93"), date(2026, 11, 1))
    assert fx_rate_on(cfg, "RUB", date(2026, 11, 10)) == (D("95.00"), date(2026, 11, 10))
    assert fx_rate_on(cfg, "USD", date(2000, 1, 1)) == (D("1"), None)
