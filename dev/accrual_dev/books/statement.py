"""A partner's monthly payout statement reconciled against the ledger. Nothing in the ledger changes.

The statement is a CSV with a header row; its default columns are `line_id,order_id,commission,currency,status` (a
column map renames them), and a row whose status is `settled` is a line the partner paid. A row names a partner line
(`line_id`) or a whole order (`order_id` with no `line_id`, or a `line_id` that is the store's order number); the
amounts of rows naming the same line or order add up.

Against the ledger's confirmed lines of the partner (the settled lines of its confirmed orders, of the orders placed
in `month` when one is given), it lists:

- `unknown_to_ledger`: paid rows naming no line or order the ledger holds at all;
- `unpaid_by_partner`: confirmed lines no paid row names;
- `commission_differences`: lines (or orders) both sides have whose commission differs by more than the tolerance;
- `not_confirmed_in_ledger`: paid rows naming a line the ledger holds but has not confirmed (still pending, declined by
  a rule of ours), or confirmed for an order of another month, with the order's state: shown, not a disagreement;
- `totals`: the commission of the ledger's confirmed lines and of the statement's paid rows, in USD.

Amounts in another currency are taken to USD at the ledger line's own rate (the rate it was valued at), else at the
configuration's fx rate of the line's day (of the latest day for a row the ledger does not know).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from accrual.domain.lifecycle import OrderState
from accrual.domain.models import AccrualConfig, LineStatus, OrderLine
from accrual.domain.money import ZERO, money_str, to_cents
from accrual.ports import LedgerStore, utc_text
from accrual_dev.books.report import month_bounds

FIELDS = ("line_id", "order_id", "commission", "currency", "status")
DEFAULT_COLUMNS: dict[str, str] = {field: field for field in FIELDS}
PAID_STATUS = "settled"
DEFAULT_TOLERANCE = Decimal("0.05")


class StatementError(ValueError):
    """The statement cannot be read: every problem, one line each, naming the row and the value."""


@dataclass(frozen=True)
class StatementRow:
    number: int  # the row's line in the file (the header is line 1)
    line_id: str
    order_id: str
    commission: Decimal
    currency: str
    status: str

    @property
    def paid(self) -> bool:
        return self.status.strip().casefold() == PAID_STATUS


def column_map(text: str | None) -> dict[str, str]:
    """`field=Header,field=Header` over the defaults (a field not named keeps its own name)."""
    columns = dict(DEFAULT_COLUMNS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, _, header = part.partition("=")
        field = field.strip()
        if field not in FIELDS or not header.strip():
            raise StatementError(f"column map {part.strip()!r}: expected FIELD=HEADER with FIELD one of {FIELDS}")
        columns[field] = header.strip()
    return columns


def read_statement(source: TextIO, columns: Mapping[str, str] = DEFAULT_COLUMNS) -> list[StatementRow]:
    """The rows of a statement, or StatementError listing every unreadable row."""
    reader = csv.DictReader(source)
    header = reader.fieldnames or []
    missing = [columns[field] for field in ("commission", "status") if columns[field] not in header]
    if columns["line_id"] not in header and columns["order_id"] not in header:
        missing.append(f"{columns['line_id']} or {columns['order_id']}")
    if missing:
        raise StatementError(f"the header {header} has no column {', '.join(missing)}")
    rows, problems = [], []
    for number, record in enumerate(reader, start=2):
        line_id = (record.get(columns["line_id"]) or "").strip()
        order_id = (record.get(columns["order_id"]) or "").strip()
        text = (record.get(columns["commission"]) or "").strip()
        currency = (record.get(columns["currency"]) or "USD").strip().upper() or "USD"
        if not line_id and not order_id:
            problems.append(f"row {number}: names neither a line nor an order")
            continue
        try:
            commission = Decimal(text)
            if not commission.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"row {number}: commission {text!r} is not a decimal number like 12.34")
            continue
        status = (record.get(columns["status"]) or "").strip()
        rows.append(StatementRow(number, line_id, order_id, commission, currency, status))
    if problems:
        raise StatementError("\n".join(problems))
    return rows


@dataclass(frozen=True)
class _LedgerLine:
    order_key: str
    order_id: str
    partner_order_id: str | None
    line: OrderLine
    commission_usd: Decimal
    usd_rate: Decimal | None  # units of the line's currency per USD (None for USD)


def _usd_rate(line: OrderLine, config: AccrualConfig) -> Decimal | None:
    if line.currency == "USD":
        return None
    if line.usd_rate is not None:
        return line.usd_rate
    found = config.fx_rate_on(line.currency, line.ordered_at.astimezone(UTC).date())
    return found[0] if found else None


def _confirmed_lines(
    store: LedgerStore, partner: str, month: str | None, config: AccrualConfig
) -> Iterator[_LedgerLine]:
    """The settled lines of the partner's confirmed orders (placed in `month` when given), read an order at a time."""
    if month is not None:
        start, end = month_bounds(month)
        keys: Iterable[str] = store.orders_placed(utc_text(start), utc_text(end))
    else:
        keys = (order.key for order in store.scan_orders())
    for key in keys:
        if not key.startswith(f"{partner}#"):
            continue
        loaded = store.load_order(key)
        order = loaded.order
        if order is None or order.state != OrderState.CONFIRMED.value:
            continue
        for stored in loaded.lines:
            if stored.moved_to is not None:
                continue
            line = OrderLine.model_validate_json(stored.body)
            if line.status != LineStatus.SETTLED:
                continue
            rate = _usd_rate(line, config)
            usd = line.commission if rate is None else line.commission / rate
            yield _LedgerLine(key, order.order_id, order.partner_order_id, line, to_cents(usd), rate)


