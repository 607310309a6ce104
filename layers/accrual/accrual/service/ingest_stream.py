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
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from accrual.adapters.partner_state import PartnerState
from accrual.adapters.report_archive import ReportArchive, raw_key
from accrual.domain.models import OrderLine, order_key
from accrual.partners.csv_drop import parse_csv
from accrual.partners.normalized import parse_jsonl
from accrual.partners.report import ReportFormatError, top_reasons
from accrual.settings import Settings

PART_LINES = 2000  # about 1 MB of normalised lines: small against a Lambda's memory, large against a page
READ_BLOCK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _order_of(raw: bytes) -> str | None:
    """The order a raw line names, when it is readable enough to say; None otherwise (a part may end there)."""
    try:
        record = json.loads(raw)
        return order_key(str(record["partner"]), str(record["order_id"]))
    except (ValueError, KeyError, TypeError):
        return None


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
                order = _order_of(raw) if raw.strip() else None
                if order is not None and order == last_order:
                    part.append(raw)  # the same order goes on: the part does too
                    continue
                yield b"".join(part)
                part = []
            part.append(raw)
            if len(part) >= part_lines:
                last_order = _order_of(raw) if raw.strip() else None
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


def ingest_jsonl_file(
    path: Path, *, settings: Settings, now: datetime, reconcile=None, part_lines: int = PART_LINES
) -> dict[str, Any]:
    return ingest_file_streamed(
        path, "normalized", partner="normalized", settings=settings, now=now, reconcile=reconcile, part_lines=part_lines
    )


def ingest_file_streamed(
    path: Path,
    report_format: str,
    *,
    partner: str,
    settings: Settings,
    now: datetime,
    reconcile=None,
    part_lines: int = PART_LINES,
) -> dict[str, Any]:
    """Ingest a JSON Lines (`normalized`) or CSV file part by part; `partner` names the CSV's partner (`--as`)."""
    from accrual.service.ingest import ledger_reconcile, map_of, options_for, screen_report, with_map_hint

    run_id = uuid.uuid4().hex
    archive = ReportArchive(settings)
    source = raw_key(
        partner, now.replace(hour=0, minute=0, second=0, microsecond=0), f"{path.stem}-{_file_digest(path)}"
    )
    content_type = "text/csv" if report_format == "csv" else "application/json"
    settings.client("s3").upload_file(str(path), archive.bucket, source, ExtraArgs={"ContentType": content_type})
    reconcile = reconcile or ledger_reconcile(settings, now)
    options = options_for(report_format, partner, settings)

    counts: Counter[str] = Counter(read=0, accepted=0, quarantined=0)
    reconciled: Counter[str] = Counter()
    quarantined = []
    held: list[OrderLine] = []  # a CSV part's last order, reconciled with the next part (its lines may go on there)
    for first_line, data in _parts(path, report_format, part_lines):
        if report_format == "csv":
            try:
                report = parse_csv(data, source=source, partner=partner, options=options, first_line=first_line)
            except ReportFormatError as error:
                raise with_map_hint(error, report_format, partner, settings) from None
        else:
            text = data.decode("utf-8-sig" if first_line == 1 else "utf-8", "surrogateescape")
            report = parse_jsonl(text, source=source, partner=partner, first_line=first_line)
        screen_report(report, reconcile)
        # reading positions count from the start of the file, as when it is read whole
        quarantined += [replace(line, position=line.position + counts["read"]) for line in report.quarantined]
        counts.update(report.counts)
        lines = held + report.lines
        held = _last_order(lines) if report_format == "csv" else []
        ready = lines[: len(lines) - len(held)]
        if ready:
            reconciled.update(reconcile(ready))
        advance = getattr(reconcile, "advance", None)  # a progress bar counting the file's bytes
        if advance is not None:
            advance(len(data))
    if held:
        reconciled.update(reconcile(held))
    if quarantined:
        key = archive.put_quarantine(source, quarantined, run_id=run_id, partner=partner)
        PartnerState(settings).quarantine(partner, source, quarantined, run_id=run_id, now=now, raw_key=key)
    return {
        "partner": partner,
        "source": source,
        "format": report_format,
        "run_id": run_id,
        "read": counts["read"],
        "accepted": counts["accepted"],
        "quarantined": counts["quarantined"],
        "quarantine_reasons": [f"{line.position}: {line.reason}" for line in quarantined],
        "top_reasons": top_reasons(quarantined),
        **map_of(report_format, partner, settings),
        "reconciled": dict(reconciled),
    }
