"""The ledger's reconcile, confirm, review, redecide and audit on the in-memory store: no DynamoDB, milliseconds.
The same conditions hold as on DynamoDB (tests/integration/test_store_agreement.py runs one scenario on both)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accrual.domain.lifecycle import ReviewVerdict
from accrual.ports import JournalConflict, LostRace, OrderChange
from accrual.service.counts import RunCounts
from accrual.service.ledger import Ledger
from support.ledger import T0, line
from support.memory import config, memory_ledger, store_snapshot
from support.readers import audit, balance, explain

D = Decimal


def test_three_orders_earn_pending_by_the_rules_in_both_currencies():
    ledger = memory_ledger()
    counts = ledger.reconcile(
        [line("A"), line("B", is_affiliate=False), line("C", amount="2000.00")], now=T0 + timedelta(hours=1)
    )
    assert counts["orders_changed"] == 3 and counts["moves_pending"] == 3
    assert balance(ledger.store, "alice") == {
        "user_id": "alice",
        "account_currency": "EUR",
        "pending_usd": "46.00",
        "confirmed_usd": "0.00",
        "pending": "41.40",
        "confirmed": "0.00",
    }
    capped = explain(ledger.store, "C")
    assert capped["state"] == "pending" and "CAP_APPLIED" in capped["reasons"]
    assert audit(ledger.store)["ok"]


def test_a_repeated_report_changes_nothing():
    ledger = memory_ledger()
    lines = [line("A"), line("B", amount="30.00")]
    ledger.reconcile(lines, now=T0)
    before = store_snapshot(ledger.store)
    counts = ledger.reconcile(lines, now=T0 + timedelta(hours=2))
    assert counts.get("orders_changed", 0) == 0 and counts["lines_unchanged"] == 2
    assert store_snapshot(ledger.store) == before


def test_confirm_posts_after_the_hold_once_and_a_later_refund_reverses():
    ledger = memory_ledger()
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A"), line("B", amount="40.00", status="settled", at=settled_at)], now=settled_at)
    assert ledger.confirm(now=settled_at + timedelta(hours=23)).get("orders_changed", 0) == 0  # the hold is a day
    assert ledger.confirm(now=settled_at + timedelta(days=1))["moves_post"] == 1
    assert ledger.confirm(now=settled_at + timedelta(days=2)).get("orders_changed", 0) == 0
    assert balance(ledger.store, "alice")["confirmed_usd"] == "2.00"
    ledger.reconcile(
        [line("B", amount="40.00", status="invalid", status_detail="FullRefund", at=settled_at + timedelta(days=5))],
        now=settled_at + timedelta(days=5),
    )
    assert [entry["transition"] for entry in explain(ledger.store, "B")["journal"]] == ["pending", "post", "reverse"]
    assert balance(ledger.store, "alice")["confirmed_usd"] == "0.00" and audit(ledger.store)["ok"]


def test_confirm_reads_the_clicks_of_many_due_orders_together(monkeypatch):
    shoppers = {f"u{n}": "USD" for n in range(7)}
    ledger = memory_ledger(users=shoppers)
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile(
        [line(f"O{n}", amount="40.00", status="settled", at=settled_at, user=f"u{n}") for n in range(7)],
        now=settled_at,
    )
    reads: list[set[str]] = []
    find_clicks = ledger.store.find_clicks

    def counted(sub_ids):
        wanted = set(sub_ids)
        reads.append(wanted)
        return find_clicks(wanted)

    monkeypatch.setattr(ledger.store, "find_clicks", counted)
    assert ledger.confirm(now=settled_at + timedelta(days=1))["moves_post"] == 7
    assert reads == [{f"c-u{n}" for n in range(7)}]  # one read for the seven orders' clicks, none per order
    assert ledger._settler.clicks == {}  # nothing kept after the confirmation (bounded memory)


def _settled_orders(ledger, orders: dict[str, str], settled_at):
    """Settled orders (key -> shopper), each one line of 40 USD."""
    ledger.reconcile(
        [line(key, amount="40.00", status="settled", at=settled_at, user=user) for key, user in orders.items()],
        now=settled_at,
    )


def _recorded_applies(ledger, monkeypatch) -> list[list[str]]:
    """The order keys of each `apply` the store is asked for, as they come."""
    applies: list[list[str]] = []
    apply = ledger.store.apply

    def recorded(changes):
        applies.append([change.key for change in changes])
        return apply(changes)

    monkeypatch.setattr(ledger.store, "apply", recorded)
    return applies


def test_confirm_writes_a_shopper_s_due_orders_together_each_order_whole(monkeypatch):
    orders = {f"A{n}": "alice" for n in range(5)} | {f"B{n}": "bob" for n in range(3)} | {"C0": "carol"}
    ledger = memory_ledger(users={"alice": "USD", "bob": "USD", "carol": "USD"})
    settled_at = T0 + timedelta(days=10)
    _settled_orders(ledger, orders, settled_at)
    applies = _recorded_applies(ledger, monkeypatch)
    counts = ledger.confirm(now=settled_at + timedelta(days=1))
    assert counts["moves_post"] == 9 and counts["orders_changed"] == 9 and counts["notifications"] == 9
    # a shopper's orders in one transaction (alice's 5 orders: 16 items), shoppers together while there is room
    # (bob's 10 items and carol's 4 would not fit beside alice's 16 in 25)
    assert sorted(sorted(keys) for keys in applies) == [
        [f"aliexpress#A{n}" for n in range(5)],
        [*(f"aliexpress#B{n}" for n in range(3)), "aliexpress#C0"],
    ]
    for user, count in (("alice", 5), ("bob", 3), ("carol", 1)):
        assert balance(ledger.store, user)["confirmed_usd"] == f"{D('2.00') * count:.2f}"
        assert balance(ledger.store, user)["pending_usd"] == "0.00"
    for key in orders:  # each order has its own confirmation and its own notification
        assert [entry["transition"] for entry in explain(ledger.store, key)["journal"]] == ["pending", "post"]
    assert len(ledger.store.outbox) == 18 and audit(ledger.store)["ok"]


def test_a_shopper_s_transaction_holds_at_most_the_items_dynamodb_takes(monkeypatch):
    from accrual.service import settle

    orders = {f"A{n:02}": "alice" for n in range(20)}
    ledger = memory_ledger(users={"alice": "USD"})
    settled_at = T0 + timedelta(days=10)
    _settled_orders(ledger, orders, settled_at)
    applies = _recorded_applies(ledger, monkeypatch)
    assert ledger.confirm(now=settled_at + timedelta(days=1))["moves_post"] == 20
    # each confirmed order writes three items (order, entry, notification), the balance one for all of them
    assert all(3 * len(keys) + 1 <= settle.ITEMS_TOGETHER for keys in applies)
    assert sorted(key for keys in applies for key in keys) == sorted(f"aliexpress#{key}" for key in orders)
    assert len(applies) == -(-20 * 3 // (settle.ITEMS_TOGETHER - 1))
    assert balance(ledger.store, "alice")["confirmed_usd"] == "40.00" and audit(ledger.store)["ok"]


def test_a_shared_transaction_that_loses_a_race_is_settled_again_order_by_order(monkeypatch):
    orders = {f"A{n}": "alice" for n in range(4)}
    ledger = memory_ledger(users={"alice": "USD"})
    settled_at = T0 + timedelta(days=10)
    _settled_orders(ledger, orders, settled_at)
    apply, applies = ledger.store.apply, []

    def a_report_lands_first(changes):
        applies.append([change.key for change in changes])
        if len(applies) == 1:  # another run refunds A2 between this cycle's read and its write
            ledger.reconcile(
                [line("A2", amount="40.00", status="invalid", at=settled_at + timedelta(hours=2))],
                now=settled_at + timedelta(hours=2),
            )
        return apply(changes)

    monkeypatch.setattr(ledger.store, "apply", a_report_lands_first)
    counts = ledger.confirm(now=settled_at + timedelta(days=1))
    assert len(applies[0]) == 4 and all(len(keys) == 1 for keys in applies[2:])  # then one order at a time
    assert counts["moves_post"] == 3 and counts.get("orders_failed", 0) == 0
    states = {key: explain(ledger.store, key)["state"] for key in orders}
    assert states == {"A0": "confirmed", "A1": "confirmed", "A2": "declined", "A3": "confirmed"}
    assert balance(ledger.store, "alice")["confirmed_usd"] == "6.00" and audit(ledger.store)["ok"]
    assert ledger.confirm(now=settled_at + timedelta(days=2)).get("orders_changed", 0) == 0  # nothing twice


def test_a_refused_transition_is_recorded_and_ignored():
    ledger = memory_ledger()
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    counts = ledger.reconcile(
        [line("A", status="paid", at=settled_at + timedelta(days=2))], now=settled_at + timedelta(days=2)
    )
    assert counts["transitions_refused"] == 1
    refused = [item["reason"] for item in explain(ledger.store, "A")["refused"]]
    assert refused == ["confirmed does not go back to pending"]


@pytest.mark.parametrize(
    ("verdict", "state", "pending"), [("released", "pending", "10.00"), ("declined", "declined", "5.00")]
)
def test_an_order_held_for_review_is_released_or_declined(verdict, state, pending):
    ledger = memory_ledger()
    ledger.reconcile(
        [
            line("A", new_user_coupon=True, buyer_account="acc-1"),
            line("B", new_user_coupon=True, buyer_account="acc-2"),
        ],
        now=T0,
    )
    assert {explain(ledger.store, key)["state"] for key in ("A", "B")} == {"on_review"}
    assert ledger.review("aliexpress#B", ReviewVerdict(verdict), now=T0 + timedelta(hours=1)).value == state
    ledger.review("aliexpress#A", ReviewVerdict.RELEASED, now=T0 + timedelta(hours=1))
    assert balance(ledger.store, "alice")["pending_usd"] == pending and audit(ledger.store)["ok"]
    ledger.reconcile([line("C")], now=T0)
    with pytest.raises(ValueError, match="not held for review"):
        ledger.review("aliexpress#C", ReviewVerdict.RELEASED, now=T0 + timedelta(hours=2))


def test_a_coupon_order_that_brings_no_new_account_decides_no_other_order_again():
    ledger = memory_ledger()
    loaded: list[str] = []
    load_order = ledger.store.load_order

    def counting(key):
        loaded.append(key)
        return load_order(key)

    ledger.store.load_order = counting  # type: ignore[method-assign]

    def arrive(order: str, account: str) -> list[str]:
        loaded.clear()
        ledger.reconcile([line(order, new_user_coupon=True, buyer_account=account)], now=T0)
        return sorted(set(loaded) - {f"aliexpress#{order}"})

    assert arrive("A", "acc-1") == []
    assert arrive("B", "acc-2") == ["aliexpress#A"]  # a second account: the other order learns it
    assert arrive("C", "acc-1") == []  # no new account: only C is decided
    assert arrive("D", "acc-2") == []
    assert arrive("E", "acc-3") == ["aliexpress#A", "aliexpress#B", "aliexpress#C", "aliexpress#D"]
    assert {explain(ledger.store, key)["state"] for key in "ABCDE"} == {"on_review"}
    # every order decided with every account, as if all had arrived at once
    decided_with = {key: ledger.store.orders[f"aliexpress#{key}"].review_accounts for key in "ABCDE"}
    assert decided_with == dict.fromkeys("ABCDE", ["acc-1", "acc-2", "acc-3"])
    assert audit(ledger.store)["ok"]


def test_a_line_that_moves_to_another_order_takes_its_money_along():
    ledger = memory_ledger()
    ledger.reconcile([line("A", "X-1")], now=T0)
    counts = ledger.reconcile([line("B", "X-1", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    assert counts["lines_moved"] == 1
    assert explain(ledger.store, "A")["state"] == "moved" and explain(ledger.store, "B")["state"] == "pending"
    assert balance(ledger.store, "alice")["pending_usd"] == "5.00" and audit(ledger.store)["ok"]


def test_a_report_writes_a_shopper_s_new_orders_together_and_a_line_two_of_them_bring_once(monkeypatch):
    ledger = memory_ledger(users={"alice": "EUR", "bob": "USD"})
    applies = _recorded_applies(ledger, monkeypatch)
    counts = ledger.reconcile(
        [
            line("A"),
            line("B", user="bob"),
            line("C"),
            line("D", "X-1"),  # the partner moved line X-1 to order E within the same report page
            line("E", "X-1", at=T0 + timedelta(hours=1)),
            line("F", user="bob"),
        ],
        now=T0 + timedelta(hours=1),
    )
    assert counts["lines_moved"] == 1 and counts.get("orders_failed", 0) == 0
    assert explain(ledger.store, "D")["state"] == "moved" and explain(ledger.store, "E")["state"] == "pending"
    # the orders that bring the moved line are written alone and in turn, the others together
    assert sorted(sorted(keys) for keys in applies) == [
        ["aliexpress#A", "aliexpress#B", "aliexpress#C", "aliexpress#F"],
        ["aliexpress#D"],
        ["aliexpress#D", "aliexpress#E"],
    ]
    assert balance(ledger.store, "alice")["pending_usd"] == "15.00"  # A, C and E: 5 USD each
    assert balance(ledger.store, "bob")["pending_usd"] == "10.00" and audit(ledger.store)["ok"]
    assert len(ledger.store.outbox) == 7  # each order earning once, then D's money leaving with its line


# ---- redecide -----------------------------------------------------------------------------------------------------


def test_redecide_applies_a_fixed_configuration_and_a_dry_run_writes_nothing():
    ledger = memory_ledger(excluded_shops=["s1"])  # a typo excluded the shop every order was bought in
    ledger.reconcile([line("A"), line("B", amount="40.00")], now=T0)
    assert explain(ledger.store, "A")["state"] == "declined"
    ledger.store.save_config(config(version="ledger-2"))
    fixed = Ledger(store=ledger.store)
    keys = ["aliexpress#A", "aliexpress#B", "aliexpress#NOPE"]

    before = store_snapshot(ledger.store)
    planned, counts = fixed.redecide(keys, now=T0 + timedelta(hours=1), dry_run=True)
    assert store_snapshot(ledger.store) == before
    assert [(item.order, item.outcome) for item in planned] == [
        ("aliexpress#A", "changed"),
        ("aliexpress#B", "changed"),
        ("aliexpress#NOPE", "not_found"),
    ]
    assert planned[0].config_version_from == "ledger-1" and planned[0].config_version_to == "ledger-2"
    assert (planned[0].state_from, planned[0].state_to) == ("declined", "pending")
    assert planned[0].reasons_removed and counts.orders_redecided == 2

    done, _ = fixed.redecide(keys, now=T0 + timedelta(hours=1))
    assert [item.to_dict() for item in done] == [item.to_dict() for item in planned]
    order = explain(ledger.store, "A")
    assert order["state"] == "pending" and order["config_version"] == "ledger-2"
    assert balance(ledger.store, "alice")["pending_usd"] == "7.00" and audit(ledger.store)["ok"]
    again, _ = fixed.redecide(keys[:2], now=T0 + timedelta(hours=2))
    assert {item.outcome for item in again} == {"unchanged"}


def test_redecide_never_touches_confirmed_money():
    ledger = memory_ledger()
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A", status="settled", at=settled_at), line("B")], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    ledger.store.save_config(config(version="ledger-2", excluded_shops=["s1"]))
    before = explain(ledger.store, "A")
    results, counts = Ledger(store=ledger.store).redecide(
        ["aliexpress#A", "aliexpress#B"], now=settled_at + timedelta(days=2)
    )
    assert [(item.order, item.outcome) for item in results] == [
        ("aliexpress#A", "skipped_confirmed"),
        ("aliexpress#B", "changed"),
    ]
    assert counts.orders_skipped_confirmed == 1
    assert explain(ledger.store, "A") == before and explain(ledger.store, "B")["state"] == "declined"
    assert audit(ledger.store)["ok"]


# ---- the store's conditions -----------------------------------------------------------------------------------------


def test_an_order_written_over_another_version_loses_the_race_and_nothing_is_written():
    ledger = memory_ledger()
    ledger.reconcile([line("A")], now=T0)
    stale = ledger.store.load_order("aliexpress#A").order
    ledger.reconcile([line("A", amount="60.00", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    before = store_snapshot(ledger.store)
    with pytest.raises(LostRace):
        ledger.store.apply([OrderChange(order=stale, decision="{}")])
    assert store_snapshot(ledger.store) == before


def test_a_journal_entry_id_taken_with_another_payload_is_a_conflict_never_passed_off():
    ledger = memory_ledger()
    ledger.reconcile([line("A")], now=T0)
    entry = ledger.store.journal("aliexpress#A")[0]
    order = ledger.store.load_order("aliexpress#A").order
    with pytest.raises(JournalConflict):
        ledger.store.apply([OrderChange(order=order, entries=(entry,))])
    assert ledger.store.load_order("aliexpress#A").order == order  # all or nothing


def test_the_audit_finds_a_balance_that_is_not_its_journal():
    ledger = memory_ledger()
    ledger.reconcile([line("A")], now=T0)
    stored = ledger.store.balances["alice"]
    ledger.store.balances["alice"] = type(stored)("alice", "EUR", stored.holding.plus(stored.holding))
    result = audit(ledger.store)
    assert not result["ok"] and [item["kind"] for item in result["differences"]] == ["balance"]


# ---- the run summary -------------------------------------------------------------------------------------------------


def test_run_counts_add_up_and_keep_only_what_a_run_touched():
    first, second = RunCounts(lines_received=2), RunCounts()
    first.add("lines_stale", 0)
    second.add("orders_failed")
    total = first + second
    assert total.as_dict() == {"lines_received": 2, "lines_stale": 0, "orders_failed": 1}
    assert total.unsettled == 1 and RunCounts.of(total.as_dict()) == total


# ---- a property: any sequence of reports and cycles leaves a clean audit -------------------------------------------

STATUSES = ["awaiting_payment", "paid", "received", "settled", "invalid"]
report = st.tuples(
    st.sampled_from(["A", "B"]),
    st.sampled_from(["1", "2"]),
    st.sampled_from(STATUSES),
    st.integers(0, 20),
    st.sampled_from(["20.00", "100.00", "900.00"]),
    st.sampled_from(["alice", "bob"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(report, st.integers(0, 30)), max_size=12))
def test_any_sequence_of_reports_and_confirmations_keeps_the_books_balanced(steps):
    ledger = memory_ledger()
    for step in steps:
        if isinstance(step, int):
            ledger.confirm(now=T0 + timedelta(days=step))
            continue
        order, number, status, day, amount, user = step
        at = T0 + timedelta(days=day)
        extra = {"paid_at": None} if status == "awaiting_payment" else {}
        counts = ledger.reconcile(
            [line(order, f"{order}-{number}", status=status, at=at, amount=amount, user=user, **extra)], now=at
        )
        assert counts.get("journal_conflicts", 0) == 0 and counts.get("orders_failed", 0) == 0
    result = audit(ledger.store)
    assert result["ok"], result["differences"]


# ---- the notification contract -------------------------------------------------------------------------------------


def test_a_change_puts_one_notification_in_the_outbox_in_the_contract_s_shape():
    ledger = memory_ledger()
    ledger.reconcile([line("A")], now=T0)
    [message] = list(ledger.store.unpublished("9999", 100))
    body = json.loads(message.body)
    assert message.body == json.dumps(body, sort_keys=True, separators=(",", ":"))  # canonical JSON
    assert sorted(body) == [
        "account_currency",
        "cashback",
        "cashback_usd",
        "change",
        "event_id",
        "event_type",
        "lang",
        "occurred_at",
        "order_id",
        "partner",
        "previous_state",
        "reasons",
        "schema",
        "state",
        "text",
        "trail_summary",
        "user_id",
    ]
    assert (body["schema"], body["event_type"], body["state"], body["previous_state"]) == (
        "cashback.notification/1",
        "cashback.pending",
        "pending",
        None,
    )
    assert body["change"] == {"pending_usd": "5.00", "confirmed_usd": "0.00", "pending": "4.50", "confirmed": "0.00"}
    assert json.loads(message.attributes) == {
        "event_type": "cashback.pending",
        "partner": "aliexpress",
        "state": "pending",
        "account_currency": "EUR",
    }
    assert message.event_id == body["event_id"]
    ledger.store.remove_published(message.event_id, T0.isoformat(), "m-1")
    assert list(ledger.store.unpublished("9999", 100)) == []
