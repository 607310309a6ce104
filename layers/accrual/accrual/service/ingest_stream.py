"""`accrual ingest FILE --partner normalized`, streamed: a JSON Lines file of any length is read, screened and
reconciled part by part, so the memory it takes does not grow with the file.

The file is hashed and archived to S3 as it is read from disk (a multipart upload for a large one), under the same
content key as a file read whole. Its lines are then taken in parts of about PART_LINES lines; a part is only cut
between two orders (the lines of one order that follow each other stay in one part, so each order is decided once,
with all its lines, as when the file is read whole). Each part is normalised, screened and reconciled; counts add up
across the parts, and line numbers count from the start of the file. Quarantined lines are kept until the end and
written once (to S3 and the quarantine records), like a file read whole: they are the exception, and a file made
only of them is bounded by the readers' own limits.
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
from accrual.domain.models import order_key
from accrual.partners.normalized import parse_jsonl
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


def ingest_jsonl_file(
    path: Path, *, settings: Settings, now: datetime, reconcile=None, part_lines: int = PART_LINES
) -> dict[str, Any]:
    from accrual.service.ingest import ledger_reconcile, screen_report

    run_id = uuid.uuid4().hex
    partner = report_format = "normalized"
    archive = ReportArchive(settings)
    source = raw_key(
        partner, now.replace(hour=0, minute=0, second=0, microsecond=0), f"{path.stem}-{_file_digest(path)}"
    )
    settings.client("s3").upload_file(str(path), archive.bucket, source, ExtraArgs={"ContentType": "application/json"})
    reconcile = reconcile or ledger_reconcile(settings, now)

    counts: Counter[str] = Counter(read=0, accepted=0, quarantined=0)
    reconciled: Counter[str] = Counter()
    quarantined = []
    first_line = 1
    for data in parts(path, part_lines):
        text = data.decode("utf-8-sig" if first_line == 1 else "utf-8", "surrogateescape")
        report = parse_jsonl(text, source=source, partner=partner, first_line=first_line)
        first_line += len(text.splitlines())
        screen_report(report, reconcile)
        # reading positions count from the start of the file, as when it is read whole
        quarantined += [replace(line, position=line.position + counts["read"]) for line in report.quarantined]
        counts.update(report.counts)
        if report.lines:
            reconciled.update(reconcile(report.lines))
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
        "reconciled": dict(reconciled),
    }
