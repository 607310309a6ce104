"""What every partner adapter returns, and the small helpers they share to turn one raw line into an `OrderLine` or a
quarantine record whose reason names the field and the value.

Pure code: no HTTP, no AWS. The adapters and the API clients both parse through here, so a saved API page and a live
one go through exactly the same mapping.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from accrual.domain.models import (
    DECIMAL_TEXT,
    EARLIEST_YEAR,
    LATEST_YEAR,
    MAX_ID_BYTES,
    MAX_REASON_CHARS,
    MAX_SHOWN_CHARS,
    OrderLine,
    brief,
)
from accrual.partners.json_text import MAX_JSON_DEPTH, GivenNumber, loads, nested_path  # noqa: F401 - re-exported
from accrual.partners.options import PartnerOptions, PartnerOptionsError, options_from_json  # noqa: F401 - re-exported


@dataclass
class QuarantinedLine:
    """A line that could not be normalised. `position` is 1-based in the report's reading order; `reason` names the
    field and the value; `raw` is the line as the partner sent it (JSON text or the CSV row)."""

    position: int
    reason: str
    raw: str


@dataclass
class ParsedReport:
    """One report (API page, CSV file, JSON Lines file) after normalisation. Invariant:
    `read == len(lines) + len(quarantined)`. For Admitad one read line is one position of an action (an action
    without positions is one line), so the counts are in order lines for every partner."""

    partner: str
    source: str
    read: int = 0
    lines: list[OrderLine] = field(default_factory=list)
    quarantined: list[QuarantinedLine] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # the reading position of each accepted line
    page_refused: str | None = None  # why the whole page was quarantined (an API page of an unexpected shape)

    def accept(self, line: OrderLine) -> None:
        self.read += 1
        self.lines.append(line)
        self.positions.append(self.read)

    def quarantine_accepted(self, refused: list[tuple[OrderLine, str]]) -> None:
        """Move accepted lines that a later check refused (the configuration's screening) to the quarantine, at
        their reading positions, with the normalised line as their raw text."""
        reasons = {id(line): reason for line, reason in refused}
        kept, kept_positions = [], []
        for line, position in zip(self.lines, self.positions, strict=True):
            if id(line) in reasons:
                self.quarantined.append(
                    QuarantinedLine(
                        position=position, reason=bounded_reason(reasons[id(line)]), raw=line.model_dump_json()
                    )
                )
            else:
                kept.append(line)
                kept_positions.append(position)
        self.lines, self.positions = kept, kept_positions
        self.quarantined.sort(key=lambda item: item.position)

    def reject(self, reason: str, raw: Any) -> None:
        self.read += 1
        self.quarantined.append(QuarantinedLine(position=self.read, reason=bounded_reason(reason), raw=raw_text(raw)))

    def take(self, raw: Any, build: Callable[[], OrderLine]) -> None:
        """Map one raw line with `build`: accept the line, or quarantine it with its reason. Total on purpose: whatever
        goes wrong while mapping one line (a bug or a value nobody foresaw) quarantines that line only, and the
        report goes on (docs/rules.md: "Nothing a partner sends can stop a feed")."""
        try:
            deep = nested_path(raw)
            if deep is not None:
                raise LineRejected(f"{deep}: nested deeper than {MAX_JSON_DEPTH}")
            line = build()
        except LineRejected as rejected:
            self.reject(str(rejected), raw)
        except Exception as error:  # noqa: BLE001 - see the docstring
            self.reject(unexpected(error), raw)
        else:
            self.accept(line)

    @classmethod
    def refused_page(cls, partner: str, source: str, raw: bytes | str, reason: str) -> ParsedReport:
        """A page that could not be read as a whole: one quarantined record holding all of it."""
        report = cls(partner=partner, source=source, page_refused=bounded_reason(reason))
        text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
        report.reject(f"page of an unexpected shape, quarantined whole: {reason}", text)
        return report

    @property
    def counts(self) -> dict[str, int]:
        return {"read": self.read, "accepted": len(self.lines), "quarantined": len(self.quarantined)}


# What varies from line to line in a reason: the quoted value after `field=`, a line number, a position's index.
_REASON_VALUE = re.compile(r"=(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^:;]*?)(?=: )")
_REASON_LINE = re.compile(r"\bline [0-9]+\b")
_REASON_INDEX = re.compile(r"\[[0-9]+\]")


def reason_kind(reason: str) -> str:
    """A reason without what varies from line to line (the value quoted, the line number, the position's index), so
    that the reasons of a report can be counted by kind: `ordered_at='28.11.2026 12:00': not a time` is
    `ordered_at=…: not a time`."""
    kind = _REASON_VALUE.sub("=…", reason)
    kind = _REASON_LINE.sub("line …", kind)
    return _REASON_INDEX.sub("[…]", kind)[:200]


def top_reasons(quarantined: Sequence[QuarantinedLine], limit: int = 3) -> list[dict[str, Any]]:
    """The most frequent kinds of reason of a report's quarantined lines, with how many lines each and one example."""
    counted = Counter(reason_kind(line.reason) for line in quarantined)
    examples: dict[str, str] = {}
    for line in quarantined:
        examples.setdefault(reason_kind(line.reason), line.reason)
    return [{"reason": kind, "lines": lines, "example": examples[kind]} for kind, lines in counted.most_common(limit)]


class LineRejected(Exception):
    """A line that cannot be normalised; the message is the quarantine reason."""


class ReportFormatError(ValueError):
    """The report as a whole is unreadable (not JSON, not the partner's shape): nothing in it can be trusted."""


def bounded_reason(reason: str) -> str:
    """A reason as stored: never empty, at most MAX_REASON_CHARS, valid UTF-8 (undecodable bytes escaped)."""
    reason = (reason or "rejected").encode("utf-8", "backslashreplace").decode("utf-8")
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 3] + "..."


def unexpected(error: BaseException) -> str:
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 - the reason must still be written
        message = ""
    return f"unexpected {type(error).__name__}: {brief(message)}"


def raw_text(raw: Any) -> str:
    """The line as the partner sent it: its text, or its JSON. Never raises: a value that cannot be written as JSON
    is kept as its repr."""
    if isinstance(raw, str):
        return raw
    try:
        return json.dumps(raw, default=str, ensure_ascii=False, sort_keys=True)
    except Exception:  # noqa: BLE001 - mixed key types, a structure too deep
        try:
            return repr(raw)
        except Exception:  # noqa: BLE001
            return f"<a {type(raw).__name__} that cannot be shown>"


def present(record: Mapping[str, Any], name: str, *, required: bool) -> Any:
    """The field's value, or None when it is absent or blank (refused as missing when it is required)."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise LineRejected(f"{name}: missing")
        return None
    return value


def require(record: Mapping[str, Any], name: str) -> Any:
    return present(record, name, required=True)


def identifier(record: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """An id that may arrive as a JSON number or a string: kept as its text."""
    value = present(record, name, required=required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise LineRejected(f"{name}={show(value)}: not an id (a string or an integer)")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise LineRejected(f"{name}={show(value)}: not an integer id")
        if value.adjusted() >= MAX_ID_BYTES:  # before int(): 1E+999999 is an integer of a million digits
            raise LineRejected(f"{name}={show(value)}: an id of {value.adjusted() + 1} digits; at most {MAX_ID_BYTES}")
        value = int(value)
    if isinstance(value, int) and value.bit_length() > 4 * MAX_ID_BYTES:  # str() of a huge int raises
        raise LineRejected(f"{name}={show(value)}: an id longer than {MAX_ID_BYTES} digits")
    return str(value).strip()


# Minor units are ASCII digits (str.isdigit also accepts "²", which int() then refuses), 18 at most: more than any
# amount, and far below the 4,300 digits int() refuses.
_MINOR_UNITS = re.compile(r"-?[0-9]{1,18}")
_MAX_MINOR_UNITS = 10**18


def minor_units_amount(
    record: Mapping[str, Any], name: str, minor_units: int, *, required: bool = True
) -> Decimal | None:
    """An integer count of minor units (cents by default) as a Decimal amount."""
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise LineRejected(f"{name}: missing")
        return None
    if isinstance(value, bool):
        raise LineRejected(f"{name}={show(value)}: not an integer amount in minor units")
    if isinstance(value, str):
        text = value.strip()
        if not _MINOR_UNITS.fullmatch(text):
            raise LineRejected(f"{name}={show(value)}: not an integer amount in minor units")
        value = int(text)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise LineRejected(f"{name}={show(value)}: not an integer amount in minor units")
    if not isinstance(value, (int, Decimal)):
        raise LineRejected(f"{name}={show(value)}: not an integer amount in minor units")
    if value < 0:
        raise LineRejected(f"{name}={show(value)}: negative amount")
    if value > _MAX_MINOR_UNITS:
        raise LineRejected(f"{name}={show(value)}: not a plausible amount in minor units")
    return Decimal(value) / Decimal(minor_units)


# A decimal amount as text is at most this long: longer than any real amount.
_MAX_DECIMAL_TEXT = 64


def separators(options: PartnerOptions) -> dict[str, Any]:
    """The partner's number format, as `decimal_amount` takes it."""
    return {"decimal": options.decimal_separator, "thousands": options.thousands_separator}


def _amount_text(decimal: str, thousands: str | None) -> re.Pattern[str]:
    """Digits with `decimal` before the fraction, and, with `thousands`, the integer part either ungrouped or in
    correct groups of three (`1,234` and `1234`, never `1,23` or `12,34,567`). No exponent: it is not how a
    partner writes a sum in its own format."""
    point = re.escape(decimal)
    whole = "[0-9]+"
    if thousands is not None:
        whole = f"(?:[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}})+|[0-9]+)"
    return re.compile(f"[+-]?(?:{whole}(?:{point}[0-9]*)?|{point}[0-9]+)")


def format_words(decimal: str, thousands: str | None) -> str:
    grouping = f"thousands separator {thousands!r}" if thousands is not None else "no thousands separator"
    return f"decimal separator {decimal!r} and {grouping}"


def decimal_amount(
    record: Mapping[str, Any], name: str, *, required: bool = True, decimal: str = ".", thousands: str | None = None
) -> Decimal | None:
    """A decimal amount given as a JSON number (read as Decimal) or as text written with `decimal` before the
    fraction and, optionally, `thousands` between groups of three digits (the partner options say which). Text that
    does not read exactly under them is refused, never guessed. Bounds (places, magnitude) are the order line's;
    this only refuses what is not a finite decimal number at all."""
    value = present(record, name, required=required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise LineRejected(f"{name}={show(value)}: not a decimal amount")
    if isinstance(value, str):
        text = value.strip()
        plain = decimal == "." and thousands is None
        pattern = DECIMAL_TEXT if plain else _amount_text(decimal, thousands)
        if len(text) > _MAX_DECIMAL_TEXT or not pattern.fullmatch(text):
            raise LineRejected(f"{name}={show(value)}: not an amount written with {format_words(decimal, thousands)}")
        if thousands is not None:
            text = text.replace(thousands, "")
        amount = Decimal(text.replace(decimal, "."))
    else:
        amount = Decimal(value)
    if not amount.is_finite():
        raise LineRejected(f"{name}={show(value)}: not a finite amount")
    if amount < 0:
        raise LineRejected(f"{name}={brief(value) if not isinstance(value, str) else value}: negative amount")
    return amount


_TRUE = {"y", "yes", "true", "1"}
_FALSE = {"n", "no", "false", "0"}


def flag(record: Mapping[str, Any], name: str, default: bool) -> bool:
    value = record.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LineRejected(f"{name}={show(value)}: not a yes/no flag")


# The formats a time without a configured format is read in (ISO-8601 is tried after them).
ISO_AND_PLAIN = ("%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S")
# No time a partner writes is longer (ISO-8601 with microseconds and an offset is 32 characters).
_MAX_TIME_TEXT = 40


def local_time(
    record: Mapping[str, Any],
    name: str,
    zone: str,
    *,
    required: bool = True,
    formats: tuple[str, ...] = ISO_AND_PLAIN,
    iso: bool = True,
) -> datetime | None:
    """A partner time in one of `formats`, or (with `iso`) ISO-8601: with a zone it is taken as is; a time without a
    zone is read in `zone`. A year outside EARLIEST_YEAR..LATEST_YEAR is refused before any conversion (year 1 at
    +14:00 overflows when made UTC)."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise LineRejected(f"{name}: missing")
        return None
    if not isinstance(value, str) or len(value.strip()) > _MAX_TIME_TEXT:
        raise LineRejected(f"{name}={show(value)}: not a time")
    text = value.strip()
    parsed: datetime | None = None
    for pattern in formats:
        try:
            parsed = datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    if parsed is None and not iso:
        raise LineRejected(f"{name}={show(value)}: not a time in the format {' or '.join(formats)}")
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise LineRejected(f"{name}={show(value)}: not a time") from None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise LineRejected(f"{name}={show(value)}: year {parsed.year} is outside {EARLIEST_YEAR}..{LATEST_YEAR}")
    try:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(zone))
        return parsed.astimezone(UTC)
    except OverflowError:
        raise LineRejected(f"{name}={show(value)}: not a time in range") from None


def currency_rate(currency: str, reported: Decimal | None, options: PartnerOptions) -> Decimal | None:
    """The line's usd_rate: the report's own when it has one, else the partner options' rate for the currency, else
    None: the ledger then converts at the configuration's fx rate of the line's day."""
    if currency == "USD":
        return None
    if reported is not None:
        return reported
    rate = options.usd_rates.get(currency)
    return Decimal(str(rate)) if rate is not None else None


def build_line(
    values: Mapping[str, Any], source_names: Mapping[str, str] | None = None, given: Mapping[str, Any] | None = None
) -> OrderLine:
    """Validate the normalised values. A failure becomes a reason naming the partner's field (`source_names` maps a
    normalised field to the partner's name for it) and the offending value as the partner gave it (`given` maps a
    normalised field to the partner's raw value where the two differ, e.g. an amount in minor units)."""
    try:
        return OrderLine.model_validate(dict(values))
    except ValidationError as error:
        raise LineRejected(describe_validation_error(error, values, source_names or {}, given or {})) from None


def describe_validation_error(
    error: ValidationError,
    values: Mapping[str, Any],
    source_names: Mapping[str, str],
    given: Mapping[str, Any] | None = None,
) -> str:
    reasons = []
    for problem in error.errors(include_url=False, include_input=False):
        location = problem.get("loc") or ()
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        if not location:
            reasons.append(message)
            continue
        normalised = str(location[0])
        name = source_names.get(normalised, normalised)
        label = name if name == normalised else f"{name} ({normalised})"
        if problem.get("type") == "missing":
            reasons.append(f"{label}: missing")
        else:
            shown = (given or {}).get(normalised, values.get(normalised))
            if isinstance(shown, GivenNumber) and shown.is_finite():
                message = message.replace(str(Decimal(shown)), shown.given)  # the model quotes its own reading
            reasons.append(f"{label}={show(shown)}: {message}")
    return bounded_reason("; ".join(reasons))


def show(value: Any) -> str:
    """A value as a reason quotes it: decimals and datetimes as their text, strings quoted, a long value shortened
    with its length stated (`accrual.domain.models.brief`); a JSON number as the partner wrote it."""
    if isinstance(value, GivenNumber):
        text = value.given
        return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}... ({len(text)} chars)"
    return brief(value)
