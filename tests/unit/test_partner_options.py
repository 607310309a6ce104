"""Partner options: the SSM JSON documents accepted as before, typed by pydantic, and refused with the field and the
value named when they are wrong."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from accrual.partners import PartnerOptions, PartnerOptionsError, options_from_json

DOCUMENTS = [
    # the local stack's options parameter (rates written as strings)
    (
        '{"usd_rates": {"RUB": "92.50", "EUR": "0.93"}}',
        {"usd_rates": {"RUB": Decimal("92.50"), "EUR": Decimal("0.93")}},
    ),
    # rates as JSON numbers are read exactly, never through a float
    (
        '{"usd_rates": {"RUB": 92.50, "KZT": 471.1234567890123456}, "minor_units": 1}',
        {"usd_rates": {"RUB": Decimal("92.50"), "KZT": Decimal("471.1234567890123456")}, "minor_units": 1},
    ),
    # a CSV drop's columns parameter
    (
        json.dumps(
            {
                "columns": {"line_id": "Transaction ID", "amount": "Sale Amount"},
                "statuses": {"Approved": "settled"},
                "delimiter": ";",
                "timezone": "Europe/Moscow",
                "partner": "awin",
            }
        ),
        {
            "columns": {"line_id": "Transaction ID", "amount": "Sale Amount"},
            "statuses": {"Approved": "settled"},
            "delimiter": ";",
            "timezone": "Europe/Moscow",
            "partner": "awin",
        },
    ),
    ("{}", {}),
]


@pytest.mark.parametrize("document, expected", DOCUMENTS)
def test_the_documents_in_use_are_accepted_with_exact_values(document: str, expected: dict) -> None:
    options = options_from_json(document)
    assert options == PartnerOptions(**expected)
    for name, value in expected.items():
        assert getattr(options, name) == value
    assert options_from_json(document.encode()) == options
    assert options_from_json(json.loads(document, parse_float=Decimal)) == options


def test_no_document_gives_the_defaults() -> None:
    options = options_from_json(None)
    assert (options.minor_units, dict(options.usd_rates), options.timezone, options.delimiter) == (100, {}, "UTC", ",")


@pytest.mark.parametrize(
    "document, named",
    [
        ('{"usd_rate": {"RUB": "92.5"}}', "usd_rate: unknown option (known: minor_units, usd_rates"),
        ('{"minor_units": 0}', "minor_units=0: "),
        ('{"minor_units": "100"}', 'minor_units="100": '),
        ('{"minor_units": 1.5}', "minor_units=1.5: "),
        ('{"usd_rates": {"RUB": "abc"}}', 'usd_rates.RUB="abc": '),
        ('{"usd_rates": {"RUB": -92}}', "usd_rates.RUB=-92: "),
        ('{"usd_rates": {"RUB": "Infinity"}}', 'usd_rates.RUB="Infinity": '),
        ('{"timezone": "Moscow"}', 'timezone="Moscow": not a time zone name'),
        ('{"delimiter": ";;"}', 'delimiter=";;": '),
        ("[1, 2]", "expected a JSON object of options, got [1, 2]"),
        ('{"usd_rates": ', "not JSON"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field_and_the_value(document: str, named: str) -> None:
    with pytest.raises(PartnerOptionsError) as refused:
        options_from_json(document, source="SSM parameter /accrual/partners/aliexpress/options")
    message = str(refused.value)
    assert message.startswith("SSM parameter /accrual/partners/aliexpress/options: ")
    assert named in message
    assert "\n" not in message


def test_every_problem_of_a_document_is_named_at_once() -> None:
    with pytest.raises(PartnerOptionsError) as refused:
        options_from_json('{"minor_units": -1, "timezone": "Nowhere/City", "colums": {}}')
    message = str(refused.value)
    assert "minor_units=-1" in message and 'timezone="Nowhere/City"' in message and "colums: unknown option" in message


def test_options_are_frozen_and_derived_ones_are_validated_too() -> None:
    options = options_from_json('{"delimiter": ";"}')
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.delimiter = ","  # type: ignore[misc]
    named = dataclasses.replace(options, partner="shop")
    assert (named.partner, named.delimiter) == ("shop", ";")
    with pytest.raises(ValueError, match="minor_units"):
        dataclasses.replace(options, minor_units=0)
