"""What a subscriber receives, seen locally: a command that wrote the outbox publishes it once (as the deployed relay
would; a long one while it writes), and the subscriber queue shows one message per change, selected by type and shopper; what a selection leaves
out stays on the queue for the next look."""

from __future__ import annotations

import time
from datetime import timedelta

from accrual.composition import composition
from accrual_dev import notifications
from accrual_dev.notifications import PublishingWhileWriting, QueueTail, Selection, publish_written, tail
from support.ledger import T0, line, load_reference_data


def shown(stack, **options) -> list[tuple[str, str, str]]:
    seen = []
    tail(
        stack,
        show=lambda message: seen.append((message.event_type, message.user_id, message.body["order_id"])),
        **options,
    )
    return seen


def test_each_change_is_published_once_and_read_once_by_type_and_shopper(stack):
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    ledger = composition(stack).ledger()
    ledger.reconcile(
        [line("A-1"), line("B-1", user="bob"), line("B-2", user="bob", shop_id="plaza")], now=T0 + timedelta(minutes=1)
    )
    assert publish_written(stack, T0 + timedelta(minutes=1)) == {"published": 3}
    assert publish_written(stack, T0 + timedelta(minutes=2)) == {"published": 0}  # marked: a rerun sends nothing

    settled = T0 + timedelta(days=1)
    ledger.reconcile([line("A-1", status="settled", at=settled)], now=settled)
    ledger.confirm(now=settled + timedelta(days=2))
    assert publish_written(stack, settled + timedelta(days=2)) == {"published": 1}

    assert sorted(shown(stack, selection=Selection(users=("bob",)))) == [
        ("cashback.declined", "bob", "B-2"),
        ("cashback.pending", "bob", "B-1"),
    ]
    assert shown(stack, selection=Selection(types=("cashback.confirmed",))) == [("cashback.confirmed", "alice", "A-1")]
    # what the selections left out is still there, once; then the queue is empty
    assert shown(stack) == [("cashback.pending", "alice", "A-1")]
    assert shown(stack) == []


# what the two tests of publishing while writing write: two changes, then a third after the first two are published
THREE_CHANGES = [
    ("cashback.declined", "bob", "B-2"),
    ("cashback.pending", "alice", "A-1"),
    ("cashback.pending", "bob", "B-1"),
]


def write_two_and_wait(ledger, publishing: PublishingWhileWriting, at, *, seconds: float) -> None:
    ledger.reconcile([line("A-1"), line("B-1", user="bob")], now=at)
    deadline = time.monotonic() + seconds
    while publishing.counts["published"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_long_command_publishes_while_it_writes_and_each_change_once(stack, monkeypatch):
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    monkeypatch.setattr(notifications, "SWEEP_AGAIN_SECONDS", 0.05)
    ledger = composition(stack).ledger()
    at = T0 + timedelta(minutes=1)
    publishing = PublishingWhileWriting(stack, at)
    with publishing:
        write_two_and_wait(ledger, publishing, at, seconds=30)
        assert publishing.counts["published"] == 2  # published by the background sweep, before the command ends
        ledger.reconcile([line("B-2", user="bob", shop_id="plaza")], now=at)
        assert publishing.done() == {"published": 3}
    assert sorted(shown(stack)) == THREE_CHANGES


def test_the_outbox_shows_what_is_not_published_yet_without_taking_any(stack):
    load_reference_data(stack)
    composition(stack).ledger().reconcile([line("A-1")], now=T0)
    for _ in range(2):
        assert shown(stack, source="outbox", selection=Selection(types=("cashback",))) == [
            ("cashback.pending", "alice", "A-1")
        ]
    assert shown(stack, source="outbox", selection=Selection(types=("claim",))) == []
    publish_written(stack, T0)
    assert shown(stack, source="outbox") == []  # published: it left the outbox
    assert shown(stack) == [("cashback.pending", "alice", "A-1")]  # and reached the subscriber


def test_a_stopped_tail_leaves_what_it_did_not_show_on_the_queue(stack):
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    composition(stack).ledger().reconcile([line("A-1"), line("B-1", user="bob")], now=T0)
    publish_written(stack, T0)
    batches = QueueTail(stack, Selection(users=("alice",))).batches()
    next(batches)
    batches.close()  # Ctrl-C while the first batch is shown: it is not taken off the queue
    assert sorted(shown(stack)) == [("cashback.pending", "alice", "A-1"), ("cashback.pending", "bob", "B-1")]


def test_a_command_longer_than_a_moment_publishes_from_a_process_of_its_own_each_change_once(stack, monkeypatch):
    """Past SWEEP_APART_AFTER_SECONDS the sweeps move to a process beside the command: what was written before and
    after the move is published once, the process is gone when `done()` returns, and it counts what it published."""
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    monkeypatch.setattr(notifications, "SWEEP_AGAIN_SECONDS", 0.05)
    monkeypatch.setattr(notifications, "SWEEP_APART_AFTER_SECONDS", 0.0)
    ledger = composition(stack).ledger()
    at = T0 + timedelta(minutes=1)
    settings = stack.model_copy()
    assert settings.secrets_provider  # settings as a command holds them: with clients cached on them
    publishing = PublishingWhileWriting(settings, at)
    with publishing:
        write_two_and_wait(ledger, publishing, at, seconds=60)
        apart = publishing._apart
        assert apart is not None and apart._process.is_alive()
        assert publishing.counts["published"] == 2  # published by the process, before the command ends
        ledger.reconcile([line("B-2", user="bob", shop_id="plaza")], now=at)
        assert publishing.done()["published"] == 3
    assert not apart._process.is_alive()
    assert sorted(shown(stack)) == THREE_CHANGES


def test_stopping_the_sweeping_process_waits_for_its_sweep_and_ends_it(stack, monkeypatch):
    """Stopped at once (still starting, or between sweeps), the process ends without a sweep half done, and what it
    did not publish is left to the command's last sweep."""
    load_reference_data(stack)
    monkeypatch.setattr(notifications, "SWEEP_APART_AFTER_SECONDS", 0.0)
    composition(stack).ledger().reconcile([line("A-1")], now=T0)
    apart = notifications._SweepProcess(stack, T0)
    assert apart.stop() is None and not apart._process.is_alive()
    assert publish_written(stack, T0)["published"] + apart.counts()["published"] == 1
    assert shown(stack) == [("cashback.pending", "alice", "A-1")]


def test_a_failure_of_the_sweeping_process_is_raised_by_the_command(stack, monkeypatch):
    load_reference_data(stack)
    monkeypatch.setattr(notifications, "SWEEP_AGAIN_SECONDS", 0.05)
    composition(stack).ledger().reconcile([line("A-1")], now=T0)
    broken = stack.model_copy(update={"notifications_topic_arn": f"{stack.notifications_topic_arn}-missing"})
    apart = notifications._SweepProcess(broken, T0)
    deadline = time.monotonic() + 60
    while apart._process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # the process ends on its failure
    failure = apart.stop()
    assert failure and "Error" not in failure.split(":")[0]  # the cause in words, not a class name
    assert apart.counts()["published"] == 0
    assert shown(stack, source="outbox") == [("cashback.pending", "alice", "A-1")]  # nothing lost
