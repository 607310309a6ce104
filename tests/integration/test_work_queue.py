"""The work queue with the real reconcile handler on the local stack: a worker that dies mid-batch leaves its units to
be received again and nothing is doubled; a unit that keeps failing ends in the dead-letter queue with its reason,
visible to the operator; a dropped file is split into page-sized units."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from accrual.adapters.report_archive import ReportArchive
from accrual.adapters.work_queue import WorkQueue
from accrual.service.reading import audit
from accrual.service.work import drop_units, hand_on, page_unit, split_records
from accrual_dev.commands import dlq
from accrual_dev.poller import LocalPoller
from support.ledger import T0, line, load_reference_data, snapshot

USERS = {f"u{number}": "USD" for number in range(6)}


def put_pages(stack, pages: int, per_page: int = 5) -> list:
    archive, units = ReportArchive(stack), []
    run_id = uuid.uuid4().hex
    for page in range(pages):
        lines = [line(f"P{page}-{number}", user=f"u{number % 6}").model_dump_json() for number in range(per_page)]
        key = archive.put_object(f"raw/normalized/test/page-{page}.jsonl", "\n".join(lines).encode())
        units.append(page_unit("normalized", key, "normalized", now=T0, run_id=run_id))
    return units


def test_a_worker_that_dies_mid_batch_leaves_its_units_and_nothing_is_doubled(stack, monkeypatch):
    load_reference_data(stack, users=USERS)
    units = put_pages(stack, pages=6)
    hand_on(stack, units)
    poller = LocalPoller(stack, workers=4, visibility_seconds=3)
    real = poller.handler.run_unit
    calls = []

    def dies_on_the_second_unit(unit, settings, *, workers):
        calls.append(unit.key)
        if len(calls) == 2:
            raise SystemExit("the worker's process died")  # not an Exception: nothing is reported, nothing deleted
        return real(unit, settings, workers=workers)

    monkeypatch.setattr(poller.handler, "run_unit", dies_on_the_second_unit)
    with pytest.raises(SystemExit):
        poller.poll_once()
    depth = WorkQueue(stack).depth()  # nothing deleted, though the first unit's work is already written
    assert depth["visible"] + depth["in_flight"] == 6
    monkeypatch.setattr(poller.handler, "run_unit", real)

    drained = LocalPoller(stack, workers=4).drain(timeout=60)
    assert drained["fanout"]["units_done"] == 6 and drained["fanout"]["unit_failures"] == 0
    assert WorkQueue(stack).depth() == {"visible": 0, "in_flight": 0}
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
    hand_on(stack, [*good, missing])
    drained = LocalPoller(stack, workers=2).drain(timeout=120)
    assert drained["fanout"]["units_done"] == 1 and drained["fanout"]["unit_failures"] >= 1

    letters = dlq.dead_letters(stack)
    assert [letter["unit"]["key"] for letter in letters] == [missing.key]
    assert "NoSuchKey" in letters[0]["reason"]
    assert dlq.list_units(SimpleNamespace(json=True)) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["unit"]["key"] == missing.key and "NoSuchKey" in listed[0]["reason"]

    # the cause fixed, the operator redrives it and it is reconciled
    ReportArchive(stack).put_object(missing.key, line("M1", user="u1").model_dump_json().encode())
    assert dlq.redrive(SimpleNamespace(workers=2)) == 0
    assert json.loads(capsys.readouterr().out)["redriven"] == 1
    assert not dlq.dead_letters(stack)
    assert "aliexpress#M1" in snapshot()["orders"]


def test_a_large_dropped_file_becomes_page_sized_units_that_reconcile_like_the_whole(stack):
    load_reference_data(stack, users=USERS)
    lines = [line(f"D{number:03d}", user=f"u{number % 6}").model_dump_json() for number in range(23)]
    archive = ReportArchive(stack)
    key = archive.put_object("drops/normalized/big file.jsonl", ("\n".join(lines) + "\n").encode())
    units = drop_units(
        archive.bucket, key, settings=stack, now=T0 + timedelta(hours=1), run_id="drop-1", lines_per_part=5
    )
    assert len(units) == 5 and all(unit.key.startswith("raw/normalized/drops/big file.jsonl/part-") for unit in units)
    assert [unit.first_line for unit in units] == [1, 6, 11, 16, 21]
    hand_on(stack, units)
    drained = LocalPoller(stack, workers=4).drain(timeout=60)
    assert sum(result["read"] for result in drained["results"]) == 23
    assert len(snapshot()["orders"]) == 23


def test_a_csv_splits_on_records_keeping_quoted_newlines_and_the_header():
    data = b'a,b\n1,"x\ny"\n2,z\n3,"q""\n"\n4,w'
    parts = split_records(data, header=True, lines_per_part=2)
    assert parts == [(2, b'a,b\n1,"x\ny"\n2,z\n'), (5, b'a,b\n3,"q""\n"\n4,w')]


def test_a_pulled_page_of_an_unexpected_shape_is_quarantined_whole_by_the_worker_not_dead_lettered(stack):
    from accrual.adapters.partner_state import PartnerState
    from accrual.service.work import run_unit

    load_reference_data(stack, users=USERS)
    raw = b'{"results": {"id": 7}, "_meta": {"count": 1}}'
    key = ReportArchive(stack).put_object("raw/admitad/test/odd-page.json", raw)
    result = run_unit(page_unit("admitad", key, "admitad", now=T0, run_id="r-odd"), stack, workers=1)
    assert (result["read"], result["accepted"], result["quarantined"], result["pages_quarantined"]) == (1, 0, 1, 1)
    (record,) = [record for record in PartnerState(stack).quarantined("admitad") if record.source == key]
    assert record.reason.startswith("page of an unexpected shape, quarantined whole") and record.raw == raw.decode()
