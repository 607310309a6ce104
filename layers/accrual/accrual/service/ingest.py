"""The one ingest step: a report's bytes (an API response page, a CSV file or part, normalised JSON Lines) in, a
`PageResult` out. The pull runs it per page, `accrual ingest FILE` and a dropped file per file or part, the streamed
ingest per part; so a saved page and a live one give the same lines, and read = accepted + quarantined holds for every
way in.

The step reads the report through the partner's adapter, screens the accepted lines against the accrual
configuration (a line it refuses is quarantined like one that could not be read), keeps the quarantined lines (whole
in the archive, bounded in the partner state) and hands the rest to the sink: the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from accrual.domain.models import OrderLine, order_key
from accrual.partners import (
    API_PARTNERS,
    ParsedReport,
    PartnerOptions,
    QuarantinedLine,
    ReportFormatError,
    read_page,
    read_report,
)
from accrual.partners.csv_drop import parse_csv
from accrual.partners.normalized import parse_jsonl
from accrual.partners.report import top_reasons
from accrual.ports import PartnerDirectory, PartnerState, ReportArchive
from accrual.service.counts import RunCounts


class LedgerSink(Protocol):
    """The ledger as a report's lines reach it: screening against the configuration, then reconciling."""

    def screen(self, lines: Sequence[OrderLine]) -> tuple[list[OrderLine], list[tuple[OrderLine, str]]]: ...
    def __call__(self, lines: Sequence[OrderLine]) -> RunCounts: ...
    def advance(self, consumed_bytes: int) -> None:
        """So many more bytes of a streamed file were read (a progress bar's measure; nothing else needs it)."""


@dataclass
class PageResult:
    """What one report (or part) did: lines read = accepted + quarantined, and what the ledger made of them."""

    partner: str
    source: str
    format: str
    run_id: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    pages_quarantined: int = 0  # a pulled page of an unexpected shape, quarantined whole
    quarantine_reasons: list[str] = field(default_factory=list)
    top_reasons: list[dict[str, Any]] = field(default_factory=list)  # the most frequent kinds of reason
    column_map: str | None = None  # a CSV: where its partner's column map lives (what to fix when it is misread)
    reconciled: RunCounts = field(default_factory=RunCounts)

    def add(self, report: ParsedReport) -> None:
        self.read += report.read
        self.accepted += len(report.lines)
        self.quarantined += len(report.quarantined)
        self.pages_quarantined += 1 if report.page_refused else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "source": self.source,
            "format": self.format,
            "run_id": self.run_id,
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            **({"pages_quarantined": self.pages_quarantined} if self.pages_quarantined else {}),
            "quarantine_reasons": list(self.quarantine_reasons),
            "top_reasons": list(self.top_reasons),
            **({"column_map": self.column_map} if self.column_map else {}),
            "reconciled": self.reconciled.as_dict(),
        }


