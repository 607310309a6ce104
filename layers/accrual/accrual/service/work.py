"""Units of work: how the jobs hand work to the reconcile workers.

The pull archives each page it fetches and hands it on as a unit (`page`: the archived object's key, its format, the
partner, the pull's "now"); a dropped file becomes one unit per page-sized part, archived beside the pulled pages;
the confirmation schedule hands on one unit per shard of the due index (`confirm`). A reconcile worker takes a unit,
reads what it names and reconciles (or confirms) it with its thread pool. Every unit is safe to repeat: the ledger is
idempotent, so a unit delivered twice, or retried after a worker died half-way, ends where one clean run ends.

A unit that fails (an order the ledger could not settle after its retries, a page that cannot be read) raises
UnitFailed: the queue delivers it again, and after a few receives moves it to the dead-letter queue. Its last reason
is recorded in the control table under the message's id (which survives the move), for `accrual dlq list`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from accrual.adapters.ledger_tables import DUE_SHARDS, ControlRecord, bind_ledger_tables
from accrual.adapters.report_archive import ReportArchive
from accrual.adapters.work_queue import WorkQueue
from accrual.partners import API_PARTNERS
from accrual.service.drop import drop_format, drop_partner
from accrual.service.ingest import ingest_report, ledger_reconcile
from accrual.settings import Settings

DROP_PAGE_LINES = 500  # a dropped file's lines per unit: about one API page's worth of work, minutes apart at most
FAILURE_PK = "UNIT_FAILURE"
REASON_LIMIT = 1000


class WorkUnit(BaseModel):
    """One message of the reconcile queue (its body, as JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["page", "confirm", "claims"]
    run_id: str
    now: AwareDatetime
    partner: str | None = None
    key: str | None = None  # page: the archived object (raw/... or drops/...)
    format: str | None = None  # page: aliexpress | admitad | csv | normalized
    shard: int | None = None  # confirm: the due-index shard
    first_line: int = 1  # page: the part's first line in its dropped file (quarantine positions stay readable)

    def label(self) -> str:
        if self.kind == "claims":
            return f"claims sweep as of {self.now.isoformat()}"
        return f"{self.key}" if self.kind == "page" else f"confirm shard {self.shard} as of {self.now.isoformat()}"


class UnitFailed(RuntimeError):
    """The unit did not complete; the queue retries it (the work already done is not redone: the ledger is
    idempotent)."""


def page_unit(
    partner: str, key: str, report_format: str, *, now: datetime, run_id: str, first_line: int = 1
) -> WorkUnit:
    return WorkUnit(
        kind="page", run_id=run_id, now=now, partner=partner, key=key, format=report_format, first_line=first_line
    )


def confirm_units(*, now: datetime, run_id: str | None = None) -> list[WorkUnit]:
    run_id = run_id or uuid.uuid4().hex
    # one unit per due shard, and the cycle's claims sweep (match open claims, escalate the overdue) as one more
    return [WorkUnit(kind="confirm", run_id=run_id, now=now, shard=shard) for shard in range(DUE_SHARDS)] + [
        WorkUnit(kind="claims", run_id=run_id, now=now)
    ]


def hand_on(settings: Settings, units: list[WorkUnit]) -> int:
    """Send units to the reconcile queue; returns when SQS holds them (the callers move their cursors after)."""
    return WorkQueue(settings).send(unit.model_dump_json() for unit in units)


# ---- a dropped file, in page-sized parts ----------------------------------------------------------------------------
def split_records(data: bytes, *, header: bool, lines_per_part: int) -> list[tuple[int, bytes]]:
    """Split a CSV or JSON Lines file on record boundaries (a newline outside double quotes, so a quoted CSV field
    may hold newlines) into parts of at most `lines_per_part` records, each CSV part starting with the header.
    Returns (first record's line number in the file, part)."""
    records: list[tuple[int, bytes]] = []
    start, line_number, record_line, quoted = 0, 1, 1, False
    for index, byte in enumerate(data):
        if byte == 0x22:  # '"': an escaped quote ("") toggles twice
            quoted = not quoted
        elif byte == 0x0A:
            line_number += 1
            if not quoted:
                records.append((record_line, data[start : index + 1]))
                start, record_line = index + 1, line_number
    if data[start:].strip():
        records.append((record_line, data[start:]))
    head = b""
    if header and records:
        head = records[0][1] if records[0][1].endswith(b"\n") else records[0][1] + b"\n"
        records = records[1:]
    parts = []
    for first in range(0, len(records), lines_per_part):
        chunk = records[first : first + lines_per_part]
        parts.append((chunk[0][0], head + b"".join(record for _, record in chunk)))
    return parts or [(1, head)]


def drop_units(
    bucket: str, key: str, *, settings: Settings, now: datetime, run_id: str, lines_per_part: int = DROP_PAGE_LINES
) -> list[WorkUnit]:
    """The units of a dropped file. A saved API page is one unit as it lies; a CSV or JSON Lines file with more
    lines than a part is split, each part archived under raw/<partner>/drops/<file>/ like a pulled page."""
    partner = drop_partner(key)
    report_format = drop_format(partner, key)
    archive = ReportArchive(settings)
    data = archive.get(key, bucket=bucket)
    return file_units(
        data,
        report_format,
        partner=partner,
        key=key,
        archive=archive,
        now=now,
        run_id=run_id,
        parts_prefix=f"raw/{partner}/drops/{key.split('/', 2)[2]}",
        lines_per_part=lines_per_part,
    )


def file_units(
    data: bytes,
    report_format: str,
    *,
    partner: str,
    key: str,
    archive: ReportArchive,
    now: datetime,
    run_id: str,
    parts_prefix: str,
    lines_per_part: int = DROP_PAGE_LINES,
) -> list[WorkUnit]:
    """A report already archived under `key`: one unit when it is an API page or small, else one per part, each
    part archived under `parts_prefix`/part-NNNNN."""
    if report_format in API_PARTNERS or data.count(b"\n") <= lines_per_part + 1:
        return [page_unit(partner, key, report_format, now=now, run_id=run_id)]
    parts = split_records(data, header=report_format == "csv", lines_per_part=lines_per_part)
    suffix = "jsonl" if report_format == "normalized" else "csv"
    units = []
    for number, (first_line, part) in enumerate(parts, start=1):
        part_key = archive.put_object(f"{parts_prefix}/part-{number:05d}.{suffix}", part)
        units.append(page_unit(partner, part_key, report_format, now=now, run_id=run_id, first_line=first_line))
    return units


# ---- the worker's side ----------------------------------------------------------------------------------------------
def run_unit(unit: WorkUnit, settings: Settings, *, workers: int) -> dict[str, Any]:
    """Do one unit with `workers` threads; raise UnitFailed when any of it is left undone."""
    if unit.kind == "claims":
        from accrual.service.claims import claim_service

        swept = claim_service(settings).sweep(now=unit.now)
        _raise_if_unsettled(unit, swept)
        return {"kind": "claims", **swept}
    if unit.kind == "confirm":
        from accrual.service.fanout import ConcurrentLedger

        counts = ConcurrentLedger(settings, workers=workers).confirm(now=unit.now, shards=[unit.shard or 0])
        result: dict[str, Any] = {"kind": "confirm", "shard": unit.shard, **counts}
        _raise_if_unsettled(unit, counts)
        return result
    archive = ReportArchive(settings)
    data = archive.get(unit.key or "")
    result = ingest_report(
        data,
        unit.format or "",
        partner=unit.partner or "",
        source=unit.key or "",
        settings=settings,
        now=unit.now,
        run_id=unit.run_id,
        archive=archive,
        reconcile=ledger_reconcile(settings, unit.now, workers),
        pulled_page=True,
    )
    result["kind"] = "page"
    _raise_if_unsettled(unit, result["reconciled"])
    return result


def _raise_if_unsettled(unit: WorkUnit, counts: dict[str, int]) -> None:
    failed, conflicts = counts.get("orders_failed", 0), counts.get("journal_conflicts", 0)
    if failed or conflicts:
        raise UnitFailed(f"{unit.label()}: {failed} order(s) not settled, {conflicts} journal conflict(s)")


def record_failure(settings: Settings, message_id: str, unit_text: str, reason: str, *, receives: int) -> None:
    """Keep the last reason a message failed, under its id (the dead-letter queue keeps the message itself)."""
    bind_ledger_tables(settings)
    ControlRecord(
        FAILURE_PK,
        message_id,
        body=unit_text,
        reason=reason[:REASON_LIMIT],
        at=f"{datetime.now(UTC).isoformat()} receive {receives}",
    ).save()


def failure_reason(settings: Settings, message_id: str) -> tuple[str | None, str | None]:
    bind_ledger_tables(settings)
    try:
        record = ControlRecord.get(FAILURE_PK, message_id)
    except ControlRecord.DoesNotExist:
        return None, None
    return record.reason, record.at
