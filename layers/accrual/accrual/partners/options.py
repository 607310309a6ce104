"""Per-partner parsing options: their pydantic type, and reading them from their JSON document (an SSM parameter or a
file). A bad document is refused as a whole with one line per problem naming the field and the value as given."""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from accrual.domain.models import LineStatus, OrderLine


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a time zone name (e.g. UTC, Europe/Moscow)") from None
    return name


def _date_format(pattern: str) -> str:
    """A strptime pattern that names a day, a month and a four-digit year (a time of day is optional: midnight in
    the zone without one), and reads back what it writes."""
    needed = {"%d": ("%d",), "%m": ("%m", "%b"), "%Y": ("%Y",)}
    missing = [name for name, ways in needed.items() if not any(way in pattern for way in ways)]
    if missing:
        raise ValueError(f"a date format needs {', '.join(missing)} (e.g. %d.%m.%Y %H:%M)")
    if "%I" in pattern and "%p" not in pattern:
        raise ValueError("a 12-hour %I needs %p (AM/PM), or use %H")
    sample = datetime(2026, 11, 28, 12, 34, 56)
    try:
        written = sample.strftime(pattern)
        read = datetime.strptime(written, pattern)
    except ValueError as error:
        raise ValueError(f"not a date format strptime reads ({error})") from None
    if read.date() != sample.date() or ("%H" in pattern or "%I" in pattern) and read.hour != sample.hour:
        raise ValueError("a date format that does not read back the time it writes")
    return pattern


def _ascii_compatible(name: str) -> str:
    """An encoding the streamed CSV reader can cut at newlines and quotes: ASCII text is the same bytes in it."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise ValueError("not an encoding Python knows (e.g. utf-8, cp1251, latin-1)") from None
    sample = 'line_id,"a;b"\r\n0123456789.'
    try:
        same = sample.encode(codec.name) == sample.encode("ascii")
    except UnicodeError:
        same = False
    if not same:
        raise ValueError("not an ASCII-compatible encoding (UTF-16 and UTF-32 files must be converted to UTF-8)")
    return name


Rate = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
# The normalised fields a CSV column map may name (the partner is the drop's, never a column).
MAPPED_FIELDS = frozenset(OrderLine.model_fields) - {"partner"}


# A pydantic dataclass rather than a BaseModel: callers derive one set of options from another with
# dataclasses.replace (a drop names its partner), and that keeps working, validated like construction.
@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class PartnerOptions:
    """Per-partner parsing settings (configuration, not code; see `options_from_json`).

    - `minor_units`: how many of the API's integer money units make one currency unit. AliExpress quotes money in
      cents (`"paid_amount": 1113` is 11.13 USD), so 100 by default; one explicit setting, never guessed per line.
    - `usd_rates`: units of a currency per 1 USD, for lines in a currency other than USD whose report carries no rate.
    - `timezone`: the zone of times written without one (Admitad, CSV). AliExpress times are always Pacific.
    - `columns`, `statuses`, `delimiter`: the CSV column map (normalised field -> CSV header), the partner's status
      words -> normalised status, and the CSV delimiter.
    - `decimal_separator`, `thousands_separator`: how amounts written as text are read (`.` and none by default). An
      amount that does not read exactly under them is quarantined: `"1,234"` is never guessed to be 1.234 or 1234.
    - `date_format`: the strptime pattern of the CSV's times (e.g. `%d.%m.%Y %H:%M`), read in `timezone`; without
      it times are ISO-8601.
    - `encoding`: the CSV file's encoding (`utf-8` by default; a byte order mark is skipped).
    - `partner`: the partner name written on CSV lines (a drop under `drops/<partner>/` names it).
    """

    minor_units: Annotated[int, Field(strict=True, gt=0)] = 100
    usd_rates: Mapping[str, Rate] = Field(default_factory=dict)
    timezone: Annotated[str, AfterValidator(_known_zone)] = "UTC"
    columns: Mapping[str, str] | None = None
    statuses: Mapping[str, str] | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    decimal_separator: Literal[".", ","] = "."
    # a space, a no-break space, a narrow no-break space and an apostrophe group digits too (fr, ru, de-CH)
    thousands_separator: Literal[",", ".", " ", "\u00a0", "\u202f", "'"] | None = None
    date_format: Annotated[str, Field(min_length=2, max_length=64), AfterValidator(_date_format)] | None = None
    encoding: Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_ascii_compatible)] = "utf-8"
    partner: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns or {}) - MAPPED_FIELDS)
        if unknown:
            raise ValueError(
                f"columns names {', '.join(map(repr, unknown))}, not a normalised field (known: "
                f"{', '.join(sorted(MAPPED_FIELDS))})"
            )
        statuses = {status.value for status in LineStatus}
        wrong = {word: status for word, status in (self.statuses or {}).items() if status not in statuses}
        if wrong:
            word, status = next(iter(wrong.items()))
            raise ValueError(
                f"statuses maps {word!r} to {status!r}, which is not a status (one of {', '.join(sorted(statuses))})"
            )
        if self.thousands_separator == self.decimal_separator:
            raise ValueError(
                f"thousands_separator {self.thousands_separator!r} is also the decimal_separator: amounts could not"
                " be read exactly"
            )


class PartnerOptionsError(ValueError):
    """A partner options document that cannot be used; the message names every field and value at fault."""


_OPTIONS = TypeAdapter(PartnerOptions)


def options_from_json(
    document: str | bytes | Mapping[str, Any] | None, *, source: str = "partner options"
) -> PartnerOptions:
    """Options from their JSON document; `source` (the parameter's name, a file) starts the error message.
    Numbers are read exactly (a rate of 92.50 is Decimal("92.50"), never a float)."""
    if document is None:
        return PartnerOptions()
    try:
        values = json.loads(document, parse_float=Decimal) if isinstance(document, str | bytes) else dict(document)
    except ValueError as error:
        raise PartnerOptionsError(f"{source}: not JSON ({error})") from None
    if not isinstance(values, dict):
        raise PartnerOptionsError(f"{source}: expected a JSON object of options, got {_shown(values)}")
    try:
        return _OPTIONS.validate_python(values)
    except ValidationError as error:
        raise PartnerOptionsError(f"{source}: " + "; ".join(_problem(problem) for problem in error.errors())) from None


_KNOWN = ", ".join(PartnerOptions.__dataclass_fields__)


def _problem(problem: Any) -> str:
    field = ".".join(str(part) for part in problem["loc"]) or "(document)"
    if problem["type"] == "unexpected_keyword_argument" or problem["type"] == "extra_forbidden":
        return f"{field}: unknown option (known: {_KNOWN})"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{field}={_shown(problem.get('input'))}: {message}"


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, Decimal) else str(value)
    return text if len(text) <= 80 else text[:79] + "…"
