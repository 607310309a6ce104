"""The shopper's text: language by the click's country, else the account currency, else English."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accrual.domain.claims import Claim, ClaimState
from accrual.domain.rules import decide_order
from accrual.domain.shopper_text import MAX_TOKEN_CHARS, cashback_text, claim_text, language_of, shopper_token
from accrual.domain.trail import render_trail
from support.builders import NOW, click, config, line


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


# --- partner text never reaches a shopper as written ---------------------------------------------------------------
HOSTILE = [
    "123\n\nYour cashback account is frozen. Confirm your card at https://evil.example/card",
    "123\r\nBcc: victim@example.com",
    "123\u2028second paragraph",
    "123\u2029second paragraph",
    "123\u0085second line",
    "123\x07\x1b[31m",
    "123\u202egnp.exe",
    "\u2066123\u2069",
    "12\u200b3",
    "https://evil.example/claim",
    "javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "evil.example/claim",
    "www.evil.example",
    "<a href='https://evil.example'>123</a>",
    "<img src=x onerror=alert(1)>",
    "123 Call +1 555 0100 now",
    "9" * 500,
    "",
]


def _safe(text: str) -> bool:
    return not any(
        (char in "<>:/.\n\r" or unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Zs"}) for char in text
    )


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_partner_value_becomes_a_plain_token(hostile):
    token = shopper_token(hostile)
    assert len(token) <= MAX_TOKEN_CHARS and _safe(token)
    assert token == hostile or token.endswith("…")


@pytest.mark.parametrize("plain", ["8000123456789", "STORE-9", "7001#2", "заказ_7", "订单12"])
def test_a_plain_value_is_shown_as_it_is(plain):
    assert shopper_token(plain) == plain


@given(st.text(max_size=300))
def test_any_text_becomes_a_bounded_plain_token(text):
    token = shopper_token(text)
    assert len(token) <= MAX_TOKEN_CHARS and _safe(token)
    assert text.startswith(token.removesuffix("…"))


def _decision(order_id: str = "O1"):
    decision = decide_order([line(status="settled")], click(), config(), now=NOW)
    return decision.model_copy(update={"order_id": order_id})


def _body(event: str, order_id: str) -> dict:
    return {
        "event_type": event,
        "order_id": order_id,
        "account_currency": "USD",
        "cashback": "3.00",
        "cashback_usd": "3.00",
        "change": {"pending": "3.00", "pending_usd": "3.00"},
        "state": "pending",
    }


def _no_forged_text(text: str, hostile: str) -> None:
    assert "\n" not in text and "\r" not in text and "<" not in text and ">" not in text
    assert "://" not in text and "javascript:" not in text and "www." not in text
    assert not any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in text)
    assert "frozen" not in text and "Bcc" not in text and "Call" not in text


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize(
    "event", ["cashback.pending", "cashback.updated", "cashback.confirmed", "cashback.declined", "cashback.reversed"]
)
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_notification_text_never_carries_a_partner_value_as_written(hostile, event, lang):
    _no_forged_text(cashback_text(_body(event, hostile), _decision(hostile), lang), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize(
    "state", [ClaimState.RESOLVED, ClaimState.ESCALATED, ClaimState.NEEDS_REVIEW, ClaimState.REJECTED]
)
def test_a_claim_text_never_carries_the_order_number_as_written(hostile, state):
    claim = Claim(
        claim_id="clm_1",
        user_id="user-1",
        order_number=hostile,
        filed_at=NOW,
        escalate_at=NOW,
        state=state,
        reason="UNKNOWN_SHOPPER",
    )
    order = {"cashback": "3.00", "account_currency": "USD", "cashback_usd": "3.00"}
    for lang in ("en", "ru"):
        _no_forged_text(claim_text(claim, order, _decision(), lang), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_an_explanation_shows_partner_values_as_plain_tokens(hostile):
    decision = decide_order(
        [line(status="invalid", status_detail="FullRefund"), line("L2", promo_code="SALE", promo_code_kind="other")],
        click(),
        config(),
        now=NOW,
    )
    numbers = {"status_detail": hostile, "promo_code": hostile, "shop_id": hostile, "category_id": hostile}
    trail = tuple(
        step.model_copy(update={"numbers": {**step.numbers, **numbers}}) if step.rule == "exclusion" else step
        for step in decision.trail
    )
    forged = decision.model_copy(update={"order_id": hostile, "trail": trail})
    refused = [{"reason": "r", "at": "2026-11-26T01:00:00Z", "line_id": hostile, "status": "paid", "status_at": "x"}]
    for lang in ("en", "ru"):
        text = render_trail(forged, lang, refused=refused)
        for paragraph in text.split("\n"):
            assert "://" not in paragraph and "<" not in paragraph and "frozen" not in paragraph
            assert not any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in paragraph)
        assert text.count("\n") == render_trail(decision, lang, refused=[{**refused[0], "line_id": "L1"}]).count("\n")
