"""Clicks are facts against a real (local) DynamoDB: the conditional writes keep a stored click and a shopper's
account currency when a concurrent load read the table before the other one wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import ClickRecord, ControlRecord, bind_ledger_tables
from accrual.domain.models import Click

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def a_click(sub_id: str = "s-1", user_id: str = "alice", currency: str = "EUR") -> Click:
    return Click(sub_id=sub_id, user_id=user_id, clicked_at=NOW, partner="aliexpress", account_currency=currency)


@pytest.fixture
def tables(stack):
    bind_ledger_tables(stack)
    return stack


def test_new_clicks_are_stored_once_and_the_shoppers_currency_recorded(tables):
    result = reference_data.store_clicks([a_click("s-1"), a_click("s-2"), a_click("s-3", "bob", "RUB")], now=NOW)
    assert (result.stored, result.unchanged, result.refused) == (["s-1", "s-2", "s-3"], [], {})
    assert reference_data.account_currencies(["alice", "bob", "carol"]) == {"alice": "EUR", "bob": "RUB"}
    again = reference_data.store_clicks([a_click("s-1"), a_click("s-4")], now=NOW)
    assert (again.stored, again.unchanged) == (["s-4"], ["s-1"])


def test_a_load_that_missed_a_concurrent_write_does_not_overwrite_it(tables, monkeypatch):
    reference_data.store_clicks([a_click("s-1", "alice")], now=NOW)
    monkeypatch.setattr(ClickRecord, "batch_get", classmethod(lambda cls, keys, **kwargs: iter(())))  # stale read
    result = reference_data.store_clicks([a_click("s-1", "mallory"), a_click("s-1b", "alice")], now=NOW)
    assert result.stored == ["s-1b"] and "'s-1'" in result.refused["s-1"] and "mallory" in result.refused["s-1"]
    assert reference_data.find_click("s-1").user_id == "alice"
    same = reference_data.store_clicks([a_click("s-1", "alice")], now=NOW)
    assert (same.stored, same.unchanged) == ([], ["s-1"])


def test_a_load_that_missed_a_concurrent_currency_does_not_store_a_second_one(tables, monkeypatch):
    reference_data.store_clicks([a_click("s-1", "alice", "EUR")], now=NOW)
    monkeypatch.setattr(reference_data, "account_currencies", lambda user_ids: {})  # stale read
    result = reference_data.store_clicks([a_click("s-2", "alice", "USD")], now=NOW)
    assert result.stored == [] and all(word in result.refused["s-2"] for word in ("'alice'", "EUR", "USD"))
    assert reference_data.find_click("s-2") is None
    assert ControlRecord.get("USER#alice", "ACCOUNT_CURRENCY").body == "EUR"


def test_save_clicks_refuses_what_contradicts_the_stored_facts(tables):
    assert reference_data.save_clicks([a_click("s-1"), a_click("s-1")], now=NOW) == 1
    with pytest.raises(reference_data.ClicksRefused, match="'s-1'"):
        reference_data.save_clicks([a_click("s-1", "bob")], now=NOW)
    with pytest.raises(reference_data.ClicksRefused, match="'bob'.*EUR.*USD"):
        reference_data.save_clicks([a_click("s-5", "bob", "EUR"), a_click("s-6", "bob", "USD")], now=NOW)


def test_a_large_load_that_missed_concurrent_writes_keeps_them_and_stores_the_rest(tables, monkeypatch):
    """New clicks and currencies go in transactions of several puts; one a concurrent write cancels is written again
    put by put: the rest of that transaction and of the other transactions is stored, the taken ones kept."""
    reference_data.store_clicks([a_click("s-7", "alice"), a_click("s-30", "bob"), a_click("s-51", "user-51")], now=NOW)
    monkeypatch.setattr(ClickRecord, "batch_get", classmethod(lambda cls, keys, **kwargs: iter(())))  # stale reads
    monkeypatch.setattr(reference_data, "account_currencies", lambda user_ids: {})
    clicks = [a_click(f"s-{number}", f"user-{number}", "USD") for number in range(60)]
    clicks[7] = a_click("s-7", "alice")  # the very click stored meanwhile
    clicks[30] = a_click("s-30", "mallory")  # another click under a sub_id stored meanwhile
    clicks[51] = a_click("s-51", "user-51", "USD")  # a shopper whose currency was recorded as EUR meanwhile
    result = reference_data.store_clicks(clicks, now=NOW)
    assert result.unchanged == ["s-7"]
    assert set(result.refused) == {"s-30", "s-51"} and "EUR" in result.refused["s-51"]
    assert len(result.stored) == 57 and {"s-7", "s-30", "s-51"}.isdisjoint(result.stored)
    assert all(reference_data.find_click(sub_id) is not None for sub_id in result.stored)
    assert reference_data.find_click("s-30").user_id == "bob"
    assert ControlRecord.get("USER#user-51", "ACCOUNT_CURRENCY").body == "EUR"
    assert ControlRecord.get("USER#user-52", "ACCOUNT_CURRENCY").body == "USD"
