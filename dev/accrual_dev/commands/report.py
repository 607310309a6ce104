"""`accrual report --month M`: the month's books from the ledger (accrual_dev.books)."""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import settings as stack_settings

if TYPE_CHECKING:
    from accrual.settings import Settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    report = subparsers.add_parser(
        "report",
        help="the month's books from the ledger: cashback by partner and state, commission, margin, exclusions, "
        "quarantines, claims, confirmation lag",
        description="The books of the orders placed in a month (UTC): orders and lines by partner and state; cashback "
        "pending, confirmed, declined and reversed (USD and per account currency); the partners' commission and the "
        "margin, and the orders paid above their commission; declined orders by reason and by shop (top 20); lines "
        "quarantined by partner; claims by state; the confirmation lag as percentiles. Read from the ledger "
        "in one scan, an order with its journal at a time; the same figures on every run over the same data.",
    )
    report.add_argument("--month", required=True, help="YYYY-MM: the month the orders were placed in (UTC)")
    report.add_argument("--partner", help="only this partner's orders, quarantines and claims")
    report.add_argument("--json", action="store_true", help="print the report as JSON (the contract)")
    report.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML file")
    report.add_argument(
        "--threads",
        type=int,
        default=2,
        metavar="N",
        help="threads of each process, each reading a share of its segments (2; the figures do not change)",
    )
    report.add_argument(
        "--processes",
        type=int,
        default=PROCESSES,
        metavar="N",
        help=f"processes reading a share of the orders each, their threads apiece ({PROCESSES}: the machine's cores, "
        "at most 4; the figures do not change)",
    )
    return report


# Reading and adding up a month's orders is mostly the CLI's own CPU (botocore reading the scan's pages, the orders'
# decisions parsed), which one process does on one core. Each process reads a share of the scan's segments; their
# books are added up here.
PROCESSES = max(1, min(4, os.cpu_count() or 1))


def _store(settings: Settings):
    from accrual.adapters.ledger_store import DynamoLedgerStore

    return DynamoLedgerStore(settings)


def run(args: argparse.Namespace) -> int:
    from accrual_dev.books.report import month_bounds, month_report

    month_bounds(args.month)  # a mistyped month is refused before any read
    settings = stack_settings()
    store = _store(settings)
    result = month_report(
        store,
        args.month,
        partner=args.partner,
        quarantined=_quarantined(settings, store.current_config().partners, args.partner),
        claims=_claims(settings),
        workers=args.threads,
        books=_books_in_parts(args.month, args.partner, args.threads, args.processes),
    )
    if args.html:
        from accrual_dev.books.html import render_html

        Path(args.html).write_text(render_html(result), encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_summary(result, args.html)
    return 0


def _books_in_parts(month: str, partner: str | None, threads: int, processes: int) -> Any:
    """The month's orders' figures read by `processes` processes (None: one, read by `month_report` itself)."""
    if processes <= 1:
        return None
    from accrual_dev.books.report import merged_books

    read_part = functools.partial(_books_part, month, partner, threads)
    # spawned, not forked: a fork would copy this process's botocore clients and their connections
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return merged_books(pool.map(read_part, [(part, processes) for part in range(processes)]))


def _books_part(month: str, partner: str | None, threads: int, part: tuple[int, int]) -> Any:
    """One process's share: the figures of the orders in its share of the scan's segments."""
    from accrual_dev.books.report import month_books

    return month_books(_store(stack_settings()), month, partner=partner, workers=threads, part=part)


NORMALIZED = "normalized"  # the quarantine of JSON Lines files, which name their partner on each line


def _quarantined(settings: Settings, partners: list[str], wanted: str | None) -> Iterator:
    """Every quarantined line of the configured partners' reports and of JSON Lines files, placed by
    `books.report.quarantined_line` (the partner and the order time it names, when readable)."""
    from accrual.composition import composition
    from accrual_dev.books.report import quarantined_line

    state = composition(settings).partner_state
    for source in sorted({*partners, NORMALIZED}):
        for record in state.quarantined(source):
            line = quarantined_line(record.partner, record.raw, record.at, partners, record.reason)
            if wanted is None or line.partner == wanted:
                yield line


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
        print("  claims: " + ", ".join(f"{state} {n}" for state, n in result["claims"].items()))
    if html:
        print(f"  written to {html}")
