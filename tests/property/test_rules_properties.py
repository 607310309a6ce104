"""Properties of the accrual rules over generated orders: the cap and the max_rate ceiling hold, lines add up to the order,
excluded lines earn exactly 0, the decision is deterministic and independent of the order of the lines, every earning
line names its rate source, and a decision survives storage (to_dict / from_dict)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from accrual.domain.decision import EXCLUSIONS, OrderDecision, Outcome
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.domain.money import to_cents
from accrual.domain.rules import decide_order

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# A configuration may not hold a rate above 40%: a lower max_rate, below some cards' rates, exercises the clamp.
MAX_RATE = Decimal("0.30")
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


def make_config(cap: str) -> AccrualConfig:
    return AccrualConfig.model_validate(
        {
            "version": "property",
            "rate_cards": [
                {
                    "partner": "aliexpress",
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_to": "2026-11-11T12:00:00Z",
                    "default_rate": "0.03",
                    "hot_product_rate": "0.35",
                    "categories": {"100001": "0.055"},
                },
                {
                    "partner": "aliexpress",
                    "valid_from": "2026-11-11T12:00:00Z",
                    "default_rate": "0.02",
                    "hot_product_rate": "0.12",
                    "categories": {"100001": "0.07", "200002": "0.38"},
                },
            ],
            "promotions": [
                {
                    "partner": "aliexpress",
                    "categories": ["100001", "200002"],
                    "rate": "0.08",
                    "starts_at": "2026-11-11T00:00:00Z",
                    "ends_at": "2026-11-12T00:00:00Z",
                },
                {
                    "partner": "aliexpress",
                    "categories": ["100001"],
                    "rate": "0.08",
                    "starts_at": "2026-11-10T00:00:00Z",
                    "ends_at": "2026-11-11T06:00:00Z",
                },
            ],
            "excluded_shops": ["plaza"],
            "virtual_categories": ["software"],
            "vat_rates": {"RU": "0.20", "DE": "0.19"},
            "fx_rates": {"2026-01-01": {"RUB": "92.50", "EUR": "0.93"}},
            "cap_usd": cap,
            "max_rate": str(MAX_RATE),
        }
    )


CONFIGS = {cap: make_config(cap) for cap in ("40.00", "5.00", "0.05", "1000")}

amounts = st.decimals(min_value=0, max_value=3000, places=2)
rare = st.sampled_from([False, False, False, False, True])


@st.composite
def order_lines(draw: st.DrawFn, line_id: str) -> OrderLine:
    amount = draw(amounts)
    tax = draw(st.none() | st.decimals(min_value=0, max_value=amount, places=2))
    currency, usd_rate = draw(st.sampled_from([("USD", None), ("USD", None), ("EUR", "0.9"), ("RUB", "92.7")]))
    paid = draw(st.sampled_from(["2026-11-13T09:00:00Z", "2026-11-18T00:00:00Z", None]))
    return OrderLine.model_validate(
        {
            "partner": "aliexpress",
            "line_id": line_id,
            "order_id": "O-1",
            "sub_id": "sub-1",
            "status": draw(st.sampled_from(["paid", "paid", "settled", "received", "awaiting_payment", "invalid"])),
            "status_at": "2026-11-13T09:00:00Z",
            "ordered_at": "2026-11-13T08:00:00Z",
            "paid_at": paid,
            "amount": amount,
            "shipping": draw(amounts),
            "tax": tax,
            "currency": currency,
            "usd_rate": usd_rate,
            "category_id": draw(st.sampled_from(["100001", "200002", "300003", "software", None])),
            "shop_id": draw(st.sampled_from(["shop-1", "shop-2", "plaza", None])),
            "is_affiliate": draw(st.booleans()),
            "is_hot": draw(st.booleans()),
            "promo_section": draw(st.sampled_from([None, None, None, "3_for_5_99"])),
            "promo_code": draw(st.sampled_from([None, None, "CODE"])),
            "promo_code_kind": draw(st.sampled_from([None, "service", "seller_coupon", "other"])),
            "added_to_cart_at": draw(st.sampled_from([None, None, "2026-11-01T00:00:00Z"])),
            "dispute": draw(rare),
            "price_adjusted": draw(rare),
            "ship_to_country": draw(st.sampled_from([None, "RU", "DE", "US"])),
        }
    )


@st.composite
def orders(draw: st.DrawFn) -> tuple[list[OrderLine], Click | None, AccrualConfig]:
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=1, max_size=5, unique=True))
    lines = [draw(order_lines(line_id)) for line_id in ids]
    click = draw(
        st.none()
        | st.builds(
            lambda clicked_at, currency: Click(
                sub_id="sub-1", user_id="user-1", clicked_at=clicked_at, partner="aliexpress", account_currency=currency
            ),
            st.sampled_from(
                [
                    "2025-06-01T00:00:00Z",
                    "2026-11-10T12:00:00Z",
                    "2026-11-11T10:00:00Z",
                    "2026-11-11T13:00:00Z",
                    "2026-11-12T10:00:00Z",
                ]
            ),
            st.sampled_from(["USD", "RUB", "EUR"]),
        )
    )
    config = CONFIGS[draw(st.sampled_from(sorted(CONFIGS)))]
    return lines, click, config


@PROPERTY_SETTINGS
@given(orders())
def test_cashback_never_exceeds_the_cap_nor_40_percent_of_the_base(order) -> None:
    lines, click, config = order
    decision = decide_order(lines, click, config, now=NOW)
    assert decision.cashback_usd <= config.cap_usd
    # max_rate of each line's base, each rounded half up to cents as the line itself is (at most half a cent per line)
    ceiling = sum((to_cents(line.base_usd * MAX_RATE) for line in decision.lines), Decimal("0"))
    assert decision.cashback_usd <= ceiling
    assert all(line.rate <= MAX_RATE for line in decision.lines)
    assert decision.cashback_usd >= 0


@PROPERTY_SETTINGS
@given(orders())
def test_lines_add_up_to_the_order_and_excluded_lines_earn_zero(order) -> None:
    lines, click, config = order
    decision = decide_order(lines, click, config, now=NOW)
    assert sum((line.cashback_usd for line in decision.lines), Decimal("0")) == decision.cashback_usd
    for line in decision.lines:
        assert line.cashback_usd == to_cents(line.cashback_usd)  # whole cents
        if line.exclusion is not None:
            assert line.exclusion in EXCLUSIONS
            assert line.cashback_usd == 0
        if line.exclusion is not None and line.exclusion != "BELOW_MINIMUM":
            assert line.rate == 0 and line.rate_source == ""
    if decision.outcome == Outcome.UNATTRIBUTED:
        assert decision.cashback_usd == 0 and decision.user_id is None
    if decision.outcome == Outcome.NOTHING:
        assert decision.cashback_usd == 0


@PROPERTY_SETTINGS
@given(orders(), st.randoms(use_true_random=False))
def test_decision_is_deterministic_and_independent_of_line_order(order, random) -> None:
    lines, click, config = order
    shuffled = list(lines)
    random.shuffle(shuffled)
    first = decide_order(lines, click, config, now=NOW)
    assert decide_order(lines, click, config, now=NOW) == first
    assert decide_order(shuffled, click, config, now=NOW) == first


@PROPERTY_SETTINGS
@given(orders())
def test_every_earning_line_names_its_rate_source_and_the_reasons_cover_the_lines(order) -> None:
    lines, click, config = order
    decision = decide_order(lines, click, config, now=NOW)
    for line in decision.lines:
        if line.cashback_usd > 0:
            assert line.rate_source != ""
            assert line.rate > 0
        assert set(line.reasons) <= set(decision.reasons)
    assert list(decision.reasons) == sorted(set(decision.reasons))


@PROPERTY_SETTINGS
@given(orders())
def test_a_decision_round_trips_through_storage(order) -> None:
    lines, click, config = order
    decision = decide_order(lines, click, config, now=NOW)
    assert OrderDecision.from_dict(decision.to_dict()) == decision
