"""The work queue with the real reconcile handler on the local stack: a worker that dies mid-batch leaves its units to
be received again and nothing is doubled; a unit that keeps failing ends in the dead-letter queue with its reason,
visible to the operator; a dropped file is split into page-sized units."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from accrual.composition import composition
from accrual.ports import QueueDepth
from accrual.service.work import WorkService, page_unit, split_records
from accrual_dev import poller
from accrual_dev.commands import dlq
from accrual_dev.poller import LocalPoller
from support.ledger import T0, line, load_reference_data, snapshot
from support.readers import audit

USERS = {f"u{number}": "USD" for number in range(6)}


def put_pages(stack, pages: int, per_page: int = 5, folder: str = "test") -> list:
    archive, units = composition(stack).archive, []
    run_id = uuid.uuid4().hex
    for page in range(pages):
        lines = [line(f"P{page}-{number}", user=f"u{number % 6}").model_dump_json() for number in range(per_page)]
        key = archive.put_object(f"raw/normalized/{folder}/page-{page}.jsonl", "\n".join(lines).encode())
        units.append(page_unit("normalized", key, "normalized", now=T0, run_id=run_id))
    return units


def test_a_worker_that_dies_mid_batch_leaves_its_units_and_nothing_is_doubled(stack, monkeypatch):
    load_reference_data(stack, users=USERS)
    units = put_pages(stack, pages=6)
    composition(stack).work.hand_on(units)
    poller = LocalPoller(stack, workers=4, visibility_seconds=3)
    real = WorkService.run_unit
    calls = []

    def dies_on_the_second_unit(self, unit, *, workers):
        calls.append(unit.key)
        if len(calls) == 2:
            raise SystemExit("the worker's process died")  # not an Exception: nothing is reported, nothing deleted
        return real(self, unit, workers=workers)

    monkeypatch.setattr(WorkService, "run_unit", dies_on_the_second_unit)
    with pytest.raises(SystemExit):
        poller.poll_once()
    depth = composition(stack).work_queue.depth()  # nothing deleted, though the first unit's work is already written
    assert depth.visible + depth.in_flight == 6
    monkeypatch.setattr(WorkService, "run_unit", real)

    drained = LocalPoller(stack, workers=4).drain(timeout=60)
    assert drained["fanout"]["units_done"] == 6 and drained["fanout"]["unit_failures"] == 0
    assert composition(stack).work_queue.depth() == QueueDepth(0, 0)
    state = snapshot()
    assert len(state["orders"]) == 30 and len(state["journal"]) == 30 and len(state["outbox"]) == 30
    assert audit(stack)["ok"]
    # the redelivered first unit changed nothing: its orders were already settled
    first = [result for result in drained["results"] if result["source"] == calls[0]]
    assert first and first[0]["reconciled"]["lines_unchanged"] == 5


def test_a_unit_failing_every_receive_lands_in_the_dead_letter_queue_with_its_reason(stack, capsys):
    load_reference_data(stack, users=USERS)
    good = put_pages(stack, pages=1)
    missing = page_unit("normalized", "raw/normalized/test/missing.jsonl", "normalized", now=T0, run_id="r1")
    composition(stack).work.hand_on([*good, missing])
    drained = LocalPoller(stack, workers=2).drain(timeout=120)
    assert drained["fanout"]["units_done"] == 1 and drained["fanout"]["unit_failures"] >= 1

    letters = dlq.dead_letters(stack)
    assert [letter["unit"]["key"] for letter in letters] == [missing.key]
    assert "NoSuchKey" in letters[0]["reason"]
    assert dlq.list_units(SimpleNamespace(json=True)) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["unit"]["key"] == missing.key and "NoSuchKey" in listed[0]["reason"]

    # the cause fixed, the operator redrives it and it is reconciled
    composition(stack).archive.put_object(missing.key, line("M1", user="u1").model_dump_json().encode())
    assert dlq.redrive(SimpleNamespace(workers=2)) == 0
    assert json.loads(capsys.readouterr().out)["redriven"] == 1
    assert not dlq.dead_letters(stack)
    assert "aliexpress#M1" in snapshot()["orders"]


def test_a_large_dropped_file_becomes_page_sized_units_that_reconcile_like_the_whole(stack):
    load_reference_data(stack, users=USERS)
    lines = [line(f"D{number:03d}", user=f"u{number % 6}").model_dump_json() for number in range(23)]
    work = composition(stack).work
    key = work.archive.put_object("drops/normalized/big file.jsonl", ("\n".join(lines) + "\n").encode())
    units = work.drop_units(stack.reports_bucket, key, now=T0 + timedelta(hours=1), run_id="drop-1", lines_per_part=5)
    assert len(units) == 5 and all(unit.key.startswith("raw/normalized/drops/big file.jsonl/part-") for unit in units)
    assert [unit.first_line for unit in units] == [1, 6, 11, 16, 21]
    work.hand_on(units)
    drained = LocalPoller(stack, workers=4).drain(timeout=60)
    assert sum(result["read"] for result in drained["results"]) == 23
    assert len(snapshot()["orders"]) == 23


def test_a_command_waits_for_its_own_units_and_leaves_another_commands_queued(stack, monkeypatch):
    # Given another command's unit still on the queue, and this command's three units after it
    load_reference_data(stack, users=USERS)
    monkeypatch.setenv("ACCRUAL_POLLER_PROCESSES", "1")
    work = composition(stack).work
    stale = [
        unit.model_copy(update={"run_id": "someone-else"})
        for unit in put_pages(stack, pages=1, per_page=2, folder="stale")
    ]
    work.hand_on(stale)
    own = put_pages(stack, pages=3)
    work.hand_on(own)
    # When it waits for its run
    drained = poller.drain(stack, 2, runs={own[0].run_id: len(own)}, timeout=120)
    # Then it did and reports its own units only, and names the other one, which stays queued for its owner
    assert drained["fanout"]["units_done"] == 3 and len(drained["results"]) == 3
    assert {result["run_id"] for result in drained["results"]} == {own[0].run_id}
    assert drained["fanout"]["others_left_queued"] == [stale[0].label()]
    assert composition(stack).work_queue.depth() == QueueDepth(1, 0)
    assert [outcome.unit for outcome in work.outcomes("someone-else")] == []


def test_a_csv_splits_on_records_keeping_quoted_newlines_and_the_header():
    data = b'a,b\n1,"x\ny"\n2,z\n3,"q""\n"\n4,w'
    parts = split_records(data, header=True, lines_per_part=2)
    assert parts == [(2, b'a,b\n1,"x\ny"\n2,z\n'), (5, b'a,b\n3,"q""\n"\n4,w')]