def reconcile_statement(
    store: LedgerStore,
    rows: Iterable[StatementRow],
    *,
    partner: str,
    month: str | None = None,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    config = store.current_config()
    confirmed = {item.line.line_id: item for item in _confirmed_lines(store, partner, month, config)}
    orders: dict[str, list[_LedgerLine]] = defaultdict(list)
    for item in confirmed.values():
        for number in {item.order_id, item.partner_order_id} - {None}:
            orders[str(number)].append(item)

    # the paid rows by what they name: a confirmed line, a confirmed order, or something else
    by_line: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_order: dict[str, Decimal] = defaultdict(lambda: ZERO)
    others: dict[str, Decimal] = defaultdict(lambda: ZERO)
    other_rows: dict[str, StatementRow] = {}
    statement_total = ZERO
    for row in rows:
        if not row.paid:
            continue
        number = _order_named(row, orders)
        if row.line_id in confirmed:
            usd = _row_usd(row, confirmed[row.line_id], config)
            by_line[row.line_id] += usd
        elif number is not None:
            usd = _row_usd(row, orders[number][0], config)
            by_order[number] += usd
        else:
            usd = _row_usd(row, None, config)
            name = row.line_id or row.order_id
            others[name] += usd
            other_rows.setdefault(name, row)
        statement_total += usd

    paid_lines = set(by_line) | {item.line.line_id for number in by_order for item in orders[number]}
    differences = [
        _difference(line_id, confirmed[line_id].commission_usd, amount, tolerance)
        for line_id, amount in by_line.items()
    ]
    differences += [
        _difference(number, sum((item.commission_usd for item in orders[number]), ZERO), amount, tolerance)
        for number, amount in by_order.items()
    ]
    unknown, not_confirmed = [], []
    for name, row in sorted(other_rows.items()):
        state = _ledger_state(store, partner, row)
        if state is None:
            unknown.append(name)
        else:
            not_confirmed.append({"id": name, "state": state, "statement_usd": money_str(others[name])})
    result: dict[str, Any] = {
        "partner": partner,
        "month": month,
        "tolerance_usd": str(tolerance),
        "unknown_to_ledger": unknown,
        "unpaid_by_partner": sorted(set(confirmed) - paid_lines),
        "commission_differences": sorted(
            (difference for difference in differences if difference is not None), key=lambda item: item["id"]
        ),
        "not_confirmed_in_ledger": not_confirmed,
        "totals": {
            "ledger_usd": money_str(sum((item.commission_usd for item in confirmed.values()), ZERO)),
            "statement_usd": money_str(statement_total),
        },
    }
    result["agree"] = not (
        result["unknown_to_ledger"] or result["unpaid_by_partner"] or result["commission_differences"]
    )
    return result


def _order_named(row: StatementRow, orders: Mapping[str, list[_LedgerLine]]) -> str | None:
    """The confirmed order a row names as a whole: its `line_id` is an order number, or it has only an `order_id`."""
    if row.line_id:
        return row.line_id if row.line_id in orders else None
    return row.order_id if row.order_id in orders else None


def _row_usd(row: StatementRow, known: _LedgerLine | None, config: AccrualConfig) -> Decimal:
    """The row's commission in USD: at the ledger line's rate when the currencies agree, else the configuration's."""
    if row.currency == "USD":
        return row.commission
    if known is not None and known.line.currency == row.currency and known.usd_rate is not None:
        return row.commission / known.usd_rate
    day = known.line.ordered_at.astimezone(UTC).date() if known is not None else max(config.fx_rates, default=None)
    found = config.fx_rate_on(row.currency, day) if day is not None else None
    if found is None:
        raise StatementError(f"row {row.number}: no fx rate for {row.currency} in configuration {config.version}")
    return row.commission / found[0]


def _difference(name: str, ledger: Decimal, statement: Decimal, tolerance: Decimal) -> dict[str, str] | None:
    if abs(to_cents(statement) - ledger) <= tolerance:
        return None
    return {"id": name, "ledger_usd": money_str(ledger), "statement_usd": money_str(statement)}


def _ledger_state(store: LedgerStore, partner: str, row: StatementRow) -> str | None:
    """The state of the order a row names, when the ledger holds it at all (None: unknown to the ledger)."""
    number = row.line_id or row.order_id  # a row with a line id names that line (or an order by that number)
    keys = store.line_homes(partner, row.line_id) if row.line_id else set()
    keys |= {key for key in store.find_orders(number) if key.startswith(f"{partner}#")}
    states = sorted({loaded.order.state for loaded in map(store.load_order, sorted(keys)) if loaded.order})
    return ",".join(states) if states else None


def reconcile_file(
    store: LedgerStore,
    path: Path,
    *,
    partner: str,
    month: str | None = None,
    tolerance: Decimal = DEFAULT_TOLERANCE,
    columns: Mapping[str, str] = DEFAULT_COLUMNS,
) -> dict[str, Any]:
    with path.open(newline="", encoding="utf-8-sig") as source:
        rows = read_statement(source, columns)
    return reconcile_statement(store, rows, partner=partner, month=month, tolerance=tolerance)


def describe(result: dict[str, Any]) -> list[str]:
    """The reconciliation in readable lines (the default output; `--json` prints the result itself)."""
    scope = f" for {result['month']}" if result["month"] else ""
    totals = result["totals"]
    lines = [
        f"{result['partner']}{scope}: "
        + ("the statement agrees with the ledger" if result["agree"] else "the statement differs from the ledger"),
        f"  ledger (confirmed lines) {totals['ledger_usd']} USD, statement (paid rows) {totals['statement_usd']} USD",
    ]
    for name in result["unknown_to_ledger"]:
        lines.append(f"  paid by the partner, unknown to the ledger: {name}")
    for name in result["unpaid_by_partner"]:
        lines.append(f"  confirmed in the ledger, not paid by the partner: {name}")
    for item in result["commission_differences"]:
        lines.append(
            f"  commission differs: {item['id']} ledger {item['ledger_usd']} USD, statement {item['statement_usd']} USD"
        )
    for item in result["not_confirmed_in_ledger"]:
        if item["state"] == "confirmed":  # a confirmed order placed in another month than --month
            lines.append(f"  paid, confirmed in the ledger for another month: {item['id']}")
        else:
            lines.append(f"  paid, but the ledger has not confirmed it: {item['id']} ({item['state']})")
    return lines


def json_text(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, sort_keys=True)
