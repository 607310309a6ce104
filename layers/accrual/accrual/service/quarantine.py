"""The quarantine, for the operator: list the lines waiting, and replay them after a fix (a configuration that now lists
a partner or a rate, a CSV column map that now reads the partner's dates).

A replay reads each line again, whole (from the quarantine object in the reports bucket the record names; the record
itself keeps only a prefix), in the format it arrived in, through the partner's reader with today's options (a CSV
line under its file's header and today's column map), screens it against today's configuration and reconciles what
is accepted through the ledger, as an ingest does. A line accepted is marked replayed and leaves the list; a line
refused again stays, with the reason it is refused now. Replaying again changes nothing: marked lines are not
selected, and the ledger is idempotent anyway.

Which format a line is read in follows from where it came from: a line the configuration refused is kept as its
normalised line (and replayed as one); a line of a file under `drops/` follows the drop's naming; any other source is
the archived report, a CSV (archived as `text/csv`), normalised JSON Lines (partner `normalized`) or an API page.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from accrual.domain.models import OrderLine
from accrual.partners import API_PARTNERS, ParsedReport, PartnerOptions
from accrual.partners.report import loads
from accrual.ports import PartnerState, StoredQuarantine
from accrual.service.counts import RunCounts
from accrual.service.drop import DROPS_PREFIX, drop_format
from accrual.service.ingest import IngestStep, LedgerSink

HEADER_BYTES = 1 << 16  # a CSV header is read from the first bytes of its archived file


def quarantine_id(record: StoredQuarantine) -> str:
    """A short, stable id for the operator to name a quarantined line by."""
    named = f"QUARANTINE#{record.partner}\n{record.ref}"
    return hashlib.sha256(named.encode("utf-8", "backslashreplace")).hexdigest()[:12]


def describe(record: StoredQuarantine) -> dict[str, Any]:
    return {
        "id": quarantine_id(record),
        "partner": record.partner,
        "source": record.source,
        "position": record.position,
        "reason": record.reason,
        "at": record.at.isoformat(),
        "raw": record.raw,
        "raw_bytes": record.raw_bytes,
        "replayed_at": record.replayed_at.isoformat() if record.replayed_at else None,
    }


def waiting(
    state: PartnerState,
    *,
    partner: str | None = None,
    since: datetime | None = None,
    ids: Sequence[str] = (),
    replayed: bool = False,
) -> list[StoredQuarantine]:
    """The quarantined lines still waiting (with `replayed`, also those replayed), of one partner or every one,
    quarantined at or after `since`, or named by their ids; oldest first."""
    wanted = set(ids)
    records = [
        record
        for record in state.every_quarantined(partner)
        if (replayed or record.replayed_at is None)
        and (since is None or record.at >= since)
        and (not wanted or quarantine_id(record) in wanted)
    ]
    unknown = wanted - {quarantine_id(record) for record in records}
    if unknown:
        raise LookupError(
            f"no quarantined line waiting with id {', '.join(sorted(unknown))} (see accrual quarantine list)"
        )
    return sorted(records, key=lambda record: (record.at, record.partner, record.ref))


@dataclass(frozen=True)
class _Origin:
    """Where a group of quarantined lines came from, and so how they are read again."""

    partner: str
    source: str
    raw_key: str | None
    report_format: str


class QuarantineReplay:
    def __init__(self, ingest: IngestStep, sink: LedgerSink, now: datetime) -> None:
        self.ingest = ingest
        self.now = now
        self.state = ingest.state
        self.archive = ingest.archive
        self.sink = sink
        self.run_id = uuid.uuid4().hex
        self._objects: dict[str, dict[int, str]] = {}

    def replay(self, records: Iterable[StoredQuarantine], *, dry_run: bool = False) -> dict[str, Any]:
        """Read the lines again and reconcile what is accepted (with `dry_run`, only say what would be)."""
        groups: dict[_Origin, list[StoredQuarantine]] = defaultdict(list)
        for record in records:
            groups[self._origin(record)].append(record)
        counts: Counter[str] = Counter(selected=0, accepted=0, still_quarantined=0)
        reconciled = RunCounts()
        lines: list[dict[str, Any]] = []
        for origin, group in groups.items():
            counts["selected"] += len(group)
            report, by_position = self._read(origin, group)
            refused_now = {item.position: item.reason for item in report.quarantined}
            for position, record in by_position.items():
                reason = refused_now.get(position)
                entry = {**describe(record), "outcome": "accepted" if reason is None else "still_quarantined"}
                if reason is None:
                    counts["accepted"] += 1
                else:
                    counts["still_quarantined"] += 1
                    entry["reason_now"] = reason
                    if not dry_run:
                        self.state.still_quarantined(record, reason)
                lines.append(entry)
            if report.lines and not dry_run:
                done = self.sink(report.lines)
                reconciled.merge(done)
                if not done.orders_failed:  # else left waiting: the next replay tries again
                    for position, record in by_position.items():
                        if position not in refused_now:
                            self.state.replayed(record, run_id=self.run_id, now=self.now)
        return {
            "run_id": self.run_id,
            "dry_run": dry_run,
            **counts,
            "reconciled": reconciled.as_dict(),
            "lines": lines,
        }

    # ---- reading a group again -------------------------------------------------------------------------------------
    def _read(self, origin: _Origin, group: list[StoredQuarantine]) -> tuple[ParsedReport, dict[int, StoredQuarantine]]:
        """The group's lines read again as one report: position n of the report is the group's n-th record."""
        raws = [self._raw(record) for record in group]
        options = self.ingest.options_for(origin.report_format, origin.partner) or PartnerOptions()
        report = ParsedReport(partner=origin.partner, source=origin.source)
        if origin.report_format == "csv":
            from accrual.partners.csv_drop import parse_csv

            header = self._header(origin.source, options.encoding)
            report = parse_csv(
                header + "".join(raw + "\n" for raw in raws),
                source=origin.source,
                partner=origin.partner,
                options=options,
            )
        elif origin.report_format == "normalized":
            from accrual.partners.normalized import parse_jsonl

            report = parse_jsonl("".join(raw + "\n" for raw in raws), source=origin.source, partner=origin.partner)
        elif origin.report_format == "aliexpress":
            from accrual.partners.aliexpress import map_order

            for raw in raws:
                value = _json(raw)
                report.take(value, partial(map_order, value, options))
        else:  # admitad: an action with the one position the line was built from
            from accrual.partners.admitad import POSITION_KEY, map_position

            for raw in raws:
                value = _json(raw)
                positions = value.get("positions") if isinstance(value, dict) else None
                position = positions[0] if isinstance(positions, list) and positions else None
                # the position's part of its line id as first read (its place among the action's positions)
                key = value.get(POSITION_KEY, "") if isinstance(value, dict) else ""
                key = key if key is None or isinstance(key, str) else ""
                report.take(
                    value, partial(map_position, value, position, 1 if position is not None else 0, options, key)
                )
        self.ingest.screen(report, self.sink)
        return report, dict(enumerate(group, start=1))

    def _origin(self, record: StoredQuarantine) -> _Origin:
        if _is_normalised_line(record.raw):
            report_format = "normalized"
        elif record.source.startswith(DROPS_PREFIX):
            report_format = drop_format(record.partner, record.source)
        elif record.partner == "normalized":
            report_format = "normalized"
        elif self.archive.content_type(record.source) == "text/csv" or record.partner not in API_PARTNERS:
            report_format = "csv"
        else:
            report_format = record.partner
        return _Origin(record.partner, record.source, record.raw_key, report_format)

    def _header(self, source: str, encoding: str) -> str:
        """The CSV header row of the archived file the lines came from, in the file's encoding (its map's)."""
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        head = self.archive.head(source, HEADER_BYTES)
        first = head.decode(codec, "replace").lstrip("\ufeff").split("\n")[0].rstrip("\r")
        if not first.strip():
            raise LookupError(f"{source}: the archived file has no header row")
        return first + "\n"

    def _raw(self, record: StoredQuarantine) -> str:
        """The whole raw line: from the quarantine object when the record's prefix is not all of it."""
        if record.raw_key is None or (record.raw_bytes is not None and len(record.raw.encode()) >= record.raw_bytes):
            return record.raw
        if record.raw_key not in self._objects:
            document = json.loads(self.archive.get(record.raw_key))
            self._objects[record.raw_key] = {int(line["position"]): line["raw"] for line in document["lines"]}
        return self._objects[record.raw_key].get(record.position, record.raw)


def _json(raw: str) -> Any:
    try:
        return loads(raw)
    except ValueError:
        return raw  # the reader says why it is not a record


def _is_normalised_line(raw: str) -> bool:
    """A line the configuration refused is kept as its whole normalised line (every field of OrderLine)."""
    if not raw.startswith("{"):
        return False
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and set(OrderLine.model_fields) <= set(value)


__all__ = ["QuarantineReplay", "describe", "quarantine_id", "waiting"]
