"""The money path where real feeds go wrong: orders of hundreds of lines, a line renumbered into another order, lines
of one order naming different shoppers, unmatched sub-ids, implausible exchange rates, throttling, money taken back
without a decline, and an audit that finds each of these faults when it is planted straight into the tables."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from botocore.awsrequest import AWSResponse
from pynamodb.connection import Connection

from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.adapters.ledger_tables import (
    BalanceRecord,
    FactsRecord,
    JournalEntryRecord,
    LineRecord,
    OrderRecord,
)
from accrual.composition import composition
from accrual.domain.lifecycle import ReviewVerdict
from accrual.ports.ledger import utc_text
from accrual.service.ledger import Ledger
from support.ledger import T0, balance_of, line, load_reference_data, plant_lines, stored_outbox
from support.readers import audit, balance, explain

D = Decimal


@pytest.fixture
def ledger(stack):
    load_reference_data(
        stack, users={"alice": "EUR", "bob": "USD"}, fx_rates={"2026-01-01": {"EUR": "0.90", "RUB": "92.50"}}
    )
    return composition(stack).ledger()


def outbox() -> list[tuple[str, str]]:
    return sorted((message.user_id, message.event_type) for message in stored_outbox())


# ---- orders of any size -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [96, 1000])  # one transaction, and ten times its limit
def test_an_order_of_many_lines_is_settled_capped_and_confirmed(stack, ledger, count):
    lines = [line("BIG", f"BIG-{index:04d}", amount="10.00") for index in range(count)]
    counts = ledger.reconcile(lines, now=T0)
    assert counts.get("orders_failed", 0) == 0 and counts["lines_applied"] == count
    order = explain(stack, "BIG")
    expected = min(D("0.50") * count, D("40.00"))
    assert order["state"] == "pending" and D(order["cashback_usd"]) == expected
    assert len(order["lines"]) == count and sum(D(item["cashback_usd"]) for item in order["lines"]) == expected
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile(
        [line("BIG", f"BIG-{index:04d}", amount="10.00", status="settled", at=settled_at) for index in range(count)],
        now=settled_at,
    )
    ledger.confirm(now=settled_at + timedelta(days=1))
    assert explain(stack, "BIG")["state"] == "confirmed" and balance_of("alice")[1] == expected
    assert audit(stack)["ok"]


def test_a_large_order_an_earlier_version_stopped_after_its_line_facts_is_finished_by_the_rerun(stack, ledger):
    # the earlier form wrote a large order's lines ahead of its transaction, under a FACTS marker; a run that stopped
    # there left line items and no order item
    lines = [line("BIG", f"BIG-{index:03d}", amount="1.00") for index in range(120)]
    FactsRecord("aliexpress#BIG", version=0).save()
    for item in lines:
        LineRecord(
            "aliexpress#BIG",
            f"LINE#{item.line_id}",
            status=item.status.value,
            status_at=utc_text(item.status_at),
            body=item.model_dump_json(),
        ).save()
    assert ledger.reconcile(lines, now=T0)["orders_changed"] == 1
    assert explain(stack, "BIG")["cashback_usd"] == "6.00" and balance_of("alice")[0] == D("6.00")
    assert OrderRecord.get("aliexpress#BIG", "ORDER").packed is not None
    assert audit(stack)["ok"]


def test_long_invalidation_texts_keep_the_decision_and_the_notification_bounded(stack, ledger):
    reason = "refund requested by the buyer because " + "the parcel never arrived " * 30
    lines = [
        line("LONG", f"L-{index:03d}", status="invalid", status_detail=reason[:1000], at=T0 + timedelta(hours=1))
        for index in range(400)
    ]
    ledger.reconcile([line("LONG", "L-000")], now=T0)
    counts = ledger.reconcile(lines, now=T0 + timedelta(hours=1))
    assert counts.get("orders_failed", 0) == 0
    assert explain(stack, "LONG")["state"] == "declined"
    assert len(OrderRecord.get("aliexpress#LONG", "ORDER").packed) < 400_000
    assert all(len(message.body) < 64_000 for message in stored_outbox())
    assert audit(stack)["ok"]


# ---- one partner line, one order ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arrival", ["in order", "renumbered first"])
def test_a_line_renumbered_into_the_stores_order_is_credited_once(stack, ledger, arrival):
    early = line("ACTION-7", "7#1", amount="80.00", at=T0)
    renumbered = line("STORE-42", "7#1", amount="80.00", at=T0 + timedelta(hours=2))
    for version in [early, renumbered] if arrival == "in order" else [renumbered, early]:
        ledger.reconcile([version], now=T0 + timedelta(hours=3))
    assert balance_of("alice")[0] == D("4.00")
    assert explain(stack, "STORE-42")["state"] == "pending"
    if arrival == "in order":
        assert explain(stack, "ACTION-7")["state"] == "moved"
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("STORE-42", "7#1", amount="80.00", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    assert balance_of("alice") == (D("0.00"), D("4.00"), D("0.00"), D("3.60"))
    homes = DynamoLedgerStore(stack).line_homes("aliexpress", "7#1")
    store = DynamoLedgerStore(stack)
    live = [
        key
        for key in sorted(homes)
        for item in store.load_order(key).lines
        if '"line_id":"7#1"' in item.body and not item.moved_to
    ]
    assert live == ["aliexpress#STORE-42"]
    assert audit(stack)["ok"]


# ---- one order, one shopper --------------------------------------------------------------------------------------


def test_lines_naming_two_shoppers_hold_the_order_and_money_never_crosses(stack, ledger):
    ledger.reconcile([line("SHARED", "S-1", amount="100.00", user="alice")], now=T0)
    assert balance_of("alice")[0] == D("5.00")
    ledger.reconcile([line("SHARED", "S-2", amount="100.00", user="bob")], now=T0 + timedelta(hours=1))
    held = explain(stack, "SHARED")
    assert held["state"] == "on_review" and "ATTRIBUTION_CONFLICT" in held["reasons"]
    assert balance_of("alice") == (D("0.00"),) * 4 and balance_of("bob") == (D("0"),) * 4
    assert ("alice", "cashback.updated") in outbox()
    assert audit(stack)["ok"]
    with pytest.raises(ValueError):
        ledger.review("aliexpress#SHARED", ReviewVerdict.RELEASED, now=T0 + timedelta(hours=2))
    ledger.review("aliexpress#SHARED", ReviewVerdict.RELEASED, now=T0 + timedelta(hours=2), user_id="bob")
    released = explain(stack, "SHARED")
    assert (released["state"], released["user_id"], released["cashback_usd"]) == ("pending", "bob", "10.00")
    assert balance_of("bob")[0] == D("10.00") and balance_of("alice")[0] == 0
    assert audit(stack)["ok"]


def test_a_line_with_an_unknown_sub_id_does_not_unattribute_or_wedge_the_order(stack, ledger):
    ledger.reconcile([line("W", "W-2", amount="100.00")], now=T0)
    counts = ledger.reconcile([line("W", "W-1", amount="20.00", sub_id="no-such-click")], now=T0)
    assert counts.get("journal_conflicts", 0) == 0 and counts.get("orders_failed", 0) == 0
    order = explain(stack, "W")
    assert (order["state"], order["user_id"], order["cashback_usd"]) == ("pending", "alice", "6.00")
    again = ledger.confirm(now=T0 + timedelta(days=20))
    assert again.get("journal_conflicts", 0) == 0 and again.get("orders_failed", 0) == 0
    assert audit(stack)["ok"]


def test_confirmed_money_stays_with_its_shopper_when_a_line_names_another(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("C", "C-1", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    ledger.reconcile(
        [line("C", "C-2", user="bob", status="settled", at=settled_at)], now=settled_at + timedelta(days=2)
    )
    assert explain(stack, "C")["user_id"] == "alice" and balance_of("alice")[1] == D("5.00")
    assert balance_of("bob") == (D("0"),) * 4 and audit(stack)["ok"]


# ---- currencies -------------------------------------------------------------------------------------------------


def test_an_inverted_exchange_rate_is_quarantined_not_paid(stack, ledger):
    lines = [
        line("RUB-1", amount="1000.00", currency="RUB", usd_rate="0.0108"),
        line("RUB-2", amount="1000.00", currency="RUB", usd_rate="91.00"),
        line("RUB-3", amount="1000.00", currency="RUB", usd_rate=None),
    ]
    accepted, refused = ledger.screen(lines)
    assert [order_line.order_id for order_line, _ in refused] == ["RUB-1"]
    assert "usd_rate=0.0108" in refused[0][1]
    ledger.reconcile(accepted, now=T0)
    by_config = explain(stack, "RUB-3")
    assert by_config["cashback_usd"] == "0.54"  # 1000 / 92.50 * 5%
    assert any(step["numbers"].get("usd_rate_source", "").startswith("configuration") for step in by_config["trail"])
    assert explain(stack, "RUB-2")["cashback_usd"] == "0.55"


def test_a_currency_without_any_rate_and_an_unknown_partner_are_quarantined(stack, ledger):
    _, refused = ledger.screen([line("X", amount="10.00", currency="GBP", usd_rate=None), line("Y", partner="ebay")])
    reasons = [reason for _, reason in refused]
    assert len(reasons) == 2 and "GBP" in reasons[0] and "ebay" in reasons[1]


# ---- throttling ---------------------------------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


def _throttle_orders(connection: Connection, order: str, times: int | None) -> list[int]:
    calls = [0]

    def throttle(request, **_):
        if order.encode() in (request.body or b"") and (times is None or calls[0] < times):
            calls[0] += 1
            return AWSResponse(
                request.url,
                400,
                {"x-amzn-ErrorType": "ThrottlingException"},
                _Raw(
                    b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
                    b'"message":"Rate of requests exceeds the allowed throughput."}'
                ),
            )
        return None

    connection.client.meta.events.register_first("before-send.dynamodb.TransactWriteItems", throttle)
    return calls


def test_throttling_is_retried_and_an_order_that_still_fails_is_left_for_the_next_run(stack, ledger):
    calls = _throttle_orders(ledger.store.connection, "aliexpress#A", times=2)
    assert ledger.reconcile([line("A")], now=T0).get("orders_failed", 0) == 0
    assert calls[0] == 2 and balance_of("alice")[0] == D("5.00")

    connection = Connection(region=stack.region, host=stack.dynamodb_host, max_retry_attempts=1)
    stubborn = Ledger(DynamoLedgerStore(stack, connection=connection))
    _throttle_orders(connection, "aliexpress#B", times=None)
    counts = stubborn.reconcile([line("B"), line("C")], now=T0)
    assert counts["orders_failed"] == 1 and counts["orders_changed"] == 1
    assert explain(stack, "C")["state"] == "pending" and explain(stack, "B") is None
    assert composition(stack).ledger().reconcile([line("B"), line("C")], now=T0)["orders_changed"] == 1
    assert balance_of("alice")[0] == D("15.00") and audit(stack)["ok"]


# ---- every change of a balance is announced ----------------------------------------------------------------------


def test_money_taken_back_to_awaiting_payment_is_announced(stack, ledger):
    ledger.reconcile([line("P")], now=T0)
    ledger.reconcile(
        [line("P", status="awaiting_payment", paid_at=None, at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1)
    )
    assert explain(stack, "P")["state"] == "awaiting_payment" and balance_of("alice")[0] == 0
    assert outbox() == [("alice", "cashback.pending"), ("alice", "cashback.updated")]
    assert audit(stack)["ok"]


# ---- the audit finds what the ledger must never do ----------------------------------------------------------------


def _plant_entry(order: str, user: str, currency: str, pending: str, sequence: int = 9) -> None:
    JournalEntryRecord(
        order,
        f"ENTRY#{sequence:06d}#pending",
        entry_id=f"{order}#{sequence:06d}#pending",
        transition="pending",
        user_id=user,
        account_currency=currency,
        fx_rate=D("1"),
        pending_usd=D(pending),
        confirmed_usd=D("0"),
        pending=D(pending),
        confirmed=D("0"),
        state_to="pending",
        digest="planted",
        at="2026-03-01T00:00:00.000000Z",
    ).save()
    BalanceRecord(user).update(
        actions=[
            BalanceRecord.pending_usd.add(D(pending)),
            BalanceRecord.pending.add(D(pending)),
            BalanceRecord.account_currency.set(currency),
        ]
    )


def _kinds(result) -> set[tuple[str, str]]:
    return {
        (item["kind"], item.get("order") or item.get("user_id") or item.get("line")) for item in result["differences"]
    }


def test_audit_finds_a_partner_line_held_by_two_orders(stack, ledger):
    ledger.reconcile([line("A", "shared-line"), line("B", "other-line")], now=T0)
    plant_lines(stack, "aliexpress#B", [line("B", "other-line"), line("A", "shared-line")])
    result = audit(stack)
    assert not result["ok"] and ("line_in_two_orders", "aliexpress#shared-line") in _kinds(result)
    assert ("order_unreadable", "aliexpress#B") in _kinds(result)  # B now holds a line of order A


def test_audit_finds_an_orders_money_with_another_shopper(stack, ledger):
    ledger.reconcile([line("A")], now=T0)
    _plant_entry("aliexpress#A", "bob", "USD", "5.00")
    result = audit(stack)
    assert not result["ok"] and ("money_with_other_shopper", "aliexpress#A") in _kinds(result)


def test_audit_finds_a_balance_mixing_currencies_and_a_negative_pending(stack, ledger):
    ledger.reconcile([line("A")], now=T0)
    _plant_entry("aliexpress#A", "alice", "RUB", "-9.00")
    kinds = _kinds(audit(stack))
    assert ("mixed_currencies", "alice") in kinds and ("negative_pending", "alice") in kinds


def test_audit_finds_an_order_holding_what_its_lines_no_longer_decide(stack, ledger):
    ledger.reconcile([line("A")], now=T0)
    plant_lines(stack, "aliexpress#A", [line("A", amount="900.00")])
    result = audit(stack)
    assert not result["ok"] and ("decision", "aliexpress#A") in _kinds(result)


def test_audit_finds_an_order_whose_holding_is_not_its_shoppers_journal(stack, ledger):
    ledger.reconcile([line("A")], now=T0)
    record = OrderRecord.get("aliexpress#A", "ORDER")
    record.update(actions=[OrderRecord.user_id.set("bob")])
    kinds = _kinds(audit(stack))
    assert ("order_holding", "aliexpress#A") in kinds and ("money_with_other_shopper", "aliexpress#A") in kinds
    assert ledger.load_order("aliexpress#A").record.user_id == "bob"
    assert balance(stack, "alice")["pending_usd"] == "5.00"