class IngestStep:
    def __init__(self, archive: ReportArchive, state: PartnerState, partners: PartnerDirectory) -> None:
        self.archive = archive
        self.state = state
        self.partners = partners

    def options_for(self, report_format: str, partner: str) -> PartnerOptions | None:
        """Parsing settings are configuration, read per partner; the normalised format needs none."""
        if report_format == "csv":
            return replace(self.partners.drop_options(partner), partner=partner)
        if report_format in API_PARTNERS:
            return self.partners.options(partner)
        return None

    def read(
        self,
        data: bytes,
        report_format: str,
        *,
        partner: str,
        source: str,
        sink: LedgerSink,
        options: PartnerOptions | None = None,
        first_line: int | None = None,
        pulled_page: bool = False,
    ) -> ParsedReport:
        """Read and screen a report; `first_line` numbers the lines of a part of a longer CSV or JSON Lines file. A
        pulled API page (`pulled_page`) of an unexpected shape is quarantined whole rather than refused, so that it
        cannot stop the partner's feed."""
        options = options if options is not None else self.options_for(report_format, partner)
        try:
            if first_line is not None and report_format == "csv":
                report = parse_csv(data, source=source, partner=partner, options=options, first_line=first_line)
            elif first_line is not None and report_format == "normalized":
                text = data.decode("utf-8-sig" if first_line == 1 else "utf-8", "surrogateescape")
                report = parse_jsonl(text, source=source, partner=partner, first_line=first_line)
            elif pulled_page and report_format in API_PARTNERS:
                report = read_page(data, report_format, source=source, options=options)
            else:
                report = read_report(data, report_format, source=source, options=options)
        except ReportFormatError as error:
            raise self.map_hint(error, report_format, partner) from None
        self.screen(report, sink)
        return report

    def screen(self, report: ParsedReport, sink: LedgerSink) -> None:
        """Quarantine the accepted lines the configuration refuses; read = accepted + quarantined still holds."""
        if report.lines:
            _, refused = sink.screen(report.lines)
            if refused:
                report.quarantine_accepted(refused)

    def quarantined(self, result: PageResult, lines: Sequence[QuarantinedLine]) -> None:
        """The result's account of its quarantined lines, and where a CSV's column map lives."""
        result.quarantine_reasons = [f"{line.position}: {line.reason}" for line in lines]
        result.top_reasons = top_reasons(lines)
        if result.format == "csv":
            result.column_map = self.partners.column_map_name(result.partner)

    def map_hint(self, error: ReportFormatError, report_format: str, partner: str) -> ReportFormatError:
        """A CSV that its map does not describe: the error says where the map lives and how to set it."""
        if report_format != "csv":
            return error
        name = self.partners.column_map_name(partner)
        return ReportFormatError(
            f"{error}. The column map of {partner} is the SSM parameter {name}; set it with `aws ssm put-parameter"
            f" --name {name} --type String --overwrite --value file://columns.json` (its fields: docs/formats.md,"
            ' "CSV column maps")'
        )

    def keep_quarantined(
        self, source: str, lines: Sequence[QuarantinedLine], *, partner: str, run_id: str, now: datetime
    ) -> None:
        """The whole raw lines go to the archive first: the quarantine records keep a bounded prefix and name it."""
        if lines:
            raw_key = self.archive.put_quarantine(source, lines, run_id=run_id, partner=partner)
            self.state.quarantine(partner, source, lines, run_id=run_id, now=now, raw_key=raw_key)

    def page(
        self,
        data: bytes,
        report_format: str,
        *,
        partner: str,
        source: str,
        sink: LedgerSink,
        now: datetime,
        run_id: str,
        options: PartnerOptions | None = None,
        first_line: int | None = None,
        pulled_page: bool = False,
    ) -> PageResult:
        """Ingest one report or part: read, screen, quarantine, reconcile."""
        report = self.read(
            data,
            report_format,
            partner=partner,
            source=source,
            sink=sink,
            options=options,
            first_line=first_line,
            pulled_page=pulled_page,
        )
        self.keep_quarantined(source, report.quarantined, partner=partner, run_id=run_id, now=now)
        result = PageResult(partner, source, report_format, run_id)
        result.add(report)
        self.quarantined(result, report.quarantined)
        if report.lines:
            result.reconciled = sink(report.lines)
        return result


def jsonl_order(record: bytes) -> str | None:
    """The order a JSON Lines record names, when it is readable enough to say; None otherwise (a part may end
    there)."""
    try:
        value = json.loads(record)
        return order_key(str(value["partner"]), str(value["order_id"]))
    except (ValueError, KeyError, TypeError):
        return None


# A file more than this share of whose lines are quarantined is mostly unread: likely a column map, a date format or
# a number format that does not describe it (the operator's ingest exits non-zero and names the top reasons).
MOSTLY_QUARANTINED = 0.5


def mostly_quarantined(read: int, quarantined: int, share: float = MOSTLY_QUARANTINED) -> bool:
    """More than `share` of the report's `read` lines were quarantined."""
    return read > 0 and quarantined > share * read
