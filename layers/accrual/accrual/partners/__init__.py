"""Partner reports in, normalised order lines out. One adapter per partner; nothing partner-specific passes it.

`read_report(data, partner, source=...)` is the one entry point for a saved report: an AliExpress or Admitad API
response page exactly as the API returned it (parsed by the same code the API clients use), a CSV file, or JSON
Lines of the normalised format. A line that cannot be normalised is quarantined with its reason and raw text; the
rest of the report goes on, and `read == len(lines) + len(quarantined)` always holds.
"""

from __future__ import annotations

from accrual.partners.options import PartnerOptions, PartnerOptionsError, options_from_json
from accrual.partners.report import ParsedReport, QuarantinedLine, ReportFormatError

PARTNERS = ("aliexpress", "admitad", "csv", "normalized")
API_PARTNERS = ("aliexpress", "admitad")


def read_report(data: bytes | str, partner: str, *, source: str, options: PartnerOptions | None = None) -> ParsedReport:
    """Normalise one report. `partner` names the format: `aliexpress` and `admitad` take one API response page,
    `csv` a CSV file (its lines carry `options.partner`, default `csv`), `normalized` JSON Lines. A report that is
    unreadable as a whole (not JSON, not the partner's shape, a CSV without its required columns) raises
    ReportFormatError; a gateway error answer saved as a page raises PartnerApiError."""
    options = options or PartnerOptions()
    if partner == "aliexpress":
        from accrual.partners import aliexpress

        return aliexpress.parse_page(data, source=source, options=options)[0]
    if partner == "admitad":
        from accrual.partners import admitad

        return admitad.parse_page(data, source=source, options=options)[0]
    if partner == "csv":
        from accrual.partners import csv_drop

        return csv_drop.parse_csv(data, source=source, partner=options.partner or "csv", options=options)
    if partner == "normalized":
        from accrual.partners import normalized

        return normalized.parse_jsonl(data, source=source)
    raise ValueError(f"unknown partner format {partner!r}; expected one of {', '.join(PARTNERS)}")


def read_page(data: bytes | str, partner: str, *, source: str, options: PartnerOptions | None = None) -> ParsedReport:
    """One API page as a pull reads it: like `read_report`, except that a page of an unexpected shape is quarantined
    whole (`page_refused` says why) instead of raising, so that no page a partner serves can stop its feed."""
    try:
        return read_report(data, partner, source=source, options=options)
    except ReportFormatError as error:
        return ParsedReport.refused_page(partner, source, data, str(error))


__all__ = [
    "API_PARTNERS",
    "PARTNERS",
    "ParsedReport",
    "PartnerOptions",
    "PartnerOptionsError",
    "QuarantinedLine",
    "ReportFormatError",
    "options_from_json",
    "read_page",
    "read_report",
]
