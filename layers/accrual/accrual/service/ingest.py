"""Ingesting one saved report (an API response page, a CSV file, normalised JSON Lines): archive what the partner
said, normalise it through the partner's adapter, quarantine what cannot be normalised, reconcile the rest.

The same path serves `accrual ingest FILE` and a file dropped on S3, and the pull does the same per page; so a saved
page and a live one give the same lines, and counts read = accepted + quarantined hold for every way in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from accrual.adapters.partner_config import drop_options, parameter_name, partner_options
from accrual.adapters.partner_state import PartnerState
from accrual.adapters.report_archive import ReportArchive
from accrual.domain.models import OrderLine
from accrual.partners import API_PARTNERS, ParsedReport, PartnerOptions, ReportFormatError, read_page, read_report
from accrual.partners.report import top_reasons
from accrual.settings import Settings

Reconcile = Callable[[Sequence[OrderLine]], Mapping[str, int]]


class LedgerSink:
    """The ledger as a report's lines reach it: first screened against the accrual configuration (a line it refuses
    is quarantined like one that could not be read), then reconciled as of `now` by `workers` threads; then the
    claims naming the lines' orders are matched (the claims step runs after the ledger, on what it wrote)."""

    def __init__(self, settings: Settings, now: datetime, workers: int = 1) -> None:
        from accrual.service.claims import claim_service
        from accrual.service.fanout import ConcurrentLedger

        self.ledger = ConcurrentLedger(settings, workers=workers)
        self.claims = claim_service(settings)
        self.now = now

    def screen(self, lines: Sequence[OrderLine]) -> tuple[list[OrderLine], list[tuple[OrderLine, str]]]:
        return self.ledger.screen(lines)

    def __call__(self, lines: Sequence[OrderLine]) -> Mapping[str, int]:
        counts = dict(self.ledger.reconcile(lines, now=self.now))
        for name, value in self.claims.after_reconcile(lines, now=self.now).items():
            counts[name] = counts.get(name, 0) + value
        return counts


def ledger_reconcile(settings: Settings, now: datetime, workers: int = 1) -> LedgerSink:
    return LedgerSink(settings, now, workers)


def screen_report(report: ParsedReport, reconcile: Reconcile) -> None:
    """Quarantine the accepted lines the configuration refuses (a reconcile that is not the ledger's screens
    nothing). `read == accepted + quarantined` still holds."""
    screen = getattr(reconcile, "screen", None)
    if screen is None or not report.lines:
        return
    _, refused = screen(report.lines)
    if refused:
        report.quarantine_accepted(refused)


def options_for(report_format: str, partner: str, settings: Settings) -> PartnerOptions | None:
    """Parsing settings are configuration (SSM), read per partner; the normalised format needs none."""
    if report_format == "csv":
        return replace(drop_options(settings, partner), partner=partner)
    if report_format in API_PARTNERS:
        return partner_options(settings, partner)
    return None


def ingest_report(
    data: bytes,
    report_format: str,
    *,
    partner: str,
    source: str,
    settings: Settings,
    now: datetime,
    reconcile: Reconcile | None = None,
    run_id: str | None = None,
    archive: ReportArchive | None = None,
    pulled_page: bool = False,
) -> dict[str, Any]:
    """With `pulled_page` (a page a pull handed on) a page of an unexpected shape is quarantined whole rather than
    refused, so that it cannot stop the partner's feed."""
    run_id = run_id or uuid.uuid4().hex
    reconcile = reconcile or ledger_reconcile(settings, now)
    archive = archive or ReportArchive(settings)
    read = read_page if pulled_page and report_format in API_PARTNERS else read_report
    try:
        report = read(data, report_format, source=source, options=options_for(report_format, partner, settings))
    except ReportFormatError as error:
        raise with_map_hint(error, report_format, partner, settings) from None
    screen_report(report, reconcile)
    if report.quarantined:
        # The whole raw lines go to S3 first: the quarantine records keep a bounded prefix and name that object.
        raw_key = archive.put_quarantine(source, report.quarantined, run_id=run_id, partner=partner)
        PartnerState(settings).quarantine(partner, source, report.quarantined, run_id=run_id, now=now, raw_key=raw_key)
    reconciled = dict(reconcile(report.lines)) if report.lines else {}
    return {
        "partner": partner,
        "source": source,
        "format": report_format,
        "run_id": run_id,
        **report.counts,
        **({"pages_quarantined": 1} if report.page_refused else {}),
        "quarantine_reasons": [f"{line.position}: {line.reason}" for line in report.quarantined],
        "top_reasons": top_reasons(report.quarantined),
        **map_of(report_format, partner, settings),
        "reconciled": reconciled,
    }


# A file more than this share of whose lines are quarantined is mostly unread: likely a column map, a date format or
# a number format that does not describe it (the operator's ingest exits non-zero and names the top reasons).
MOSTLY_QUARANTINED = 0.5


def mostly_quarantined(result: Mapping[str, Any], share: float = MOSTLY_QUARANTINED) -> bool:
    """More than `share` of the report's lines were quarantined."""
    read = int(result.get("read") or 0)
    return read > 0 and int(result.get("quarantined") or 0) > share * read


def column_map_parameter(settings: Settings, partner: str) -> str:
    return parameter_name(settings, partner, "columns")


def map_of(report_format: str, partner: str, settings: Settings) -> dict[str, str]:
    """Where a CSV partner's column map lives (a result names it, so a badly read file says what to fix)."""
    return {"column_map": column_map_parameter(settings, partner)} if report_format == "csv" else {}


def with_map_hint(error: ReportFormatError, report_format: str, partner: str, settings: Settings) -> ReportFormatError:
    """A CSV that its map does not describe: the error says where the map lives and how to set it."""
    if report_format != "csv":
        return error
    name = column_map_parameter(settings, partner)
    return ReportFormatError(
        f"{error}. The column map of {partner} is the SSM parameter {name}; set it with `aws ssm put-parameter"
        f" --name {name} --type String --overwrite --value file://columns.json` (its fields: docs/formats.md,"
        ' "CSV column maps")'
    )
