"""Units of work on fakes of their ports: a file is split into page-sized units only between two orders, so an order
is decided once, by one unit, with all its lines, and sends the notifications a whole-file ingest sends; a unit
names its run; confirmation and failure reasons travel through the queue and the failure log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from accrual.partners import PartnerOptions
from accrual.service.work import WorkUnit, confirm_units, split_records
from support.fakes.world import FakeWorld
from support.ledger import T0
from support.memory import store_snapshot

NOW = T0 + timedelta(minutes=10)


def jsonl_line(order: int, line: int, user: str = "alice", status: str = "paid") -> str:
    return json.dumps(
        {
            "partner": "aliexpress",
            "line_id": f"{order}-{line}",
            "order_id": f"order-{order}",
            "sub_id": f"c-{user}",
            "status": status,
            "status_at": T0.isoformat(),
            "ordered_at": T0.isoformat(),
            "amount": f"{10 + line}.00",
            "shipping": "0",
            "currency": "USD",
            "commission": "1.00",
            "category_id": "tools",
        }
    )


def jsonl_file(orders: int = 30) -> bytes:
    """Orders of 1, 2 and 3 lines one after the other: with parts of 4 lines many orders straddle a boundary."""
    return "".join(jsonl_line(order, line) + "\n" for order in range(orders) for line in range(1 + order % 3)).encode()


def units_of(world: FakeWorld, data: bytes, report_format: str, partner: str, lines_per_part: int) -> list[WorkUnit]:
    key = world.archive.put_object(f"raw/{partner}/files/report", data)
    return world.work.file_units(
        data,
        report_format,
        partner=partner,
        key=key,
        now=NOW,
        run_id="run-1",
        parts_prefix="raw/parts",
        lines_per_part=lines_per_part,
    )


def orders_per_unit(world: FakeWorld, units: list[WorkUnit], report_format: str, partner: str) -> list[set[str]]:
    seen = []
    for unit in units:
        report = world.ingest.read(
            world.archive.get(unit.key or ""),
            report_format,
            partner=partner,
            source=unit.key or "",
            sink=world.sink(NOW),
        )
        seen.append({line.order_key for line in report.lines})
    return seen


def test_a_jsonl_file_is_split_only_between_orders():
    world = FakeWorld()
    data = jsonl_file()
    units = units_of(world, data, "normalized", "normalized", lines_per_part=4)
    assert len(units) > 5 and all(unit.run_id == "run-1" for unit in units)
    per_unit = orders_per_unit(world, units, "normalized", "normalized")
    for index, orders in enumerate(per_unit):  # no order in two units
        assert all(not orders & other for other in per_unit[index + 1 :])
    assert sum(len(orders) for orders in per_unit) == 30
    assert b"".join(world.archive.get(unit.key or "") for unit in units) == data
    lines_before = [sum(1 for _ in world.archive.get(unit.key or "").splitlines()) for unit in units]
    assert [unit.first_line for unit in units] == [1 + sum(lines_before[:index]) for index in range(len(units))]


def test_a_csv_is_split_only_between_orders_read_through_its_column_map():
    world = FakeWorld()
    world.partners.columns_by_partner["aliexpress"] = PartnerOptions(
        columns={"line_id": "Item", "order_id": "Order", "sub_id": "Click", "amount": "Sale"}
    )
    header = "Item,Order,Click,status,ordered_at,paid_at,Sale,currency,commission,category_id\n"
    rows = [
        f"{order}-{line},order-{order},c-alice,paid,{T0.isoformat()},,{10 + line}.00,USD,1.00,tools\n"
        for order in range(20)
        for line in range(1 + order % 3)
    ]
    units = units_of(world, (header + "".join(rows)).encode(), "csv", "aliexpress", lines_per_part=4)
    per_unit = orders_per_unit(world, units, "csv", "aliexpress")
    assert len(units) > 4 and sum(len(orders) for orders in per_unit) == 20
    for index, orders in enumerate(per_unit):
        assert all(not orders & other for other in per_unit[index + 1 :])


def test_a_file_done_as_units_sends_one_notification_per_order_as_the_whole_file_does():
    # Given the same file ingested whole by one ledger, and split into units done one by one by another
    data = jsonl_file()
    whole, split = FakeWorld(), FakeWorld()
    whole.ingest.page(data, "normalized", partner="normalized", source="f", sink=whole.sink(NOW), now=NOW, run_id="w")
    units = units_of(split, data, "normalized", "normalized", lines_per_part=4)
    split.work.hand_on(units)
    # When a worker takes every unit off the queue
    done = []
    while messages := split.work_queue.receive(limit=10):
        for message in messages:
            unit = WorkUnit.model_validate_json(message.body)
            done.append(split.work.run_unit(unit, workers=1))
            split.work.finish(unit, done[-1], receives=message.receives)
        split.work_queue.delete(message.receipt_handle for message in messages)
    # Then every unit is done, the ledgers agree, and each order was announced once
    assert len(done) == len(units) and split.work_queue.depth().visible == 0
    assert sum(unit.page.read for unit in done if unit.page) == 60
    assert store_snapshot(split.store) == store_snapshot(whole.store)
    assert len(split.store.outbox) == len(whole.store.outbox) == 30
    # and the run's log holds what each of its units did, for the command waiting for them
    logged = split.work.outcomes("run-1")
    assert len(logged) == len(units) and all(outcome.done for outcome in logged)
    assert sum(json.loads(outcome.detail)["read"] for outcome in logged) == 60


def test_a_split_that_ignored_orders_would_have_announced_an_order_twice():
    # the failure the order boundaries prevent: an order's second line in the next unit changes it a second time
    data = jsonl_file(orders=3)  # orders of 1, 2 and 3 lines: six lines
    parts = split_records(data, header=False, lines_per_part=2)
    assert [part.count(b"\n") for _, part in parts] == [2, 2, 2]  # order-1 and order-2 straddle a boundary
    world = FakeWorld()
    for _, part in parts:
        world.ingest.page(
            part, "normalized", partner="normalized", source="p", sink=world.sink(NOW), now=NOW, run_id="r"
        )
    assert len(world.store.outbox) > 3


def test_confirm_units_name_their_run_and_confirm_each_shard():
    world = FakeWorld()
    lines = "\n".join(jsonl_line(order, 0, status="settled") for order in range(4)).encode()
    world.ingest.page(lines, "normalized", partner="normalized", source="f", sink=world.sink(T0), now=T0, run_id="i")
    units = confirm_units(now=T0 + timedelta(days=40), run_id="confirm-1")
    assert {unit.run_id for unit in units} == {"confirm-1"} and [unit.kind for unit in units][-1] == "claims"
    results = [world.work.run_unit(unit, workers=1).as_dict() for unit in units]
    assert sum(result.get("orders_due", 0) for result in results) == 4
    assert sum(result.get("moves_post", 0) for result in results) == 4
    assert [result["shard"] for result in results if result["kind"] == "confirm"] == list(range(8))


def test_a_unit_that_cannot_be_read_fails_and_its_reason_is_kept():
    world = FakeWorld()
    world.store.save_config(world.store.current_config().model_copy(update={"fx_rates": {}}))
    line = json.loads(jsonl_line(1, 0))
    line.update(currency="EUR", usd_rate=None)
    key = world.archive.put_object("raw/normalized/eur.jsonl", json.dumps(line).encode())
    unit = WorkUnit(kind="page", run_id="r", now=NOW, partner="normalized", key=key, format="normalized")
    # screening refuses a currency without a rate: quarantined, not failed
    assert world.work.run_unit(unit, workers=1).page.quarantined == 1
    failing = WorkUnit(kind="page", run_id="r", now=NOW, partner="normalized", key="raw/missing", format="normalized")
    with pytest.raises(KeyError):
        world.work.run_unit(failing, workers=1)
    world.work.record_failure("m-1", failing, "KeyError: raw/missing", receives=3)
    failure = world.work.failure_reason("m-1")
    assert failure is not None and failure.reason == "KeyError: raw/missing" and "receive 3" in failure.at
    assert world.work.failure_reason("m-2") is None
    # and its run says so: the command that handed it on sees which of its units failed, on which receive
    [outcome] = world.work.outcomes("r")
    assert (outcome.unit, outcome.done, outcome.receives) == ("page raw/missing", False, 3)


def test_a_pulled_page_of_an_unexpected_shape_is_quarantined_whole_by_the_worker_not_failed():
    world = FakeWorld()
    raw = b'{"results": {"id": 7}, "_meta": {"count": 1}}'
    key = world.archive.put_object("raw/admitad/test/odd-page.json", raw)
    done = world.work.run_unit(
        WorkUnit(kind="page", run_id="r-odd", now=NOW, partner="admitad", key=key, format="admitad"), workers=1
    )
    result = done.as_dict()
    assert (result["read"], result["accepted"], result["quarantined"], result["pages_quarantined"]) == (1, 0, 1, 1)
    (record,) = [record for record in world.partner_state.quarantined("admitad") if record.source == key]
    assert record.reason.startswith("page of an unexpected shape, quarantined whole") and record.raw == raw.decode()
