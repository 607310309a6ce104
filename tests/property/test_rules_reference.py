"""The typed decision records and the rules split into named steps decide exactly what the rules decided before:
for random orders the stored JSON (money, codes, trail, notes) is byte for byte the reference's, and a stored decision
read back is written back unchanged. The order's commission and margin came after the reference: they are held to
their own definition here (the commission of the lines that earn, in USD cents; margin = commission - cashback) and
left out of the byte comparison."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accrual.domain.decision import MissingFxRate, OrderDecision
from accrual.domain.models import Click, OrderLine
from accrual.domain.rules import decide_order
from support import reference_rules as reference
from support.builders import NOW, click, config, line


def canonical(value: object) -> str:
    """The ledger's stored form of a decision (service.ledger.canonical)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


MARGIN_FIELDS = ("commission_usd", "margin_usd")


def stored(decision) -> str:
    return canonical(decision.to_dict())


def stored_as_reference(decision: OrderDecision) -> str:
    """The stored form without the fields the reference does not have."""
    return canonical({key: value for key, value in decision.to_dict().items() if key not in MARGIN_FIELDS})


def assert_margin(decision: OrderDecision, lines: list[OrderLine]) -> None:
    by_id = {item.line_id: item for item in lines}
    commission = sum(
        (
            by_id[decided.line_id].commission / decision_usd_rate(decision, decided.line_id)
            for decided in decision.lines
            if decided.exclusion is None
        ),
        Decimal(0),
    )
    assert decision.commission_usd == commission.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert decision.margin_usd == decision.commission_usd - decision.cashback_usd


def decision_usd_rate(decision: OrderDecision, line_id: str) -> Decimal:
    """The rate the trail says the line was converted at (1 for USD)."""
    for step in decision.trail:
        if step.rule == "base" and step.line_id == line_id:
            return Decimal(step.numbers.get("usd_rate") or "1")
    raise AssertionError(f"no base step for {line_id}")


CONFIGS = [
    config(),
    config(cap_usd="5.00", max_rate="0.10", min_cashback_usd="0.50", awaiting_payment_days=1, own_promo_codes=["OURS"]),
    config(cap_usd="0.05", vat_rates={"RU": "0.20", "DE": "0.19"}),
]
TIMES = ["2025-06-01T00:00:00Z", "2026-11-10T12:00:00Z", "2026-11-11T10:00:00Z", "2026-11-13T08:30:00Z"]


@st.composite
def order_lines(draw: st.DrawFn, line_id: str) -> OrderLine:
    amount = draw(st.decimals(min_value=0, max_value=2000, places=draw(st.sampled_from([0, 2, 4]))))
    currency, usd_rate = draw(st.sampled_from([("USD", None), ("EUR", "0.9"), ("RUB", "92.7"), ("RUB", None)]))
    return OrderLine.model_validate(
        {
            "partner": "aliexpress",
            "line_id": line_id,
            "order_id": "O-1",
            "sub_id": "sub-1",
            "status": draw(st.sampled_from(["paid", "settled", "received", "awaiting_payment", "invalid"])),
            "status_detail": draw(st.sampled_from([None, "FullRefund", "x" * 120])),
            "status_at": "2026-11-13T09:00:00Z",
            "ordered_at": draw(st.sampled_from(TIMES[1:])),
            "paid_at": draw(st.sampled_from([None, "2026-11-13T09:00:00Z", "2026-11-19T00:00:00Z"])),
            "amount": amount,
            "shipping": draw(st.sampled_from(["0", "3.50"])),
            "tax": draw(st.sampled_from([None, "0", str((amount / 6).quantize(Decimal("0.01")))])),
            "currency": currency,
            "usd_rate": usd_rate,
            "category_id": draw(st.sampled_from(["100001", "200002", "300003", "software", None])),
            "shop_id": draw(st.sampled_from(["shop-1", "plaza", None])),
            "is_affiliate": draw(st.booleans()),
            "is_hot": draw(st.booleans()),
            "promo_section": draw(st.sampled_from([None, "3_for_5_99"])),
            "promo_code": draw(st.sampled_from([None, "CODE", " ours "])),
            "promo_code_kind": draw(st.sampled_from([None, "service", "seller_coupon", "other"])),
            "added_to_cart_at": draw(st.sampled_from([None, "2026-11-01T00:00:00Z"])),
            "dispute": draw(st.booleans()),
            "price_adjusted": draw(st.booleans()),
            "ship_to_country": draw(st.sampled_from([None, "RU", "DE"])),
            "commission": draw(st.sampled_from(["0", "1.50", "12.34", "0.005"])),
            "new_user_coupon": draw(st.booleans()),
            "buyer_account": draw(st.sampled_from([None, "acc-1", "acc-2"])),
        }
    )


