"""A configuration that would make orders earn nothing is named value by value (and loaded only with --force), and a
mistyped key is named with the key it resembles."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from accrual.domain.config_checks import implausible
from accrual.domain.models import AccrualConfig
from accrual_dev.commands._common import describe_validation_error
from support.builders import NOW, config

CARD = config().rate_cards[0].model_dump(mode="json")


def fields(**changes) -> list[str]:
    return [problem.field for problem in implausible(config(**changes), NOW)]


def test_the_example_configuration_is_plausible():
    assert implausible(config(), NOW) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cap_usd": "0"}, "cap_usd"),
        ({"cap_usd": "5.00", "min_cashback_usd": "5.01"}, "min_cashback_usd"),
        ({"max_rate": "0"}, "max_rate"),
        ({"awaiting_payment_days": 0}, "awaiting_payment_days"),
        ({"rate_cards": [{**CARD, "valid_from": "2026-12-01T00:00:00Z"}]}, "rate_cards[partner=aliexpress]"),
        (
            {
                "rate_cards": [
                    {**CARD, "default_rate": "0", "non_affiliate_rate": "0", "hot_product_rate": None, "categories": {}}
                ]
            },
            "rate_cards.0",
        ),
        ({"virtual_categories": ["100001", "200002", "gift_cards"]}, "virtual_categories"),
    ],
    ids=["cap-0", "minimum-above-cap", "max-rate-0", "expire-at-once", "cards-in-the-future", "rates-0", "all-virtual"],
)
def test_a_value_that_makes_orders_earn_nothing_is_named(changes, field):
    assert fields(**changes) == [field]


def test_values_at_the_edge_of_plausible_are_not_named():
    assert fields(cap_usd="0.01", min_cashback_usd="0.01") == []
    # a card that ended is a configuration for past orders; one card in force among future ones is enough
    assert fields(rate_cards=[{**CARD, "valid_to": "2026-06-01T00:00:00Z"}]) == []
    assert fields(rate_cards=[CARD, {**CARD, "valid_from": "2027-01-01T00:00:00Z"}]) == []
    assert fields(virtual_categories=["100001"]) == []  # one category of two is virtual


def test_each_problem_says_why_with_the_value():
    (problem,) = implausible(config(cap_usd="5.00", min_cashback_usd="6.00"), NOW)
    assert str(problem) == "min_cashback_usd: is above cap_usd 5.00: no order can reach the minimum (value: 6.00)"


def refusal(document: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        AccrualConfig.model_validate(document)
    return describe_validation_error(caught.value, AccrualConfig)


def test_a_mistyped_key_is_refused_with_the_key_it_resembles():
    document = config().model_dump(mode="json")
    document["excluded_shop"] = document.pop("excluded_shops")
    document["rate_cards"][0]["default_rat"] = document["rate_cards"][0].pop("default_rate")
    document["usd_rates"] = {"RUB": "92"}
    document["colour"] = "blue"
    text = refusal(document)
    assert "excluded_shop: unknown key; did you mean 'excluded_shops'?" in text
    assert "rate_cards.0.default_rat: unknown key; did you mean 'default_rate'?" in text
    assert "usd_rates: unknown key; did you mean 'fx_rates'?" in text
    assert "colour: unknown key (known: awaiting_payment_days, cap_usd, " in text


def test_a_validators_message_has_no_pydantic_prefix():
    text = refusal({**config().model_dump(mode="json"), "own_promo_codes": [" "]})
    assert "own_promo_codes: own_promo_codes[0] is empty" in text and "Value error" not in text
