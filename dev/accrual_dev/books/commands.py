"""`accrual report` and `accrual statement reconcile`: the month's books and the partner's payout statement.

`register(subparsers)` adds the commands to the operator CLI; each handler reads the stack's settings, calls
`accrual_dev.books`, prints and returns the exit code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from accrual.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="the month's books from the ledger: cashback by partner and state, commission, margin, exclusions, "
        "quarantines, claims, confirmation lag",
        description="The books of the orders placed in a month (UTC): orders and lines by partner and state; cashback "
        "pending, confirmed, declined and reversed (USD and per account currency); the partners' commission and the "
        "margin, and the orders paid above their commission; declined orders by reason and by shop (top 20); lines "
        "quarantined by partner; claims filed by state; the confirmation lag as percentiles. Read from the ledger "
        "an order at a time; the same figures on every run over the same data.",
    )
    report.add_argument("--month", required=True, help="YYYY-MM: the month the orders were placed in (UTC)")
    report.add_argument("--partner", help="only this partner's orders, quarantines and claims")
    report.add_argument("--json", action="store_true", help="print the report as JSON (the contract)")
    report.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML file")
    report.set_defaults(handler=report_command)

    statement = commands.add_parser("statement", help="partners' payout statements").add_subparsers(
        dest="statement_command", required=True, metavar="COMMAND"
    )
    reconcile = statement.add_parser(
        "reconcile",
        help="a partner's payout statement against the ledger; exit 1 when they differ",
        description="Read a partner's payout statement (CSV with a header row; columns line_id, order_id, "
        "commission, currency, status unless --columns renames them; status `settled` is a paid line; a row may "
        "name a line or a whole order) and list, against the ledger's confirmed lines of the partner: paid lines "
        "unknown to the ledger, confirmed lines the partner did not pay, commission differences beyond the "
        "tolerance, and the totals. Nothing in the ledger changes. Exit 0 when they agree, 1 when they differ.",
    )
    reconcile.add_argument("file", help="the statement (CSV)")
    reconcile.add_argument("--partner", required=True, help="the partner whose statement it is")
    reconcile.add_argument("--month", help="YYYY-MM: only the ledger's orders placed in this month")
    reconcile.add_argument(
        "--tolerance", default="0.05", help="USD a line's commission may differ by before it is reported (0.05)"
    )
    reconcile.add_argument(
        "--columns", help="the partner's headers: line_id=Sub Order,order_id=Order,commission=Paid,..."
    )
    reconcile.add_argument("--json", action="store_true", help="print JSON")
    reconcile.set_defaults(handler=statement_reconcile_command)


def _store(settings: Settings):
    from accrual.adapters.ledger_store import DynamoLedgerStore

    return DynamoLedgerStore(settings)


def report_command(args) -> int:
    from accrual_dev.books.report import month_bounds, month_report
    from accrual_dev.commands import _settings

    month_bounds(args.month)  # a mistyped month is refused before any read
    settings = _settings()
    store = _store(settings)
    result = month_report(
        store,
        args.month,
        partner=args.partner,
        quarantined=_quarantined(settings, store.current_config().partners, args.partner),
        claims=_claims(settings),
    )
    if args.html:
        from accrual_dev.books.html import render_html

        Path(args.html).write_text(render_html(result), encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_summary(result, args.html)
    return 0


NORMALIZED = "normalized"  # the quarantine of JSON Lines files, which name their partner on each line


def _quarantined(settings: Settings, partners: list[str], wanted: str | None) -> Iterator:
    """Each quarantined line with its partner: the partner whose report it came from, or for a normalised JSON line
    the partner the line itself names when that much of it can be read."""
    from accrual.adapters.partner_state import PartnerState
    from accrual_dev.books.report import Quarantined

    state = PartnerState(settings)
    for source in sorted({*partners, NORMALIZED}):
        for record in state.quarantined(source):
            partner = _named_partner(record.raw, partners) if source == NORMALIZED else record.partner
            if wanted is None or partner == wanted:
                yield Quarantined(partner, record.at)


def _named_partner(raw: str, partners: list[str]) -> str:
    try:
        named = json.loads(raw).get("partner")
    except (ValueError, AttributeError):
        return NORMALIZED
    return named if named in partners else NORMALIZED


def _claims(settings: Settings) -> Iterator:
    from accrual.adapters.claims_table import all_claims, bind_claims_table

    bind_claims_table(settings)
    yield from all_claims()


def _print_summary(result: dict, html: str | None) -> None:
    totals = result["totals"]
    money = totals["cashback_usd"]
    print(
        f"{result['month']}: {totals['orders']} orders; cashback USD pending {money['pending']}, confirmed "
        f"{money['confirmed']}, declined {money['declined']}, reversed {money['reversed']}; commission "
        f"{totals['commission_usd']}, margin {totals['margin_usd']}"
    )
    for partner, figures in result["partners"].items():
        states = ", ".join(f"{state} {count}" for state, count in figures["orders"].items())
        print(f"  {partner}: {states}; commission {figures['commission_usd']}, margin {figures['margin_usd']}")
    if result["negative_margin"]:
        print(f"  {len(result['negative_margin'])} orders pay more cashback than their commission (--json lists them)")
    if result["exclusions"]:
        print("  declined by reason: " + ", ".join(f"{code} {n}" for code, n in result["exclusions"].items()))
    if result["quarantined"]:
        print("  quarantined lines: " + ", ".join(f"{p} {n}" for p, n in result["quarantined"].items()))
    if result["claims"]:
        print("  claims filed: " + ", ".join(f"{state} {n}" for state, n in result["claims"].items()))
    if html:
        print(f"  written to {html}")


def statement_reconcile_command(args) -> int:
    from accrual_dev.books.report import month_bounds
    from accrual_dev.books.statement import column_map, describe, json_text, reconcile_file
    from accrual_dev.commands import OperatorError, _settings

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
        _store(_settings()), path, partner=args.partner, month=args.month, tolerance=tolerance, columns=columns
    )
    if args.json:
        print(json_text(result))
    else:
        print("\n".join(describe(result)))
    return 0 if result["agree"] else 1
