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

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from accrual.partners import API_PARTNERS
from accrual.partners.csv_drop import parse_csv
from accrual.ports import DUE_SHARDS, ReportArchive, UnitFailure, UnitLog, UnitOutcome, WorkQueue
from accrual.service.counts import RunCounts
from accrual.service.drop import drop_format, drop_partner
from accrual.service.ingest import IngestStep, LedgerSink, PageResult, jsonl_order

DROP_PAGE_LINES = 500  # a dropped file's lines per unit: about one API page's worth of work, minutes apart at most
OrderOf = Callable[[bytes, bytes], str | None]  # (a CSV's header or b"", a record) -> the order it names


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

    def name(self) -> str:
        """The unit's name within its run."""
        if self.kind == "page":
            return f"page {self.key}"
        return f"confirm {self.shard}" if self.kind == "confirm" else "claims"

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


def split_records(
    data: bytes, *, header: bool, lines_per_part: int, order_of: OrderOf | None = None
) -> list[tuple[int, bytes]]:
    """Split a CSV or JSON Lines file on record boundaries (a newline outside double quotes, so a quoted CSV field
    may hold newlines) into parts of about `lines_per_part` records, each CSV part starting with the header. With
    `order_of` (the order a record names, given the header) a part ends only between two orders: the lines of one
    order that follow each other stay in one part, so the order is decided once, with all of them, by one unit.
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
    parts: list[tuple[int, bytes]] = []
    chunk: list[tuple[int, bytes]] = []
    for record in records:
        if len(chunk) >= lines_per_part and not _same_order(head, chunk[-1][1], record[1], order_of):
            parts.append((chunk[0][0], head + b"".join(text for _, text in chunk)))
            chunk = []
        chunk.append(record)
    if chunk:
        parts.append((chunk[0][0], head + b"".join(text for _, text in chunk)))
    return parts or [(1, head)]


def _same_order(head: bytes, last: bytes, following: bytes, order_of: OrderOf | None) -> bool:
    if order_of is None:
        return False
    order = order_of(head, last)
    return order is not None and order == order_of(head, following)


class WorkLedgers(Protocol):
    """What a unit of work needs of the ledger (the composition root makes them)."""

    def sink(self, now: datetime, workers: int = 1) -> LedgerSink: ...
    def confirm(self, *, now: datetime, shards: Sequence[int], workers: int) -> RunCounts: ...
    def claims_sweep(self, *, now: datetime) -> RunCounts: ...


@dataclass
class UnitDone:
    """What one unit did: a page's ingest, a shard's confirmation or the claims sweep."""

    unit: WorkUnit
    counts: RunCounts = field(default_factory=RunCounts)
    page: PageResult | None = None

    @property
    def unsettled(self) -> int:
        return (self.page.reconciled if self.page else self.counts).unsettled

    def as_dict(self) -> dict[str, Any]:
        if self.page is not None:
            return {**self.page.as_dict(), "kind": "page"}
        if self.unit.kind == "confirm":
            return {"kind": "confirm", "shard": self.unit.shard, **self.counts.as_dict()}
        return {"kind": self.unit.kind, **self.counts.as_dict()}


class WorkService:
    """Units of work: made from files and schedules, sent to the queue, and done by a worker."""

    def __init__(
        self, ingest: IngestStep, ledgers: WorkLedgers, archive: ReportArchive, queue: WorkQueue, unit_log: UnitLog
    ) -> None:
        self.ingest = ingest
        self.ledgers = ledgers
        self.archive = archive
        self.queue = queue
        self.unit_log = unit_log

    def hand_on(self, units: Sequence[WorkUnit]) -> int:
        """Send units to the reconcile queue; returns when the queue holds them (the callers move their cursors
        after)."""
        return self.queue.send(unit.model_dump_json() for unit in units)

    # ---- a dropped file, in page-sized parts --------------------------------------------------------------------
    def drop_units(
        self, bucket: str, key: str, *, now: datetime, run_id: str, lines_per_part: int = DROP_PAGE_LINES
    ) -> list[WorkUnit]:
        """The units of a dropped file. A saved API page is one unit as it lies; a CSV or JSON Lines file with more
        lines than a part is split, each part archived under raw/<partner>/drops/<file>/ like a pulled page."""
        partner = drop_partner(key)
        report_format = drop_format(partner, key)
        data = self.archive.get(key, bucket=bucket)
        return self.file_units(
            data,
            report_format,
            partner=partner,
            key=key,
            now=now,
            run_id=run_id,
            parts_prefix=f"raw/{partner}/drops/{key.split('/', 2)[2]}",
            lines_per_part=lines_per_part,
        )

    def file_units(
        self,
        data: bytes,
        report_format: str,
        *,
        partner: str,
        key: str,
        now: datetime,
        run_id: str,
        parts_prefix: str,
        lines_per_part: int = DROP_PAGE_LINES,
    ) -> list[WorkUnit]:
        """A report already archived under `key`: one unit when it is an API page or small, else one per part (an
        order's lines never split between two), each part archived under `parts_prefix`/part-NNNNN."""
        if report_format in API_PARTNERS or data.count(b"\n") <= lines_per_part + 1:
            return [page_unit(partner, key, report_format, now=now, run_id=run_id)]
        parts = split_records(
            data,
            header=report_format == "csv",
            lines_per_part=lines_per_part,
            order_of=self._order_reader(report_format, partner, key),
        )
        suffix = "jsonl" if report_format == "normalized" else "csv"
        units = []
        for number, (first_line, part) in enumerate(parts, start=1):
            part_key = self.archive.put_object(f"{parts_prefix}/part-{number:05d}.{suffix}", part)
            units.append(page_unit(partner, part_key, report_format, now=now, run_id=run_id, first_line=first_line))
        return units

    def _order_reader(self, report_format: str, partner: str, source: str) -> OrderOf:
        """The order a record names, read as the ingest step reads it (a CSV with the partner's column map)."""
        if report_format == "normalized":
            return lambda _head, record: jsonl_order(record)
        options = self.ingest.options_for(report_format, partner)

        def csv_order(head: bytes, record: bytes) -> str | None:
            report = parse_csv(head + record, source=source, partner=partner, options=options)
            return report.lines[0].order_key if report.lines else None

        return csv_order

    # ---- the worker's side --------------------------------------------------------------------------------------
    def run_unit(self, unit: WorkUnit, *, workers: int) -> UnitDone:
        """Do one unit with `workers` threads; raise UnitFailed when any of it is left undone."""
        if unit.kind == "claims":
            done = UnitDone(unit, self.ledgers.claims_sweep(now=unit.now))
        elif unit.kind == "confirm":
            done = UnitDone(unit, self.ledgers.confirm(now=unit.now, shards=[unit.shard or 0], workers=workers))
        else:
            page = self.ingest.page(
                self.archive.get(unit.key or ""),
                unit.format or "",
                partner=unit.partner or "",
                source=unit.key or "",
                sink=self.ledgers.sink(unit.now, workers),
                now=unit.now,
                run_id=unit.run_id,
                pulled_page=True,
            )
            done = UnitDone(unit, page=page)
        if done.unsettled:
            counts = done.page.reconciled if done.page else done.counts
            raise UnitFailed(
                f"{unit.label()}: {counts.orders_failed} order(s) not settled, "
                f"{counts.journal_conflicts} journal conflict(s)"
            )
        return done

    def finish(self, unit: WorkUnit, done: UnitDone, *, receives: int) -> None:
        """Log what the unit did under its run, for the command waiting for the run's units."""
        detail = json.dumps(done.as_dict(), default=str)
        self.unit_log.record_outcome(unit.run_id, UnitOutcome(unit.name(), True, detail, receives))

    def record_failure(self, message_id: str, unit: WorkUnit, reason: str, *, receives: int) -> None:
        """Keep the last reason a message failed, under its id (the dead-letter queue keeps the message itself),
        and under its run."""
        self.unit_log.record(message_id, unit.model_dump_json(), reason, receives=receives)
        self.unit_log.record_outcome(unit.run_id, UnitOutcome(unit.name(), False, reason, receives))

    def outcomes(self, run_id: str) -> list[UnitOutcome]:
        return self.unit_log.outcomes(run_id)

    def handed_on_again(self, unit: WorkUnit) -> None:
        """A dead-lettered unit back on the queue: its run waits for it again (its failure is not its last word)."""
        self.unit_log.record_outcome(unit.run_id, UnitOutcome(unit.name(), False, "handed on again", receives=0))

    def failure_reason(self, message_id: str) -> UnitFailure | None:
        return self.unit_log.reason(message_id)
