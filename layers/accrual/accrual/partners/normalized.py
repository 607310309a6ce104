"""JSON Lines of the normalised order line (DOMAIN.md, "The two formats"): one object per line, amounts as decimal
strings, times ISO-8601 with a zone. Blank lines are skipped; every other line is read and either accepted or
quarantined (bad JSON included)."""
from __future__ import annotations

from typing import Mapping

from accrual.partners.report import LineRejected, ParsedReport, build_line, loads


def parse_jsonl(data: bytes | str, *, source: str, partner: str = "normalized") -> ParsedReport:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    report = ParsedReport(partner=partner, source=source)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except ValueError as error:
            report.reject(f"line {number}: not valid JSON ({error})", line)
            continue
        try:
            if not isinstance(record, Mapping):
                raise LineRejected(f"line {number}: not a JSON object")
            report.accept(build_line(record))
        except LineRejected as rejected:
            report.reject(str(rejected), line)
    return report
