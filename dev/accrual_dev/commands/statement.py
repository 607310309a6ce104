"""`accrual statement reconcile FILE --partner P`: a partner's payout statement against the ledger
(accrual_dev.books.statement)."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from accrual_dev.commands._common import OperatorError, command_group, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, statement = command_group(subparsers, "statement", "partners' payout statements")
    reconcile_parser = statement.add_parser(
        "reconcile",
        help="a partner's payout statement against the ledger; exit 1 when they differ",
        description="Read a partner's payout statement (CSV with a header row; columns line_id, order_id, "
        "commission, currency, status unless --columns renames them; status `settled` is a paid line; a row may "
        "name a line or a whole order) and list, against the ledger's confirmed lines of the partner: paid lines "
        "unknown to the ledger, confirmed lines the partner did not pay, commission differences beyond the "
        "tolerance, and the totals. Nothing in the ledger changes. Exit 0 when they agree, 1 when they differ.",
    )
    reconcile_parser.add_argument("file", help="the statement (CSV)")
    reconcile_parser.add_argument("--partner", required=True, help="the partner whose statement it is")
    reconcile_parser.add_argument("--month", help="YYYY-MM: only the ledger's orders placed in this month")
    reconcile_parser.add_argument(
        "--tolerance", default="0.05", help="USD a line's commission may differ by before it is reported (0.05)"
    )
    reconcile_parser.add_argument(
        "--columns", help="the partner's headers: line_id=Sub Order,order_id=Order,commission=Paid,..."
    )
    reconcile_parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    return {"reconcile": reconcile}[args.statement_command](args)


def reconcile(args: argparse.Namespace) -> int:
    from accrual.adapters.ledger_store import DynamoLedgerStore
    from accrual_dev.books.report import month_bounds
    from accrual_dev.books.statement import column_map, describe, json_text, reconcile_file

    try:
        tolerance = Decimal(args.tolerance)
    except InvalidOperation:
        raise OperatorError(f"--tolerance {args.tolerance!r} is not a decimal number of USD like 0.05") from None
    if not tolerance.is_finite() or tolerance < 0:
        raise OperatorError(f"--tolerance {args.tolerance!r} is not a non-negative amount of USD")
    if args.month:
        month_bounds(args.month)
    columns = column_map(args.columns)
    path = Path(args.file)
    if not path.is_file():
        raise OperatorError(f"{args.file}: no such statement file")
    result = reconcile_file(
        DynamoLedgerStore(settings()),
        path,
        partner=args.partner,
        month=args.month,
        tolerance=tolerance,
        columns=columns,
    )
    if args.json:
        print(json_text(result))
    else:
        print("\n".join(describe(result)))
    return 0 if result["agree"] else 1
