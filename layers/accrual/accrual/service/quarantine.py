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

from accrual.adapters.partner_state import PartnerState, QuarantineRecord, quarantine_pk
from accrual.adapters.report_archive import ReportArchive
from accrual.domain.models import OrderLine
from accrual.partners import API_PARTNERS, ParsedReport, PartnerOptions
from accrual.partners.report import loads
from accrual.settings import Settings

HEADER_BYTES = 1 << 16  # a CSV header is read from the first bytes of its archived file


def quarantine_id(record: QuarantineRecord) -> str:
    """A short, stable id for the operator to name a quarantined line by."""
    return hashlib.sha256(f"{record.pk}\n{record.sk}".encode("utf-8", "backslashreplace")).hexdigest()[:12]


def describe(record: QuarantineRecord) -> dict[str, Any]:
    return {
        "id": quarantine_id(record),
        "partner": record.partner,
        "source": record.source,
        "position": int(record.position),
        "reason": record.reason,
        "at": record.at.isoformat(),
        "raw": record.raw,
        "raw_bytes": None if record.raw_bytes is None else int(record.raw_bytes),
        "replayed_at": record.replayed_at.isoformat() if record.replayed_at else None,
    }


def waiting(
    settings: Settings,
    *,
    partner: str | None = None,
    since: datetime | None = None,
    ids: Sequence[str] = (),
    replayed: bool = False,
) -> list[QuarantineRecord]:
    """The quarantined lines still waiting (with `replayed`, also those replayed), of one partner or every one,
    quarantined at or after `since`, or named by their ids; oldest first."""
    wanted = set(ids)
    records = [
        record
        for record in PartnerState(settings).every_quarantined(partner)
        if (replayed or record.replayed_at is None)
        and (since is None or record.at >= since)
        and (not wanted or quarantine_id(record) in wanted)
    ]
    unknown = wanted - {quarantine_id(record) for record in records}
    if unknown:
        raise LookupError(
            f"no quarantined line waiting with id {', '.join(sorted(unknown))} (see accrual quarantine list)"
        )
    return sorted(records, key=lambda record: (record.at, record.pk, record.sk))


@dataclass(frozen=True)
class _Origin:
    """Where a group of quarantined lines came from, and so how they are read again."""

    partner: str
    source: str
    raw_key: str | None
    report_format: str


class QuarantineReplay:
    def __init__(self, settings: Settings, now: datetime, *, reconcile=None) -> None:
        from accrual.service.ingest import ledger_reconcile

        self.settings = settings
        self.now = now
        self.state = PartnerState(settings)
        self.archive = ReportArchive(settings)
        self.reconcile = reconcile or ledger_reconcile(settings, now)
        self.run_id = uuid.uuid4().hex
        self._objects: dict[str, dict[int, str]] = {}

    def replay(self, records: Iterable[QuarantineRecord], *, dry_run: bool = False) -> dict[str, Any]:
        """Read the lines again and reconcile what is accepted (with `dry_run`, only say what would be)."""
        groups: dict[_Origin, list[QuarantineRecord]] = defaultdict(list)
        for record in records:
            groups[self._origin(record)].append(record)
        counts: Counter[str] = Counter(selected=0, accepted=0, still_quarantined=0)
        reconciled: Counter[str] = Counter()
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
                done = self.reconcile(report.lines)
                reconciled.update(done)
                if not done.get("orders_failed"):  # else left waiting: the next replay tries again
                    for position, record in by_position.items():
                        if position not in refused_now:
                            self.state.replayed(record, run_id=self.run_id, now=self.now)
        return {
            "run_id": self.run_id,
            "dry_run": dry_run,
            **counts,
            "reconciled": dict(reconciled),
            "lines": lines,
        }

    # ---- reading a group again -------------------------------------------------------------------------------------
    def _read(self, origin: _Origin, group: list[QuarantineRecord]) -> tuple[ParsedReport, dict[int, QuarantineRecord]]:
        """The group's lines read again as one report: position n of the report is the group's n-th record."""
        from accrual.service.ingest import options_for, screen_report

        raws = [self._raw(record) for record in group]
        options = options_for(origin.report_format, origin.partner, self.settings) or PartnerOptions()
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
        screen_report(report, self.reconcile)
        return report, dict(enumerate(group, start=1))

    def _origin(self, record: QuarantineRecord) -> _Origin:
        from accrual.service.drop import DROPS_PREFIX, drop_format

        if _is_normalised_line(record.raw):
            report_format = "normalized"
        elif record.source.startswith(DROPS_PREFIX):
            report_format = drop_format(record.partner, record.source)
        elif record.partner == "normalized":
            report_format = "normalized"
        elif self._content_type(record.source) == "text/csv" or record.partner not in API_PARTNERS:
            report_format = "csv"
        else:
            report_format = record.partner
        return _Origin(record.partner, record.source, record.raw_key, report_format)

    def _content_type(self, key: str) -> str:
        return str(self.settings.client("s3").head_object(Bucket=self.archive.bucket, Key=key).get("ContentType", ""))

    def _header(self, source: str, encoding: str) -> str:
        """The CSV header row of the archived file the lines came from, in the file's encoding (its map's)."""
        answer = self.settings.client("s3").get_object(
            Bucket=self.archive.bucket, Key=source, Range=f"bytes=0-{HEADER_BYTES - 1}"
        )
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        first = answer["Body"].read().decode(codec, "replace").lstrip("\ufeff").split("\n")[0].rstrip("\r")
        if not first.strip():
            raise LookupError(f"{source}: the archived file has no header row")
        return first + "\n"

    def _raw(self, record: QuarantineRecord) -> str:
        """The whole raw line: from the quarantine object when the record's prefix is not all of it."""
        if record.raw_key is None or (record.raw_bytes is not None and len(record.raw.encode()) >= record.raw_bytes):
            return record.raw
        if record.raw_key not in self._objects:
            document = json.loads(self.archive.get(record.raw_key))
            self._objects[record.raw_key] = {int(line["position"]): line["raw"] for line in document["lines"]}
        return self._objects[record.raw_key].get(int(record.position), record.raw)


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


__all__ = ["QuarantineReplay", "describe", "quarantine_id", "quarantine_pk", "waiting"]
