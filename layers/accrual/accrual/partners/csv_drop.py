"""CSV reports dropped by partners that cannot be polled. Which column holds which normalised field is configuration:
`DEFAULT_COLUMNS` (headers named like the normalised fields) overridden per partner by the `columns` of its options
(an SSM parameter `<partner parameters prefix><partner>/columns`, see `accrual.service.drop`), e.g.

    {"columns": {"line_id": "Transaction ID", "order_id": "Order No", "amount": "Sale Amount"},
     "statuses": {"Approved": "settled", "Pending": "paid", "Declined": "invalid"},
     "timezone": "Europe/Moscow", "delimiter": ";"}

Amounts are decimal strings in currency units; times are ISO-8601 (a time without a zone is read in `timezone`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from typing import Any

from accrual.domain.models import OrderLine
from accrual.partners.report import (
    ISO_AND_PLAIN,
    LineRejected,
    ParsedReport,
    PartnerOptions,
    ReportFormatError,
    build_line,
    currency_rate,
    decimal_amount,
    flag,
    local_time,
    separators,
    show,
)

TEXT_FIELDS = (
    "line_id",
    "order_id",
    "partner_order_id",
    "sub_id",
    "status_detail",
    "category_id",
    "product_id",
    "shop_id",
    "promo_section",
    "promo_code",
    "promo_code_kind",
    "buyer_account",
    "ship_to_country",
)
AMOUNT_FIELDS = ("amount", "shipping", "tax", "commission", "usd_rate")
TIME_FIELDS = ("status_at", "ordered_at", "paid_at", "settled_at", "added_to_cart_at")
FLAG_FIELDS = {
    "is_affiliate": True,
    "is_hot": False,
    "new_user_coupon": False,
    "dispute": False,
    "price_adjusted": False,
}
ALL_FIELDS = (*TEXT_FIELDS, "status", "currency", *AMOUNT_FIELDS, *TIME_FIELDS, *FLAG_FIELDS)
REQUIRED = ("line_id", "order_id", "status", "ordered_at", "amount")

DEFAULT_COLUMNS: Mapping[str, str] = {name: name for name in ALL_FIELDS}
DEFAULT_STATUSES: Mapping[str, str] = {
    name: name for name in ("awaiting_payment", "paid", "received", "settled", "invalid")
}


def column_map(options: PartnerOptions) -> dict[str, str]:
    columns = dict(DEFAULT_COLUMNS)
    for name, header in (options.columns or {}).items():
        if name not in DEFAULT_COLUMNS:
            raise ValueError(f"column map names {name!r}, which is not a normalised field ({', '.join(ALL_FIELDS)})")
        columns[name] = header
    return columns


# The csv module refuses a cell over 128 KiB by raising in the middle of the file, which stopped every row after it.
# The limit is raised above any file this job reads (the whole file is in memory anyway), so a huge cell is read and
# its row quarantined by the order line's limits like any other bad value. (Process-wide: csv has no per-reader limit.)
MAX_CSV_FIELD = 256 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))


class _PhysicalLines:
    """The file's lines as the csv reader takes them, so that a row's raw text is exactly what the partner wrote,
    also for a row the csv module cannot parse."""

    def __init__(self, text: str):
        self._lines = iter(io.StringIO(text, newline=""))  # splits at \n, \r\n and \r only, as csv does
        self._taken: list[str] = []

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._taken.append(line)
        return line

    def row_text(self) -> str:
        text, self._taken = "".join(self._taken).rstrip("\r\n"), []
        return text


def parse_csv(
    data: bytes | str, *, source: str, partner: str, options: PartnerOptions | None = None, first_line: int = 2
) -> ParsedReport:
    """`first_line` is the file line number of the first record after the header, for a part of a longer file (a
    streamed ingest repeats the header at the top of each part)."""
    options = options or PartnerOptions()
    line_offset = first_line - 2
    # Undecodable bytes become lone surrogates, so they spoil only the row they are in.
    encoding = "utf-8-sig" if codecs.lookup(options.encoding).name == "utf-8" else options.encoding
    text = (data.decode(encoding, "surrogateescape") if isinstance(data, bytes) else data).lstrip("\ufeff")
    columns = column_map(options)
    statuses = {
        word.strip().lower(): status for word, status in {**DEFAULT_STATUSES, **(options.statuses or {})}.items()
    }
    lines = _PhysicalLines(text)
    reader = csv.reader(lines, delimiter=options.delimiter)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise ReportFormatError(f"{source}: unreadable CSV header ({error})") from None
    if header is None:
        raise ReportFormatError(f"{source}: empty CSV, no header row")
    lines.row_text()
    header = [name.strip() for name in header]
    absent = [f"{name} (column {columns[name]!r})" for name in REQUIRED if columns[name] not in header]
    if absent:
        raise ReportFormatError(
            f"{source}: CSV header lacks required columns: {', '.join(absent)}; the partner's column map (its"
            " `columns`, with `delimiter`, `date_format`, `decimal_separator`, …) says which header holds each"
            f" field (header found: {show(', '.join(header))[:200]})"
        )
    report = ParsedReport(partner=partner, source=source)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # one unparsable row is quarantined; the reader goes on at the next line
            report.reject(f"line {reader.line_num + line_offset}: unreadable CSV row ({error})", lines.row_text())
            continue
        raw = lines.row_text()
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            report.reject(f"row has {len(row)} cells, the header has {len(header)}", raw)
            continue
        report.take(
            raw,
            lambda: map_row(
                _utf8_row(dict(zip(header, row, strict=False)), reader.line_num + line_offset),  # noqa: B023
                columns,
                statuses,
                partner,
                options,
            ),
        )
    return report


def _utf8_row(record: dict[str, str], line_number: int) -> dict[str, str]:
    for header, value in record.items():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise LineRejected(
                    f"{header}: bytes that are not text in the file's encoding (line {line_number})"
                ) from None
    return record


def map_row(
    record: Mapping[str, str],
    columns: Mapping[str, str],
    statuses: Mapping[str, str],
    partner: str,
    options: PartnerOptions,
) -> OrderLine:
    def cell(name: str) -> str | None:
        value = record.get(columns[name])
        return value.strip() if value is not None and value.strip() else None

    by_header = {columns[name]: cell(name) for name in ALL_FIELDS}
    values: dict[str, Any] = {"partner": partner}
    for name in TEXT_FIELDS:
        values[name] = cell(name)
    status_word = cell("status")
    if status_word is None:
        raise LineRejected(f"{columns['status']}: missing")
    status = statuses.get(status_word.lower())
    if status is None:
        raise LineRejected(
            f"{columns['status']}={show(status_word)}: unknown status (known: {', '.join(sorted(statuses))})"
        )
    values["status"] = status
    for name in AMOUNT_FIELDS:
        values[name] = decimal_amount(by_header, columns[name], required=name == "amount", **separators(options))
    # with the map's date format, times are read in it only (28.11.2026 is never guessed to be ISO or the reverse)
    formats = (options.date_format,) if options.date_format else ISO_AND_PLAIN
    for name in TIME_FIELDS:
        values[name] = local_time(
            by_header,
            columns[name],
            options.timezone,
            required=name == "ordered_at",
            formats=formats,
            iso=not options.date_format,
        )
    values["status_at"] = values["status_at"] or max(
        moment for moment in (values["ordered_at"], values["paid_at"], values["settled_at"]) if moment
    )
    for name, default in FLAG_FIELDS.items():
        values[name] = flag(by_header, columns[name], default)
    values["shipping"] = values["shipping"] if values["shipping"] is not None else "0"
    values["commission"] = values["commission"] if values["commission"] is not None else "0"
    currency = cell("currency") or "USD"
    values["currency"] = currency
    values["usd_rate"] = currency_rate(currency, values["usd_rate"], options)
    return build_line(
        {key: value for key, value in values.items() if value is not None},
        {name: columns[name] for name in ALL_FIELDS if columns[name] != name},
    )
