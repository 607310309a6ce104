"""The limits of a click and the checks of a configuration against the world (docs/rules.md, "Identity and integrity"),
the batch checks of clicks, the fx band and the configuration diff."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from accrual.domain import models
from accrual.domain.click_batch import screen
from accrual.domain.config_diff import describe, diff, fx_out_of_band
from accrual.domain.currencies import ISO_4217
from accrual.domain.decision import Code
from accrual.domain.rules import decide_order
from accrual_dev.commands._common import FX_BAND, describe_validation_error
from support.builders import NOW, click, config, line


def problems(build, *args, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        build(*args, **kwargs)
    return describe_validation_error(caught.value)


# --- currencies ------------------------------------------------------------------------------------------------------


def test_the_iso_4217_list_holds_active_codes_only():
    assert {"USD", "EUR", "RUB", "UAH", "KZT", "XCG", "ZWG"} <= ISO_4217
    # recently replaced codes (SLL, ZWL, ANG) stay beside their successors: late reports still name them
    assert not {"HRK", "CUC", "VEF", "XTS", "XXX", "usd", "ABC"} & ISO_4217
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in ISO_4217)


# --- click -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"sub_id": "x" * 257}, "sub_id", "257 bytes"),
        ({"sub_id": "é" * 129}, "sub_id", "258 bytes"),  # 129 characters, 2 bytes each
        ({"user_id": "u" * 300}, "user_id", "300 bytes"),
        ({"user_id": "a\x00b"}, "user_id", "control or format character"),
        ({"sub_id": " "}, "sub_id", "at least 1"),
        ({"partner": "AliExpress"}, "partner", "did you mean 'aliexpress'"),
        ({"partner": "ali express!"}, "partner", "lowercase slug"),
        ({"clicked_at": "1999-12-31T23:59:59Z"}, "clicked_at", "2000..2100"),
        ({"clicked_at": "2101-01-01T00:00:00Z"}, "clicked_at", "2000..2100"),
        ({"account_currency": "ABC"}, "account_currency", "'ABC' is not an active ISO 4217 code"),
        ({"account_currency": "rub"}, "account_currency", "did you mean 'RUB'"),
        ({"account_currency": "HRK"}, "account_currency", "'HRK'"),
    ],
)
def test_a_click_outside_the_limits_is_refused_naming_the_field(changes, field, words):
    message = problems(click, **changes)
    assert message.startswith(f"{field}:") and words in message


def test_a_click_at_the_limits_is_accepted():
    assert (
        click(
            sub_id="x" * 256,
            user_id="я" * 128,
            partner="my-shop_2",
            clicked_at="2000-01-01T00:00:00Z",
            account_currency="KZT",
        ).sub_id
        == "x" * 256
    )
    assert click(clicked_at="2100-12-31T23:59:59Z").clicked_at.year == 2100


# --- configuration ---------------------------------------------------------------------------------------------------


CARD = {"partner": "aliexpress", "valid_from": "2026-01-01T00:00:00Z", "default_rate": "0.03"}
PROMO = {
    "partner": "aliexpress",
    "categories": ["1"],
    "rate": "0.08",
    "starts_at": "2026-11-11T00:00:00Z",
    "ends_at": "2026-11-12T00:00:00Z",
}


def test_the_known_partners_default_to_aliexpress_and_admitad():
    assert config().partners == ["aliexpress", "admitad"]


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"rate_cards": [{**CARD, "partner": "AliExpress"}]}, "rate_cards.0.partner", "did you mean 'aliexpress'"),
        ({"rate_cards": [{**CARD, "partner": "amazon"}]}, "rate_cards.0.partner", "'amazon' is not one of the known"),
        ({"promotions": [{**PROMO, "partner": "ebay"}]}, "promotions.0.partner", "'ebay'"),
        ({"hold_days": {"awin": 3}}, "hold_days.awin", "'awin'"),
        ({"partners": ["aliexpress", "Admitad"]}, "partners.1", "did you mean 'admitad'"),
        ({"partners": []}, "partners", "at least 1"),
        ({"partners": ["aliexpress", "aliexpress"]}, "partners", "listed twice"),
        ({"rate_cards": [{**CARD, "default_rate": "0.41"}]}, "rate_cards.0.default_rate", "0..0.40"),
        ({"rate_cards": [{**CARD, "categories": {"9": "-0.01"}}]}, "rate_cards.0.categories.9", "0..0.40"),
        ({"rate_cards": [{**CARD, "hot_product_rate": "NaN"}]}, "rate_cards.0.hot_product_rate", "finite"),
        ({"promotions": [{**PROMO, "rate": "0.5"}]}, "promotions.0.rate", "0..0.40"),
        ({"max_rate": "0.5"}, "max_rate", "0..0.40"),
        ({"awaiting_payment_days": -1}, "awaiting_payment_days", "greater than or equal to 0"),
        ({"awaiting_payment_days": 2.5}, "awaiting_payment_days", "valid integer"),
        ({"awaiting_payment_days": "3"}, "awaiting_payment_days", "valid integer"),
        ({"hold_days": {"aliexpress": -2}}, "hold_days.aliexpress", "greater than or equal to 0"),
        ({"hold_days": {"aliexpress": 10**9}}, "hold_days.aliexpress", "less than or equal to 3650"),
        ({"fx_rates": {"2026-01-01": {"RUB": "0"}}}, "fx_rates.2026-01-01.RUB", "not a positive"),
        ({"fx_rates": {"2026-01-01": {"RUB": "-92"}}}, "fx_rates.2026-01-01.RUB", "not a positive"),
        ({"fx_rates": {"2026-01-01": {"RUB": "Infinity"}}}, "fx_rates.2026-01-01.RUB", "finite"),
        ({"fx_rates": {"2026-01-01": {"RUB": "1e400"}}}, "fx_rates.2026-01-01.RUB", "not plausible"),
        ({"fx_rates": {"2026-01-01": {"RUB": "1e-400"}}}, "fx_rates.2026-01-01.RUB", "not plausible"),
        ({"fx_rates": {"2026-01-01": {"RUB": "1000001"}}}, "fx_rates.2026-01-01.RUB", "not plausible"),
        ({"fx_rates": {"2026-01-01": {"XYZ": "1"}}}, "fx_rates.2026-01-01.XYZ", "'XYZ' is not an active ISO 4217"),
        ({"own_promo_codes": ["  "]}, "own_promo_codes", "empty"),
    ],
)
def test_a_configuration_against_the_world_is_refused_naming_the_field_path(changes, field, words):
    message = problems(config, **changes)
    assert field in message and words in message, message


def test_an_fx_rate_of_1e400_as_a_json_number_is_refused_without_a_crash():
    document = json.dumps({"version": "v", "rate_cards": [CARD], "fx_rates": {"2026-01-01": {"RUB": "HUGE"}}})
    message = problems(models.AccrualConfig.model_validate_json, document.replace('"HUGE"', "1e400"))
    assert "fx_rates.2026-01-01.RUB" in message and "finite" in message


def test_every_problem_of_a_configuration_is_named_at_once():
    message = problems(
        config,
        rate_cards=[{**CARD, "partner": "amazon"}],
        promotions=[{**PROMO, "partner": "ebay"}],
        hold_days={"awin": 1},
    )
    assert len(message.splitlines()) == 3


def test_a_configuration_at_the_limits_is_accepted():
    cfg = config(
        partners=["aliexpress", "admitad", "awin"],
        rate_cards=[{**CARD, "default_rate": "0.40"}, {**CARD, "partner": "awin"}],
        hold_days={"awin": 0, "aliexpress": 3650},
        awaiting_payment_days=0,
        fx_rates={"2026-01-01": {"RUB": "0.0001", "VND": "1000000"}},
        own_promo_codes=["CASHBACK10"],
    )
    assert cfg.hold_days_for("aliexpress") == 3650 and cfg.own_promo_codes == ["CASHBACK10"]


# --- own promo codes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, kind, excluded",
    [
        (" cashback10 ", None, False),  # on the list (case and spaces ignored): the service's own
        ("CashBack10", "other", False),
        ("SALE", None, True),
        ("SALE", "other", True),
        ("SALE", "seller_coupon", False),
        ("SALE", "service", False),  # the partner says it is the service's own
    ],
)
def test_a_code_on_own_promo_codes_keeps_cashback_and_other_unknown_codes_exclude(code, kind, excluded):
    decision = decide_order(
        [line(promo_code=code, promo_code_kind=kind)], click(), config(own_promo_codes=[" CASHBACK10"]), now=NOW
    )
    assert (Code.PROMO_CODE_NOT_ALLOWED in decision.reasons) == excluded


# --- a batch of clicks -----------------------------------------------------------------------------------------------


def test_a_batch_counts_the_same_click_once_and_refuses_a_sub_id_with_two_contents():
    first, changed = click(sub_id="a"), click(sub_id="a", user_id="user-2")
    result = screen([(1, click(sub_id="b")), (2, click(sub_id="b")), (3, first), (4, changed), (5, click(sub_id="c"))])
    assert [entry.sub_id for _, entry in result.accepted] == ["b", "c"] and result.repeated == 1
    assert [(refusal.line, refusal.sub_id) for refusal in result.refusals] == [(3, "a"), (4, "a")]
    assert "lines 3, 4" in result.refusals[0].reason and "user_id 'user-1' → 'user-2'" in result.refusals[0].reason


def test_a_batch_refuses_a_second_currency_of_a_shopper_naming_both():
    result = screen(
        [
            (1, click(sub_id="a", account_currency="RUB")),
            (2, click(sub_id="b", account_currency="USD")),
            (3, click(sub_id="c", user_id="user-2", account_currency="USD")),
        ]
    )
    assert [entry.sub_id for _, entry in result.accepted] == ["a", "c"]
    (refusal,) = result.refusals
    assert refusal.line == 2 and all(word in refusal.reason for word in ("'b'", "'user-1'", "RUB", "USD", "line 1"))


# --- fx band and diff ------------------------------------------------------------------------------------------------


FX = {"2026-01-01": {"RUB": "90.00", "EUR": "0.90"}, "2026-06-01": {"RUB": "100.00"}}


@pytest.mark.parametrize(
    "rates, out",
    [
        ({"2026-07-01": {"RUB": "199.99", "EUR": "0.46"}}, []),  # within a factor of 2 of the latest (100, 0.90)
        ({"2026-07-01": {"RUB": "201"}}, ["RUB"]),
        ({"2026-07-01": {"EUR": "0.44"}}, ["EUR"]),
        ({"2026-03-01": {"RUB": "181"}}, ["RUB"]),  # compared with the rate in force that day (90)
        ({"2026-07-01": {"KZT": "480"}}, []),  # no previous rate: only the plausible range applies
    ],
)
def test_a_new_fx_rate_far_from_the_previous_versions_is_out_of_band(rates, out):
    previous, new = config(fx_rates=FX), config(version="v2", fx_rates={**FX, **rates})
    assert [problem.currency for problem in fx_out_of_band(previous, new)] == out


def test_unchanged_historic_fx_rates_are_not_held_to_the_band():
    previous = config(fx_rates={"2020-01-01": {"RUB": "30"}, "2026-01-01": {"RUB": "90"}})
    assert fx_out_of_band(previous, config(version="v2", fx_rates=previous.fx_rates)) == []


def test_the_diff_names_each_change_by_what_names_the_thing():
    old = config(fx_rates=FX)
    new = config(
        version="v2",
        fx_rates={**FX, "2026-06-01": {"RUB": "101.00"}},
        excluded_shops=[],
        promotions=[{**PROMO, "categories": ["100001", "7"]}],
        hold_days={"admitad": 5},
        rate_cards=[{**old.rate_cards[0].model_dump(mode="json"), "default_rate": "0.035"}],
    )
    result = diff(old, new)
    found = {
        (" › ".join(change["path"]), change["change"], change.get("from"), change.get("to"))
        for change in result["changes"]
    }
    assert found == {
        ("rate_cards › aliexpress from 2026-01-01T00:00:00+00:00 › default_rate", "changed", "0.03", "0.035"),
        (
            "promotions › aliexpress 2026-11-11T00:00:00+00:00..2026-11-12T00:00:00+00:00 › categories",
            "added",
            None,
            "7",
        ),
        ("exclusions › excluded_shops", "removed", "plaza", None),
        ("fx_rates › 2026-06-01 › RUB", "changed", "100.00", "101.00"),
        ("days › hold_days › admitad", "added", None, 5),
    }
    lines = describe(result)
    assert lines[0].endswith(f"{len(result['changes'])} changes") and any(
        "~ fx_rates › 2026-06-01 › RUB" in text for text in lines
    )


def test_with_nothing_stored_everything_is_new_and_equal_documents_differ_in_nothing():
    result = diff(None, config())
    assert result["from_version"] is None and {change["change"] for change in result["changes"]} == {"added"}
    assert diff(config(), config(version="v2"))["changes"] == []
    assert fx_out_of_band(config(), config()) == []
    assert date(2026, 11, 1) in config().fx_rates


def test_the_cli_repeats_the_fx_band_of_the_model():
    assert D(FX_BAND) == models.FX_BAND
