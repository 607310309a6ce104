"""`accrual ingest FILE --partner normalized` reads the file part by part: on the local stack, the same counts, ledger
and quarantine as a file read whole, the file archived whole; and a part is never cut inside a run of one order's
lines."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from accrual.adapters.partner_state import DynamoPartnerState as PartnerState
from accrual.service.ingest_stream import parts
from support.ledger import T0, balance_of, load_reference_data, snapshot, wipe_ledger
from support.services import ingest_file_streamed, ingest_report


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


def report_lines() -> list[str]:
    lines = []
    for order in range(12):
        for line in range(1 + order % 3):  # orders of 1, 2 and 3 lines
            lines.append(json.dumps(normalized(order, line)))
        if order % 4 == 1:
            lines.append("not json at all")
        if order % 5 == 2:
            lines.append("")  # a blank line is skipped, not read
    lines.append(json.dumps(normalized(99, 0, currency="EUR", usd_rate="NaN")))
    return lines


def test_parts_end_only_between_orders(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    path.write_text("\n".join(report_lines()) + "\n")
    pieces = list(parts(path, part_lines=2))
    assert b"".join(pieces) == path.read_bytes()
    assert len(pieces) > 3
    for before, after in zip(pieces, pieces[1:], strict=False):
        last = json.loads(before.splitlines()[-1]) if before.splitlines()[-1].startswith(b"{") else None
        first = json.loads(after.splitlines()[0]) if after.splitlines()[0].startswith(b"{") else None
        if last and first:
            assert last["order_id"] != first["order_id"]


def test_a_streamed_file_ends_as_the_file_read_whole(stack, tmp_path: Path, part_lines: int = 3) -> None:
    """On the stack: the multipart upload of the whole file and the quarantine records (the logic, every part size
    and the CSV, is tested on fakes in tests/unit/test_ingest_on_fakes.py)."""
    load_reference_data(stack)
    lines = report_lines()
    data = "\n".join(lines).encode()
    now = T0 + timedelta(minutes=10)
    whole = ingest_report(data, "normalized", partner="normalized", source="files/whole.jsonl", settings=stack, now=now)
    whole_ledger, whole_balance = snapshot(), balance_of("alice")
    whole_positions = sorted(
        record.position
        for record in PartnerState(stack).quarantined("normalized")
        if record.source == "files/whole.jsonl"
    )
    wipe_ledger(stack)

    path = tmp_path / "report.jsonl"
    path.write_bytes(data)
    streamed = ingest_file_streamed(
        path, "normalized", partner="normalized", settings=stack, now=now, part_lines=part_lines
    )

    assert (
        (streamed["read"], streamed["accepted"], streamed["quarantined"])
        == (whole["read"], whole["accepted"], whole["quarantined"])
        == (len([line for line in lines if line]), 24, 4)
    )
    assert streamed["quarantine_reasons"] == whole["quarantine_reasons"]
    assert streamed["reconciled"] == whole["reconciled"]
    assert snapshot() == whole_ledger and balance_of("alice") == whole_balance
    streamed_records = [
        record for record in PartnerState(stack).quarantined("normalized") if record.source == streamed["source"]
    ]
    assert sorted(record.position for record in streamed_records) == whole_positions
    # the raw file is archived whole under its content key
    body = stack.client("s3").get_object(Bucket=stack.reports_bucket, Key=streamed["source"])["Body"].read()
    assert body == data
