"""The shopper's text: language by the click's country, else the account currency, else English."""

from __future__ import annotations

import pytest

from accrual.domain.shopper_text import language_of


@pytest.mark.parametrize(
    "country, currency, lang",
    [
        ("RU", "USD", "ru"),
        ("KZ", "KZT", "ru"),
        ("DE", "RUB", "en"),
        ("US", None, "en"),
        (None, "RUB", "ru"),
        (None, "EUR", "en"),
        (None, None, "en"),
        ("ru", None, "ru"),
    ],
)
def test_language(country, currency, lang):
    assert language_of(country, currency) == lang
