"""The one ingest step on fakes of its ports: a report read whole and the same file streamed part by part end in the
same counts, ledger and quarantine whatever the part size; lines the configuration refuses are quarantined like
unreadable ones; a drop is read with its column map; counts read = accepted + quarantined always hold."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from accrual.partners import PartnerOptions
from accrual.service.drop import ingest_drop
from accrual.service.ingest_stream import ingest_file_streamed
from support.fakes.world import FakeWorld
from support.ledger import T0
from support.memory import store_snapshot
from support.services import RecordingSink

NOW = T0 + timedelta(minutes=10)
# the last column is free text: a newline inside it is kept (an id with one is quarantined)
CSV_HEADER = "line_id,order_id,sub_id,status,ordered_at,paid_at,amount,currency,commission,status_detail\n"


def normalized(order: int, line: int, **changes) -> dict:
    value = {
        "partner": "aliexpress",
        "line_id": f"{order}-{line}",
        "order_id": f"order-{order}",
        "sub_id": "c-alice",
        "status": "paid",
        "status_at": T0.isoformat(),
        "ordered_at": T0.isoformat(),
        "amount": f"{10 + line}.00",
        "shipping": "0",
        "currency": "USD",
        "commission": "1.00",
        "category_id": "tools",
    }
    value.update(changes)
    return value


def jsonl_report() -> bytes:
    lines = []
    for order in range(12):
        for line in range(1 + order % 3):  # orders of 1, 2 and 3 lines
            lines.append(json.dumps(normalized(order, line)))
        if order % 4 == 1:
            lines.append("not json at all")
        if order % 5 == 2:
            lines.append("")  # a blank line is skipped, not read
    lines.append(json.dumps(normalized(99, 0, currency="EUR", usd_rate="NaN")))
    return "\n".join(lines).encode()


def csv_report() -> bytes:
    rows = [CSV_HEADER]
    for order in range(12):
        for line in range(1 + order % 3):
            rows.append(
                f"{order}-{line},order-{order},c-alice,paid,{T0.isoformat()},{T0.isoformat()},{10 + line}.00,USD,0,"
                + ('"tools\nand more"' if order == 4 and line == 1 else "tools")  # a quoted newline: one record
                + "\n"
            )
        if order % 4 == 1:
            rows.append("only,three,cells\n")
        if order % 5 == 2:
            rows.append("\n")
    rows.append(f"99-0,order-99,c-alice,paid,{T0.isoformat()},,12.00,XYZ,0,tools\n")  # not a currency
    return "".join(rows).encode()


def ingest_whole(world: FakeWorld, data: bytes, report_format: str, partner: str):
    return world.ingest.page(
        data,
        report_format,
        partner=partner,
        source=f"files/whole.{report_format}",
        sink=world.sink(NOW),
        now=NOW,
        run_id="whole",
    )


@pytest.mark.parametrize(("report_format", "partner"), [("normalized", "normalized"), ("csv", "aliexpress")])
@pytest.mark.parametrize("part_lines", [1, 2, 3, 1000])
def test_a_streamed_file_ends_as_the_file_read_whole(tmp_path: Path, report_format, partner, part_lines) -> None:
    # Given one report, read whole by one ledger and streamed part by part into another
    data = jsonl_report() if report_format == "normalized" else csv_report()
    whole_world, streamed_world = FakeWorld(), FakeWorld()
    whole = ingest_whole(whole_world, data, report_format, partner)
    path = tmp_path / f"report.{report_format}"
    path.write_bytes(data)
    # When the streamed ingest reads it part by part
    streamed = ingest_file_streamed(
        path,
        report_format,
        partner=partner,
        ingest=streamed_world.ingest,
        sink=streamed_world.sink(NOW),
        now=NOW,
        part_lines=part_lines,
    )
    # Then the counts, the quarantine (positions from the start of the file) and the ledger are the same
    assert (streamed.read, streamed.accepted, streamed.quarantined) == (whole.read, whole.accepted, whole.quarantined)
    assert (streamed.accepted, streamed.quarantined) == (24, 4)
    assert streamed.quarantine_reasons == whole.quarantine_reasons
    assert streamed.reconciled == whole.reconciled  # every order decided once, with all its lines
    assert store_snapshot(streamed_world.store) == store_snapshot(whole_world.store)
    positions = [record.position for record in streamed_world.partner_state.quarantined(partner)]
    assert sorted(positions) == sorted(record.position for record in whole_world.partner_state.quarantined(partner))
    # and the file is archived whole under its content key, its quarantined lines beside it
    assert streamed_world.archive.get(streamed.source) == data
    assert all(record.raw_key for record in streamed_world.partner_state.quarantined(partner))


def test_lines_the_configuration_refuses_are_quarantined_and_the_counts_hold() -> None:
    world = FakeWorld()
    lines = [normalized(1, 0), normalized(2, 0, partner="awin"), normalized(3, 0, currency="GBP")]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    result = ingest_whole(world, data, "normalized", "normalized")
    assert result.read == result.accepted + result.quarantined == 3
    refused = {record.position: record.reason for record in world.partner_state.quarantined("normalized")}
    assert (result.accepted, sorted(refused)) == (1, [2, 3]) and list(world.store.orders) == ["aliexpress#order-1"]
    assert refused[2].startswith("partner='awin'") and "GBP" in refused[3]  # not a partner; no rate for GBP


def test_a_dropped_csv_is_read_with_its_column_map() -> None:
    world = FakeWorld()
    world.partners.columns_by_partner["awin"] = PartnerOptions(
        columns={
            "line_id": "Transaction ID",
            "order_id": "Order",
            "amount": "Sale",
            "status": "State",
            "ordered_at": "Date",
            "sub_id": "Click Ref",
        },
        statuses={"Approved": "settled", "Pending": "paid"},
    )
    body = (
        "Transaction ID,Order,Sale,State,Date,Click Ref\n"
        "T1,O1,12.50,Pending,2026-10-19T10:00:00Z,c-1\n"
        "T2,O2,-4,Pending,2026-10-19T10:00:00Z,c-2\n"
    )
    key = world.archive.put_object("drops/awin/2026-10-19.csv", body.encode())
    received: list = []
    sink = RecordingSink(lambda lines: received.extend(lines) or {"lines_received": len(lines)})
    result = ingest_drop(world.archive.bucket, key, ingest=world.ingest, sink=sink, now=NOW)
    assert (result.read, result.accepted, result.quarantined) == (2, 1, 1)
    assert [(line.partner, str(line.amount)) for line in received] == [("awin", "12.50")]
    assert ("reports", "quarantine/awin/drops/2026-10-19.csv.json") in world.archive.objects
    [record] = list(world.partner_state.quarantined("awin"))
    assert record.reason == "Sale=-4: negative amount" and record.raw.startswith("T2,O2")
    assert result.as_dict()["reconciled"] == result.reconciled.as_dict()
