"""The ledger against the local moto server: reconcile, confirm, replays, reorderings, races, audit."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from accrual.adapters.ledger_items import outbox_messages
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.adapters.ledger_tables import JournalEntryRecord, OutboxRecord, RefusedRecord
from accrual.composition import composition
from accrual.ports.ledger import utc_text
from support.ledger import T0, balance_of, line, load_reference_data, snapshot, stored_outbox
from support.readers import audit, balance, explain

D = Decimal


@pytest.fixture
def ledger(stack):
    load_reference_data(stack, users={"alice": "EUR", "bob": "USD"})
    return composition(stack).ledger()


def test_given_three_orders_when_reconciled_then_pending_matches_the_rules_in_both_currencies(stack, ledger):
    counts = ledger.reconcile(
        [line("A"), line("B", is_affiliate=False), line("C", amount="2000.00")], now=T0 + timedelta(hours=1)
    )
    assert counts["orders_changed"] == 3 and counts["moves_pending"] == 3
    assert balance(stack, "alice") == {
        "user_id": "alice",
        "account_currency": "EUR",
        "pending_usd": "46.00",
        "confirmed_usd": "0.00",
        "pending": "41.40",
        "confirmed": "0.00",
    }
    capped = explain(stack, "C")
    assert capped["state"] == "pending" and capped["cashback_usd"] == "40.00" and "CAP_APPLIED" in capped["reasons"]
    assert audit(stack)["ok"]


def test_a_repeated_report_changes_nothing(stack, ledger):
    lines = [line("A"), line("B", amount="30.00")]
    ledger.reconcile(lines, now=T0)
    before = snapshot()
    counts = ledger.reconcile(lines, now=T0 + timedelta(hours=2))
    assert counts.get("orders_changed", 0) == 0 and counts["lines_unchanged"] == 2
    assert snapshot() == before


def test_an_older_status_after_a_newer_one_changes_nothing(stack, ledger):
    ledger.reconcile([line("A", status="invalid", at=T0 + timedelta(days=2))], now=T0 + timedelta(days=2))
    counts = ledger.reconcile([line("A", status="paid", at=T0 + timedelta(days=1))], now=T0 + timedelta(days=3))
    assert counts["lines_stale"] == 1
    assert explain(stack, "A")["state"] == "declined" and balance_of("alice")[0] == 0


def test_a_changed_amount_adjusts_pending_and_is_recorded_in_the_journal(stack, ledger):
    ledger.reconcile([line("A", amount="100.00")], now=T0)
    ledger.reconcile([line("A", amount="60.00", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    assert balance_of("alice")[0] == D("3.00")
    kinds = [entry["transition"] for entry in explain(stack, "A")["journal"]]
    assert kinds == ["pending", "adjust"]


def test_confirm_moves_pending_to_confirmed_after_the_hold_and_once(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A"), line("B", amount="40.00", status="settled", at=settled_at)], now=settled_at)
    assert ledger.confirm(now=settled_at + timedelta(hours=23)).get("orders_changed", 0) == 0  # hold is one day
    counts = ledger.confirm(now=settled_at + timedelta(days=1))
    assert counts["moves_post"] == 1
    assert balance_of("alice") == (D("5.00"), D("2.00"), D("4.50"), D("1.80"))
    assert ledger.confirm(now=settled_at + timedelta(days=2)).get("orders_changed", 0) == 0
    assert explain(stack, "B")["state"] == "confirmed" and audit(stack)["ok"]


def test_confirm_declines_an_order_awaiting_payment_for_more_than_three_days(stack, ledger):
    ledger.reconcile([line("A", status="awaiting_payment", paid_at=None)], now=T0)
    assert explain(stack, "A")["state"] == "awaiting_payment"
    ledger.confirm(now=T0 + timedelta(days=3))
    assert explain(stack, "A")["state"] == "awaiting_payment"
    ledger.confirm(now=T0 + timedelta(days=3, seconds=1))
    declined = explain(stack, "A")
    assert declined["state"] == "declined" and "AWAITING_PAYMENT_EXPIRED" in declined["reasons"]


def test_an_order_invalidated_after_confirmation_is_reversed(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    ledger.reconcile(
        [line("A", status="invalid", status_detail="FullRefund", at=settled_at + timedelta(days=5))],
        now=settled_at + timedelta(days=5),
    )
    reversed_order = explain(stack, "A")
    assert reversed_order["state"] == "reversed"
    assert [entry["transition"] for entry in reversed_order["journal"]] == ["pending", "post", "reverse"]
    assert balance_of("alice") == (D("0.00"), D("0.00"), D("0.00"), D("0.00"))
    assert audit(stack)["ok"]


def test_a_refused_transition_is_recorded_and_ignored(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    counts = ledger.reconcile(
        [line("A", status="paid", at=settled_at + timedelta(days=2))], now=settled_at + timedelta(days=2)
    )
    assert counts["transitions_refused"] == 1
    assert explain(stack, "A")["state"] == "confirmed" and balance_of("alice")[1] == D("5.00")
    assert [item.reason for item in RefusedRecord.query("aliexpress#A", RefusedRecord.sk.startswith("REFUSED#"))] == [
        "confirmed does not go back to pending"
    ]


def test_lines_of_one_order_share_the_cap_and_the_order_is_found_by_the_partner_number(stack, ledger):
    ledger.reconcile(
        [
            line("A", "A-1", amount="600.00", partner_order_id="P-9"),
            line("A", "A-2", amount="400.00", partner_order_id="P-9"),
        ],
        now=T0,
    )
    order = explain(stack, "P-9")
    assert order["order_id"] == "A" and order["cashback_usd"] == "40.00"
    assert sum(D(item["cashback_usd"]) for item in order["lines"]) == D("40.00")


def test_an_unattributed_line_is_kept_and_moves_no_money(stack, ledger):
    ledger.reconcile([line("Z", sub_id="nobody")], now=T0)
    order = explain(stack, "Z")
    assert order["state"] == "unattributed" and order["user_id"] is None and "UNATTRIBUTED" in order["reasons"]
    assert list(OutboxRecord.scan()) == [] and audit(stack)["ok"]


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(3))))
def test_any_arrival_order_of_the_same_lines_ends_in_the_same_state(stack, ledger, permutation):
    versions = [
        line("A", status="paid", at=T0),
        line("A", status="received", at=T0 + timedelta(days=1)),
        line("A", status="settled", at=T0 + timedelta(days=2)),
    ]
    for index in permutation:
        ledger.reconcile([versions[index]], now=T0 + timedelta(days=3))
    ledger.confirm(now=T0 + timedelta(days=4))
    order = explain(stack, "A")
    assert order["state"] == "confirmed" and balance_of("alice") == (D("0.00"), D("5.00"), D("0.00"), D("4.50"))
    assert audit(stack)["ok"]


def test_two_concurrent_runs_over_the_same_lines_credit_once(stack, ledger):
    lines = [line(f"O{number}", amount=f"{10 + number}.00") for number in range(6)]
    errors = []

    def run():
        try:
            composition(stack).ledger().reconcile(lines, now=T0)
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = sum((D(f"{10 + number}.00") * D("0.05")).quantize(D("0.01")) for number in range(6))
    assert balance_of("alice")[0] == expected
    assert len(list(JournalEntryRecord.scan(JournalEntryRecord.sk.startswith("ENTRY#")))) == 6
    assert len(stored_outbox()) == 6 and audit(stack)["ok"]


def test_audit_finds_a_balance_that_differs_from_its_journal(stack, ledger):
    ledger.reconcile([line("A")], now=T0)
    from accrual.adapters.ledger_tables import BalanceRecord

    BalanceRecord("alice").update(actions=[BalanceRecord.pending_usd.add(D("0.01"))])
    result = audit(stack)
    assert not result["ok"] and result["differences"][0]["kind"] == "balance"


def test_each_state_change_writes_exactly_one_notification(stack, ledger):
    settled_at = T0 + timedelta(days=10)
    ledger.reconcile([line("A")], now=T0)
    ledger.reconcile([line("A", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + timedelta(days=1))
    ledger.confirm(now=settled_at + timedelta(days=1))
    events = sorted((message.created_at, message.event_type) for message in stored_outbox())
    assert [kind for _, kind in events] == ["cashback.pending", "cashback.confirmed"]
    assert DynamoLedgerStore(stack).load_order("aliexpress#A").order.state == "confirmed"


@pytest.mark.parametrize("first, second", [("A", "B"), ("B", "A")])
def test_new_user_coupons_from_two_store_accounts_hold_both_orders_whatever_arrives_first(stack, ledger, first, second):
    orders = {
        "A": line("A", new_user_coupon=True, buyer_account="acc-1"),
        "B": line("B", new_user_coupon=True, buyer_account="acc-2"),
    }
    ledger.reconcile([orders[first]], now=T0)
    assert explain(stack, first)["state"] == "pending"
    ledger.reconcile([orders[second]], now=T0)
    for order in ("A", "B"):
        held = explain(stack, order)
        assert held["state"] == "on_review" and "MULTI_ACCOUNT_NEW_USER_COUPON" in held["reasons"], order
    assert balance_of("alice")[0] == 0 and audit(stack)["ok"]


def test_an_unattributed_order_is_attributed_when_its_click_arrives_and_the_report_is_read_again(stack, ledger):
    from accrual.adapters import reference_data
    from accrual.domain.models import Click

    ledger.reconcile([line("Z", sub_id="late-click")], now=T0)
    assert explain(stack, "Z")["state"] == "unattributed"
    reference_data.save_clicks(
        [
            Click(
                sub_id="late-click",
                user_id="bob",
                clicked_at=T0 - timedelta(hours=1),
                partner="aliexpress",
                account_currency="USD",
            )
        ],
        now=T0,
    )
    ledger.reconcile([line("Z", sub_id="late-click")], now=T0 + timedelta(hours=1))
    order = explain(stack, "Z")
    assert (order["state"], order["user_id"]) == ("pending", "bob") and balance_of("bob")[0] == D("5.00")


def test_a_journal_id_taken_with_another_payload_is_reported_not_passed_off(stack, ledger):
    ledger.reconcile([line("A", amount="100.00")], now=T0)
    JournalEntryRecord(
        "aliexpress#A",
        "ENTRY#000002#adjust",
        entry_id="aliexpress#A#000002#adjust",
        transition="adjust",
        user_id="alice",
        account_currency="EUR",
        fx_rate=D("0.90"),
        pending_usd=D("9.99"),
        confirmed_usd=D("0"),
        pending=D("0"),
        confirmed=D("0"),
        state_to="pending",
        digest="not-this-move",
        at="2026-03-01T00:00:00.000000Z",
    ).save()
    counts = ledger.reconcile([line("A", amount="60.00", at=T0 + timedelta(hours=1))], now=T0 + timedelta(hours=1))
    assert counts["journal_conflicts"] == 1 and counts.get("orders_changed", 0) == 0
    assert balance_of("alice")[0] == D("5.00")


@pytest.mark.parametrize("verdict, state, pending", [("released", "pending", D("5.00")), ("declined", "declined", 0)])
def test_an_order_held_for_review_is_released_or_declined_by_a_verdict(stack, ledger, verdict, state, pending):
    from accrual.domain.lifecycle import ReviewVerdict

    ledger.reconcile(
        [
            line("A", new_user_coupon=True, buyer_account="acc-1"),
            line("B", new_user_coupon=True, buyer_account="acc-2"),
        ],
        now=T0,
    )
    assert explain(stack, "B")["state"] == "on_review"
    assert ledger.review("aliexpress#B", ReviewVerdict(verdict), now=T0 + timedelta(hours=1)).value == state
    order = explain(stack, "B")
    assert order["state"] == state and "MULTI_ACCOUNT_NEW_USER_COUPON" in order["reasons"]
    assert balance_of("alice")[0] == pending and audit(stack)["ok"]
    ledger.reconcile(
        [line("B", new_user_coupon=True, buyer_account="acc-2", status="received", at=T0 + timedelta(days=1))],
        now=T0 + timedelta(days=1),
    )
    assert explain(stack, "B")["state"] == state  # the verdict stands when the order changes later
    with pytest.raises(ValueError):
        ledger.review("aliexpress#Z", ReviewVerdict.RELEASED, now=T0)


def test_an_unpublished_notification_stays_without_expiry_until_published_then_leaves_the_outbox(stack, ledger):
    """DynamoDB's TTL must never remove a notification before it is published: it is written without an expiry, and
    publishing deletes it (the outbox holds only what is still to publish)."""

    ledger.reconcile([line("TTL-1")], now=T0)
    (record,) = list(OutboxRecord.scan())
    assert record.published_at is None and record.expires_at is None
    assert composition(stack).relay.publish_unpublished(now=T0 + timedelta(hours=1))["published"] == 1
    assert list(OutboxRecord.scan()) == []


def test_the_sweep_reads_every_unpublished_event_once_and_skips_the_earlier_forms_published_and_the_gone(stack, ledger):
    """More events than a page of the sweep's read: each still unpublished comes once, whatever its segment; a record
    of the earlier form kept after publishing (marked, with an expiry), one gone and one created after `until` are
    left out."""
    ledger.reconcile([line(f"SW-{n}", at=T0 + timedelta(seconds=n)) for n in range(130)], now=T0)
    records = sorted(OutboxRecord.scan(), key=lambda record: record.created_at)
    published, gone, late = records[3], records[-2], records[-1]
    published.update(
        actions=[
            OutboxRecord.published_at.set(utc_text(T0)),
            OutboxRecord.message_id.set("m-1"),
            OutboxRecord.expires_at.set(int(time.time()) + 86400),
        ]
    )
    gone.delete()
    late.update(actions=[OutboxRecord.created_at.set(utc_text(T0 + timedelta(days=2)))])
    store = composition(stack).ledger_store

    swept = list(store.unpublished(utc_text(T0 + timedelta(days=1)), page_size=4))

    left_out = {published.event_id, gone.event_id, late.event_id}
    expected = sorted(
        message.event_id for record in records if record.event_id not in left_out for message in outbox_messages(record)
    )
    assert sorted(message.event_id for message in swept) == expected
    assert len(swept) == len(expected) > 100


def test_whole_table_reads_go_segment_by_segment_and_see_every_item_once(stack, ledger, monkeypatch):
    # the scans (audit, books, claims, quarantine) read a table in segments: every order, journal entry and balance
    # is seen exactly once whatever segment it hashes to, and each segment is asked for
    from accrual.adapters import pynamo

    ledger.reconcile([line(f"S{n}", user="alice" if n % 2 else "bob") for n in range(40)], now=T0)
    store = DynamoLedgerStore(stack)
    expected_orders = sorted(store.orders_between(None, None))
    asked: list[tuple[int, int]] = []
    scan = pynamo.Model.scan.__func__

    def counted_scan(model, *args, **kwargs):
        asked.append((kwargs.get("segment"), kwargs.get("total_segments")))
        return scan(model, *args, **kwargs)

    monkeypatch.setattr(pynamo.Model, "scan", classmethod(counted_scan))
    assert len(expected_orders) == 40
    assert sorted(store.orders_placed(utc_text(T0 - timedelta(days=400)), utc_text(T0 + timedelta(days=1)))) == (
        expected_orders
    )
    entries = [(entry.key, entry.sequence, entry.transition) for entry in store.scan_journal()]
    assert len(entries) == len(set(entries)) == 40
    assert sorted(balance.user_id for balance in store.scan_balances()) == ["alice", "bob"]
    assert sorted(order.key for order in store.scan_orders()) == expected_orders
    assert pynamo.scan_segments() > 1
    assert {segment for segment, _ in asked} == set(range(pynamo.scan_segments()))
    assert {total for _, total in asked} == {pynamo.scan_segments()}


def test_orders_of_many_shoppers_share_transactions_counting_their_notifications_as_the_records_they_share(stack):
    """Each first-reported order writes its item, a journal entry and its shopper's balance; the transaction's
    notifications share outbox records, ten to one: eight orders of eight shoppers fill a transaction of 25."""
    shoppers = {f"s{n:02}": "USD" for n in range(24)}
    load_reference_data(stack, users=shoppers)
    ledger = composition(stack).ledger()
    written: list[int] = []

    def count(params, **_):
        written.append(len(params["TransactItems"]))

    ledger.store.connection.client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", count)
    counts = ledger.reconcile([line(f"T{n:02}", user=user) for n, user in enumerate(shoppers)], now=T0)
    assert counts["orders_changed"] == 24 and counts["notifications"] == 24
    assert written == [25, 25, 25]
    assert len(list(OutboxRecord.scan())) == 3 and len(stored_outbox()) == 24
    assert audit(stack)["ok"]


def test_the_sweep_publishes_each_event_as_written_and_deletes_it_in_batches(stack, ledger):
    """The sweep publishes each event as the transaction wrote it (its body, its attributes) and then deletes the
    published ones, 25 to a call; a refused one stays as written for the next sweep, alone in its shared record."""
    from accrual.ports import NotificationPublisher

    ledger.reconcile([line(f"MK-{n}", at=T0 + timedelta(seconds=n)) for n in range(30)], now=T0)
    before = {message.event_id: message for message in stored_outbox()}
    shared = sorted(event_id for event_id, message in before.items() if message.holder)
    assert len(before) == 30 and len(shared) >= 20  # the transactions' records (eleven orders of one shopper to one)
    refused = shared[7]

    sent: dict[str, dict] = {}

    class Topic(NotificationPublisher):
        def publish(self, event_id, body, attributes, *, lambda_context=None):
            raise AssertionError("the sweep publishes in batches")

        def publish_batch(self, events):
            sent.update({event["event_id"]: event for event in events if event["event_id"] != refused})
            return {event["event_id"]: f"m-{event['event_id']}" for event in events if event["event_id"] != refused}

    from accrual.service.outbox import OutboxRelay

    store = composition(stack).ledger_store
    counts = OutboxRelay(store, Topic()).publish_unpublished(now=T0 + timedelta(hours=1))
    assert counts == {"published": 29, "failed": 1}
    assert set(sent) == set(before) - {refused}
    for event_id, event in sent.items():
        written = before[event_id]
        assert (event["body"], event["attributes"]) == (written.body, json.loads(written.attributes))
    [left] = OutboxRecord.scan()
    assert outbox_messages(left) == [before[refused]] and left.published_at is None and left.expires_at is None
    assert [message.event_id for message in store.unpublished(utc_text(T0 + timedelta(days=1)), 100)] == [refused]
    assert OutboxRelay(store, Topic()).publish_unpublished(now=T0 + timedelta(hours=1)) == {"failed": 1}


def test_the_month_scan_reads_each_order_of_the_month_once_with_its_journal_as_a_query_does(stack, ledger):
    # `month_orders` (the books' read) takes the orders from one scan of the table; an order whose entries the scan
    # did not see all of beside it (here: one is gone from under it) is read again whole, and only that one
    settled = T0 + timedelta(days=2)
    ledger.reconcile([line(f"M{n}", status="settled" if n % 3 else "paid", at=settled) for n in range(30)], now=settled)
    ledger.reconcile([line("APRIL", ordered_at=(T0 + timedelta(days=31)).isoformat())], now=settled)
    ledger.confirm(now=settled + timedelta(days=2))
    store = DynamoLedgerStore(stack)
    since, until = utc_text(T0 - timedelta(days=1)), utc_text(T0 + timedelta(days=30))
    keys = sorted(store.orders_placed(since, until))
    assert len(keys) == 30
    expected = {key: store.order_with_journal(key) for key in keys}
    assert sum(len(journal) for _, journal in expected.values()) == 50  # 30 pending, 20 confirmed
    tampered = keys[7]
    store.connection.client.delete_item(
        TableName=stack.orders_table, Key={"pk": {"S": tampered}, "sk": {"S": "ENTRY#000001#pending"}}
    )
    expected[tampered] = store.order_with_journal(tampered)
    queried: list[str] = []
    query = store.order_with_journal

    def counted(key):
        queried.append(key)
        return query(key)

    store.order_with_journal = counted  # type: ignore[method-assign]
    read = {order.order.key: (order, journal) for order, journal in store.month_orders(since, until)}
    assert read == expected and queried == [tampered]
    shares = [order.order.key for part in range(3) for order, _ in store.month_orders(since, until, part=(part, 3))]
    assert sorted(shares) == keys
    assert list(store.month_orders(since, until, partner="admitad")) == []
    assert len(list(store.month_orders(since, until, partner="aliexpress"))) == 30


def test_a_chunk_is_written_behind_while_the_next_is_planned_and_a_failed_write_is_settled_alone(stack, ledger):
    # 250 orders: three chunks, each chunk's transactions written by the writer thread while the next is planned;
    # the second transaction's write fails once (an outage), its orders are settled alone, and nothing is lost
    store = ledger.store
    written_by: list[str] = []
    built = store.transaction

    def transaction(changes):
        write = built(changes)

        def written() -> None:
            written_by.append(threading.current_thread().name)
            if len(written_by) == 2:
                raise ConnectionError("the endpoint went away")
            write()

        return written

    store.transaction = transaction  # type: ignore[method-assign]
    counts = ledger.reconcile([line(f"W{n:03d}", amount="10.00") for n in range(250)], now=T0)
    assert counts["orders_changed"] == 250 and counts["moves_pending"] == 250 and counts["retries"] == 1
    assert counts.get("orders_failed", 0) == 0
    # every shared transaction by the writer thread; the failed one's orders alone, in the ledger's own thread
    assert [name.startswith("ledger-writer") for name in written_by[:3]] == [True] * 3
    assert any(not name.startswith("ledger-writer") for name in written_by)
    assert balance_of("alice")[0] == D("125.00")  # 0.50 each (5 %)
    assert audit(stack)["ok"]


def test_a_partner_line_of_two_chunks_ends_in_one_order_when_written_behind(stack, ledger):
    # the line first reported in order A (chunk one) and renumbered into order Z (chunk two): chunk two is read only
    # once chunk one's write is done, so the line moves to Z as it would one chunk at a time
    moved = line("Z", "A-1", at=T0 + timedelta(hours=1))
    counts = ledger.reconcile([line("A"), *[line(f"F{n:03d}") for n in range(150)], moved], now=T0 + timedelta(hours=2))
    assert counts.get("orders_failed", 0) == 0
    assert [entry["line_id"] for entry in explain(stack, "Z")["lines"]] == ["A-1"]
    left = explain(stack, "A")
    assert left["state"] == "moved" and left["held"]["pending_usd"] == "0.00" and counts["lines_moved"] == 1
    assert balance_of("alice")[0] == D("755.00")  # 151 orders of 5.00: A's withdrawn
    assert audit(stack)["ok"]
