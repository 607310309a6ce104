"""`accrual ingest FILE --partner normalized|csv`, streamed: a JSON Lines or CSV file of any length is read,
screened and reconciled part by part, so the memory it takes does not grow with the file.

The file is hashed and archived to S3 as it is read from disk (a multipart upload for a large one), under the same
content key as a file read whole. Its records are then taken in parts of about PART_LINES lines (a CSV record ends at
a newline outside double quotes, and every CSV part starts with the file's header). The lines of one order that follow
each other are reconciled together, so each order is decided once, with all its lines, as when the file is read
whole: a JSON Lines part is only cut between two orders; a CSV part (whose order column is the partner's to name)
holds back the lines of its last order and hands them on with the next part. Each part is normalised, screened and
reconciled; counts add up across the parts, and line numbers count from the start of the file. Quarantined lines are
kept until the end and written once (to S3 and the quarantine records), like a file read whole: they are the
exception, and a file made only of them is bounded by the readers' own limits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from accrual.domain.models import OrderLine
from accrual.partners import QuarantinedLine
from accrual.service.ingest import IngestStep, LedgerSink, PageResult, jsonl_order

PART_LINES = 2000  # about 1 MB of normalised lines: small against a Lambda's memory, large against a page
READ_BLOCK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _parts(path: Path, report_format: str, part_lines: int) -> Iterator[tuple[int, bytes]]:
    if report_format == "csv":
        yield from csv_parts(path, part_lines)
        return
    first_line = 1
    for data in parts(path, part_lines):
        yield first_line, data
        first_line += data.count(b"\n")  # a part ends after a newline; lines end at \n only, as parse_jsonl reads them


def _last_order(lines: list[OrderLine]) -> list[OrderLine]:
    """The run of lines at the end that belong to the last line's order."""
    if not lines:
        return []
    last, start = lines[-1].order_key, len(lines)
    while start > 0 and lines[start - 1].order_key == last:
        start -= 1
    return lines[start:]


def parts(path: Path, part_lines: int = PART_LINES) -> Iterator[bytes]:
    """The file's bytes in parts of at least `part_lines` lines, each cut after a newline and between two orders."""
    part: list[bytes] = []
    last_order: str | None = None  # the order of the part's last line, once the part is long enough to end
    with path.open("rb") as file:
        for raw in file:
            if len(part) >= part_lines:
                order = jsonl_order(raw) if raw.strip() else None
                if order is not None and order == last_order:
                    part.append(raw)  # the same order goes on: the part does too
                    continue
                yield b"".join(part)
                part = []
            part.append(raw)
            if len(part) >= part_lines:
                last_order = jsonl_order(raw) if raw.strip() else None
    if part:
        yield b"".join(part)


def csv_parts(path: Path, part_lines: int = PART_LINES) -> Iterator[tuple[int, bytes]]:
    """The CSV file in parts of `part_lines` records (a newline inside double quotes does not end a record), each
    part starting with the header: (the file line number of the part's first record, the part's bytes)."""
    header, part = b"", []
    line_number, first_line, record, quoted = 0, 2, b"", False
    with path.open("rb") as file:
        for raw in file:
            line_number += 1
            record += raw
            quoted ^= raw.count(b'"') % 2 == 1  # an escaped quote ("") counts twice
            if quoted:
                continue
            if not header:
                header, record = record if record.endswith(b"\n") else record + b"\n", b""
                first_line = line_number + 1
                continue
            part.append(record)
            record = b""
            if len(part) >= part_lines:
                yield first_line, header + b"".join(part)
                part, first_line = [], line_number + 1
    if record.strip():
        part.append(record)
    if part or not header:
        yield first_line, (header or record) + b"".join(part)


def ingest_file_streamed(
    path: Path,
    report_format: str,
    *,
    partner: str,
    ingest: IngestStep,
    sink: LedgerSink,
    now: datetime,
    part_lines: int = PART_LINES,
) -> PageResult:
    """Ingest a JSON Lines (`normalized`) or CSV file part by part; `partner` names the CSV's partner (`--as`)."""
    run_id = uuid.uuid4().hex
    content_type = "text/csv" if report_format == "csv" else "application/json"
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    source = ingest.archive.put_file(partner, day, f"{path.stem}-{_file_digest(path)}", path, content_type)
    options = ingest.options_for(report_format, partner)

    result = PageResult(partner, source, report_format, run_id)
    quarantined: list[QuarantinedLine] = []
    held: list[OrderLine] = []  # a CSV part's last order, reconciled with the next part (its lines may go on there)
    for first_line, data in _parts(path, report_format, part_lines):
        report = ingest.read(
            data, report_format, partner=partner, source=source, sink=sink, options=options, first_line=first_line
        )
        # reading positions count from the start of the file, as when it is read whole
        quarantined += [replace(line, position=line.position + result.read) for line in report.quarantined]
        result.add(report)
        lines = held + report.lines
        held = _last_order(lines) if report_format == "csv" else []
        ready = lines[: len(lines) - len(held)]
        if ready:
            result.reconciled.merge(sink(ready))
        sink.advance(len(data))  # a progress bar counts the file's bytes
    if held:
        result.reconciled.merge(sink(held))
    ingest.keep_quarantined(source, quarantined, partner=partner, run_id=run_id, now=now)
    ingest.quarantined(result, quarantined)
    return result
