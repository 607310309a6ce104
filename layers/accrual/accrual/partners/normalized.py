"""JSON Lines of the normalised order line (README.md, "The formats"): one object per line, amounts as decimal
strings, times ISO-8601 with a zone. Lines end at `\n` only (a `\r` before it is dropped): U+2028, U+2029, U+0085
and the other characters `str.splitlines` also breaks at are valid inside a JSON string. Blank lines are skipped;
every other line is read and either accepted or quarantined (bad JSON, bytes that are not UTF-8 and values nested too
deep included): one line never stops the file."""

from __future__ import annotations

from collections.abc import Mapping

from accrual.partners.report import MAX_JSON_DEPTH, LineRejected, ParsedReport, build_line, loads, nested_path


def parse_jsonl(data: bytes | str, *, source: str, partner: str = "normalized", first_line: int = 1) -> ParsedReport:
    """`first_line` numbers the lines of a part of a longer file (a streamed ingest reads it part by part)."""
    # Undecodable bytes become lone surrogates, so they spoil only the line they are in.
    text = data.decode("utf-8-sig", "surrogateescape") if isinstance(data, bytes) else data
    report = ParsedReport(partner=partner, source=source)
    for number, line in enumerate(json_lines(text), start=first_line):
        if not line.strip():
            continue
        report.take(line, lambda: _map_line(number, line))  # noqa: B023 - called at once, inside the loop
    return report


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text: split at `\n` only, each without its trailing `\r`."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _map_line(number: int, line: str):
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as error:
            raise LineRejected(f"line {number}: not valid UTF-8 (bytes at {error.start}..{error.end})") from None
    try:
        record = loads(line)
    except ValueError as error:
        raise LineRejected(f"line {number}: not valid JSON ({str(error)[:200]})") from None
    if not isinstance(record, Mapping):
        raise LineRejected(f"line {number}: not a JSON object")
    deep = nested_path(record)
    if deep is not None:
        raise LineRejected(f"{deep}: nested deeper than {MAX_JSON_DEPTH}")
    return build_line(record)
