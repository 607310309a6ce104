"""Every notification the job publishes is valid against its JSON Schema in schemas/ (body and message attributes),
and carries a short text the shopper can read, in the language of the shopper's click, saying why."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from accrual.adapters import reference_data
from accrual.composition import composition
from accrual.domain.claims import ClaimRequest
from accrual.domain.models import Click
from support.ledger import T0, line, load_reference_data, stored_outbox
from support.schemas import SCHEMAS, assert_valid_message

DAY = timedelta(days=1)

# a claim that gives the order's date and amount: evidence enough to be credited without an agent
EVIDENT = ClaimRequest(user_id="alice", order_number="I1", ordered_at=T0, amount=Decimal("100"), currency="USD")


def messages() -> list[tuple[dict, dict]]:
    return sorted(
        ((json.loads(message.body), json.loads(message.attributes)) for message in stored_outbox()),
        key=lambda pair: (pair[0]["occurred_at"], pair[0]["event_type"]),
    )


@pytest.fixture
def world(stack):
    load_reference_data(stack, {"alice": "EUR"}, fx_rates={"2026-01-01": {"EUR": "0.90", "RUB": "90.00"}})
    reference_data.save_clicks(
        [
            Click(
                sub_id="c-masha",
                user_id="masha",
                clicked_at=T0 - timedelta(hours=1),
                partner="aliexpress",
                account_currency="RUB",
                country="RU",
            ),
            Click(
                sub_id="c-ivan",
                user_id="ivan",
                clicked_at=T0 - timedelta(hours=1),
                partner="aliexpress",
                account_currency="RUB",
            ),  # no country: the account currency decides
        ],
        now=T0,
    )
    return stack


def test_every_event_type_is_published_valid_with_a_readable_text(world):
    ledger = composition(world).ledger()
    # alice (DE, English): pending, updated (amount down), confirmed, reversed
    ledger.reconcile([line("A1")], now=T0)
    ledger.reconcile([line("A1", amount="80.00", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    ledger.reconcile([line("A1", status="settled", amount="80.00", at=T0 + DAY)], now=T0 + DAY)
    ledger.confirm(now=T0 + 3 * DAY)
    ledger.reconcile(
        [line("A1", status="invalid", amount="80.00", status_detail="FullRefund", at=T0 + 4 * DAY)], now=T0 + 4 * DAY
    )
    # masha (RU, Russian): a non-affiliate product at 1% instead of 5%, and an order from an excluded shop
    ledger.reconcile([line("M1", user="masha", is_affiliate=False)], now=T0)
    ledger.reconcile([line("M2", user="masha", shop_id="plaza")], now=T0)
    # ivan (no country, RUB): a claim resolved, one escalated, one for someone else's order
    ledger.reconcile([line("I1", sub_id="lost")], now=T0)
    claims = composition(world).claims
    claims.file(EVIDENT.model_copy(update={"user_id": "ivan"}), now=T0 + DAY)
    claims.file(ClaimRequest(user_id="ivan", order_number="NOWHERE"), now=T0 + DAY)
    claims.file(ClaimRequest(user_id="ivan", order_number="M1"), now=T0 + DAY)
    ledger.confirm(now=T0 + 30 * DAY)
    claims.sweep(now=T0 + 30 * DAY)

    published = messages()
    for body, attributes in published:
        assert_valid_message(body, attributes)
    types = {body["event_type"] for body, _ in published}
    assert types == {path.name.removesuffix(".json") for path in SCHEMAS.glob("*.json")}

    def texts(user, event_type):
        return [
            (body["lang"], body["text"])
            for body, _ in published
            if body["user_id"] == user and body["event_type"] == event_type
        ]

    assert texts("alice", "cashback.pending") == [
        (
            "en",
            "Cashback 4.50 EUR (5.00 USD) for order A1 is pending: it is confirmed when the store settles the order.",
        )
    ]
    assert "changed by -0.90 EUR (-1.00 USD)" in texts("alice", "cashback.updated")[0][1]
    assert "is confirmed" in texts("alice", "cashback.confirmed")[0][1]
    [(_, reversed_text)] = texts("alice", "cashback.reversed")
    assert "taken back" in reversed_text and "the store cancelled the order (full refund)" in reversed_text
    [(lang, reduced)] = texts("masha", "cashback.pending")
    assert lang == "ru" and "ставка 1%, а не 5%" in reduced
    [(lang, declined)] = texts("masha", "cashback.declined")
    assert lang == "ru" and "этот продавец не платит кэшбэк" in declined
    assert [lang for lang, _ in texts("ivan", "claim.resolved")] == ["ru"]
    assert "передана в службу поддержки" in texts("ivan", "claim.escalated")[0][1]
    assert "начислен другому аккаунту" in texts("ivan", "claim.rejected")[0][1]


def test_the_relay_publishes_claim_messages_with_their_filterable_attributes(world):
    composition(world).ledger().reconcile([line("I1", sub_id="lost")], now=T0)
    composition(world).claims.file(EVIDENT, now=T0 + DAY)
    composition(world).relay.publish_unpublished(now=T0 + DAY)
    import boto3

    sqs = boto3.client("sqs", region_name=world.region)
    received = sqs.receive_message(
        QueueUrl=world.local_notifications_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    bodies = [json.loads(json.loads(message["Body"])["Message"]) for message in received]
    resolved = [body for body in bodies if body["event_type"] == "claim.resolved"]
    assert len(resolved) == 1
    envelope = next(
        json.loads(message["Body"])
        for message in received
        if json.loads(json.loads(message["Body"])["Message"])["event_type"] == "claim.resolved"
    )
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {
        "event_type": "claim.resolved",
        "state": "resolved",
        "account_currency": "EUR",
        "partner": "aliexpress",
    }
    assert_valid_message(resolved[0], attributes)