@st.composite
def orders(draw: st.DrawFn) -> dict:
    ids = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5, unique=True))
    chosen_click = draw(
        st.none()
        | st.builds(
            lambda at, currency: Click(
                sub_id="sub-1", user_id="user-1", clicked_at=at, partner="aliexpress", account_currency=currency
            ),
            st.sampled_from(TIMES),
            st.sampled_from(["USD", "RUB", "EUR", "GBP"]),
        )
    )
    return {
        "lines": [draw(order_lines(line_id)) for line_id in ids],
        "click": chosen_click,
        "config": draw(st.sampled_from(CONFIGS)),
        "now": datetime(2026, 11, draw(st.sampled_from([14, 20])), 12, tzinfo=UTC),
        "credited_on": draw(st.sampled_from([None, datetime(2026, 11, 25, tzinfo=UTC).date()])),
        "other_new_user_coupon_accounts": draw(st.sampled_from([frozenset(), frozenset({"acc-1"})])),
        "conflict": draw(st.sampled_from([(), ("user-1", "user-2")])),
    }


def _decide(decide, order: dict):
    arguments = dict(order)
    lines, chosen_click, chosen_config = arguments.pop("lines"), arguments.pop("click"), arguments.pop("config")
    try:
        return decide(lines, chosen_click, chosen_config, **arguments)
    except MissingFxRate as error:
        return f"MissingFxRate: {error}"
    except reference.MissingFxRate as error:
        return f"MissingFxRate: {error}"


@settings(max_examples=200, deadline=None)
@given(orders())
def test_the_refactored_rules_store_exactly_what_the_reference_stored(order: dict) -> None:
    decided, expected = _decide(decide_order, order), _decide(reference.decide_order, order)
    if isinstance(expected, str):
        assert decided == expected
        return
    assert stored_as_reference(decided) == stored(expected)
    assert_margin(decided, order["lines"])
    assert stored(OrderDecision.from_dict(json.loads(stored(decided)))) == stored(decided)


SCENARIOS = {
    "plain": ([line()], click()),
    "shipping and reported VAT": (
        [line(amount="126.00", tax="21.00", shipping="9.00", category_id="100001")],
        click(clicked_at="2026-11-01T00:00:00Z"),
    ),
    "cap across lines in RUB": (
        [line("a", amount="600.00", category_id="100001"), line("b", amount="300.00", category_id="100001")],
        click(account_currency="RUB"),
    ),
    "every exclusion": (
        [
            line("a", status="invalid", status_detail="FullRefund", shop_id="plaza", dispute=True),
            line("b", status="awaiting_payment", paid_at=None),
            line("c", promo_section="3_for_5_99"),
            line("d", added_to_cart_at="2026-11-10T00:00:00Z"),
            line("e", category_id="software"),
            line("f", promo_code="SALE", promo_code_kind="other"),
            line("g", amount="0.10"),
        ],
        click(),
    ),
    "no rate card": ([line()], click(clicked_at="2025-06-01T00:00:00Z")),
    "non-affiliate, hot, country VAT, EUR": (
        [
            line("a", is_affiliate=False, category_id="100001"),
            line("b", amount="120.00", ship_to_country="RU", is_hot=True),
        ],
        click(account_currency="EUR"),
    ),
    "unattributed": ([line()], None),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_stored_decisions_of_the_examples_are_byte_identical_and_round_trip(name: str) -> None:
    lines, chosen_click = SCENARIOS[name]
    expected = stored(reference.decide_order(lines, chosen_click, config(), now=NOW))
    decided = decide_order(lines, chosen_click, config(), now=NOW)
    assert stored_as_reference(decided) == expected
    assert_margin(decided, lines)
    read_back = OrderDecision.from_dict(json.loads(stored(decided)))
    assert read_back == decided
    assert stored(read_back) == stored(decided)
    assert isinstance(read_back.cashback_usd, Decimal) and isinstance(read_back.lines[0].base_usd, Decimal)


def test_a_held_order_and_a_conflict_are_stored_as_before() -> None:
    held = [line(new_user_coupon=True, buyer_account="acc-2")]
    for arguments in ({"other_new_user_coupon_accounts": frozenset({"acc-1"})}, {"conflict": ("u1", "u2")}):
        chosen_click = click() if "other_new_user_coupon_accounts" in arguments else None
        expected = reference.decide_order(held, chosen_click, config(), now=NOW, **arguments)
        decided = decide_order(held, chosen_click, config(), now=NOW, **arguments)
        assert stored_as_reference(decided) == stored(expected)
