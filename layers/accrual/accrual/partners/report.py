"""What every partner adapter returns, and the small helpers they share to turn one raw line into an `OrderLine` or a
quarantine record whose reason names the field and the value.

Pure code: no HTTP, no AWS. The adapters and the API clients both parse through here, so a saved API page and a live
one go through exactly the same mapping.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from accrual.domain.models import OrderLine


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

    def accept(self, line: OrderLine) -> None:
        self.read += 1
        self.lines.append(line)

    def reject(self, reason: str, raw: Any) -> None:
        self.read += 1
        self.quarantined.append(QuarantinedLine(position=self.read, reason=reason, raw=raw_text(raw)))

    @property
    def counts(self) -> dict[str, int]:
        return {"read": self.read, "accepted": len(self.lines), "quarantined": len(self.quarantined)}


@dataclass(frozen=True)
class PartnerOptions:
    """Per-partner parsing settings (configuration, not code; see `options_from_json`).

    - `minor_units`: how many of the API's integer money units make one currency unit. AliExpress quotes money in
      cents (`"paid_amount": 1113` is 11.13 USD), so 100 by default; one explicit setting, never guessed per line.
    - `usd_rates`: units of a currency per 1 USD, for lines in a currency other than USD whose report carries no rate.
    - `timezone`: the zone of times written without one (Admitad, CSV). AliExpress times are always Pacific.
    - `columns`, `statuses`, `delimiter`: the CSV column map (normalised field -> CSV header), the partner's status
      words -> normalised status, and the CSV delimiter.
    - `partner`: the partner name written on CSV lines (a drop under `drops/<partner>/` names it).
    """

    minor_units: int = 100
    usd_rates: Mapping[str, Decimal] = field(default_factory=dict)
    timezone: str = "UTC"
    columns: Mapping[str, str] | None = None
    statuses: Mapping[str, str] | None = None
    delimiter: str = ","
    partner: str | None = None


def options_from_json(document: str | bytes | Mapping[str, Any] | None) -> PartnerOptions:
    """Options from their JSON document (an SSM parameter or a file); unknown keys are an error naming the key."""
    if document is None:
        return PartnerOptions()
    values = json.loads(document, parse_float=Decimal) if isinstance(document, (str, bytes)) else dict(document)
    known = set(PartnerOptions.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown partner option(s) {unknown}; known: {sorted(known)}")
    if "usd_rates" in values:
        values["usd_rates"] = {currency: Decimal(str(rate)) for currency, rate in values["usd_rates"].items()}
    if "minor_units" in values and (not isinstance(values["minor_units"], int) or values["minor_units"] <= 0):
        raise ValueError(f"minor_units={values['minor_units']!r} must be a positive integer (100 for cents)")
    return PartnerOptions(**values)


class LineRejected(Exception):
    """A line that cannot be normalised; the message is the quarantine reason."""


class ReportFormatError(ValueError):
    """The report as a whole is unreadable (not JSON, not the partner's shape): nothing in it can be trusted."""


def loads(data: bytes | str) -> Any:
    """JSON with every number kept exact (Decimal), never float."""
    return json.loads(data, parse_float=Decimal)


def raw_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, default=str, ensure_ascii=False, sort_keys=True)


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
        raise LineRejected(f"{name}={value!r}: not an id (a string or an integer)")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise LineRejected(f"{name}={value}: not an integer id")
        value = int(value)
    return str(value).strip()


def minor_units_amount(record: Mapping[str, Any], name: str, minor_units: int, *, required: bool = True
                       ) -> Decimal | None:
    """An integer count of minor units (cents by default) as a Decimal amount."""
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise LineRejected(f"{name}: missing")
        return None
    if isinstance(value, bool):
        raise LineRejected(f"{name}={value!r}: not an integer amount in minor units")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            raise LineRejected(f"{name}={value!r}: not an integer amount in minor units")
        value = int(text)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise LineRejected(f"{name}={value}: not an integer amount in minor units")
    if not isinstance(value, (int, Decimal)):
        raise LineRejected(f"{name}={value!r}: not an integer amount in minor units")
    if value < 0:
        raise LineRejected(f"{name}={value}: negative amount")
    return Decimal(value) / Decimal(minor_units)


def decimal_amount(record: Mapping[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    """A decimal amount given as a JSON number (read as Decimal) or a decimal string."""
    value = present(record, name, required=required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise LineRejected(f"{name}={value!r}: not a decimal amount")
    try:
        amount = Decimal(value.strip().replace(",", ".")) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise LineRejected(f"{name}={value!r}: not a decimal amount") from None
    if not amount.is_finite():
        raise LineRejected(f"{name}={value!r}: not a finite amount")
    if amount < 0:
        raise LineRejected(f"{name}={value}: negative amount")
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
    raise LineRejected(f"{name}={value!r}: not a yes/no flag")


def local_time(record: Mapping[str, Any], name: str, zone: str, *, required: bool = True,
               formats: tuple[str, ...] = ("%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S")) -> datetime | None:
    """A partner time: ISO-8601 with a zone is taken as is; a time without a zone is read in `zone`."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise LineRejected(f"{name}: missing")
        return None
    if not isinstance(value, str):
        raise LineRejected(f"{name}={value!r}: not a time")
    text = value.strip()
    parsed: datetime | None = None
    for pattern in formats:
        try:
            parsed = datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise LineRejected(f"{name}={value!r}: not a time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(timezone.utc)


def currency_rate(currency: str, reported: Decimal | None, options: PartnerOptions, field_name: str
                  ) -> Decimal | None:
    """The line's usd_rate: the report's own when it has one, else the configured rate for the currency."""
    if currency == "USD" or not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        return None  # a malformed code is refused by the line's own validation, naming the currency
    if reported is not None:
        return reported
    rate = options.usd_rates.get(currency)
    if rate is None:
        raise LineRejected(f"{field_name}={currency!r}: no usd_rate in the report or in the partner options")
    return Decimal(str(rate))


def build_line(values: Mapping[str, Any], source_names: Mapping[str, str] | None = None) -> OrderLine:
    """Validate the normalised values. A failure becomes a reason naming the partner's field (`source_names` maps a
    normalised field to the partner's name for it) and the offending value."""
    try:
        return OrderLine.model_validate(dict(values))
    except ValidationError as error:
        raise LineRejected(describe_validation_error(error, values, source_names or {})) from None


def describe_validation_error(error: ValidationError, values: Mapping[str, Any],
                              source_names: Mapping[str, str]) -> str:
    reasons = []
    for problem in error.errors():
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
            reasons.append(f"{label}={show(values.get(normalised))}: {message}")
    return "; ".join(reasons)


def show(value: Any) -> str:
    """A value as a reason quotes it: decimals and datetimes as their text, strings quoted."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)
