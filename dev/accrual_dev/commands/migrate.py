"""`accrual migrate`: bring a stack's stored data to what this version reads, resumably."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from accrual_dev.commands._common import json_option, print_json, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "migrate",
        help="claim every stored partner line, then pack every order item (once per stack; resumable)",
        description="Two steps, in turn. Line claims: give every line item of the orders table its partner line's "
        "claim, which the ledger reads in batches instead of querying the by_line index once per new line; when "
        "every line is claimed the stack records it and the ledger stops asking the index. Packed orders: write "
        "every order item of the earlier form (its decision and each line an item of their own) again as one item "
        "with its lines and decision packed in it. Each scan's position is saved after each page: a run stopped "
        "anywhere (Ctrl-C, --max-pages, which counts each step's pages) goes on from there when run again, and a "
        "page done twice changes nothing. Safe while the ledger runs (it claims the lines it places and packs the "
        "orders it changes itself).",
    )
    parser.add_argument("--page-size", type=int, default=1000, help="items scanned per page (default 1000)")
    parser.add_argument("--max-pages", type=int, help="stop after this many pages (run again to go on)")
    json_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual.adapters.migrations import MigrationResult, migrate_line_claims, migrate_packed_orders
    from accrual.composition import composition

    stack = settings()
    now = composition(stack).clock.now()
    result = migrate_line_claims(stack, now=now, page_size=args.page_size, max_pages=args.max_pages)
    packed = MigrationResult(finished=False)
    if result.finished:
        packed = migrate_packed_orders(stack, now=now, page_size=args.page_size, max_pages=args.max_pages)
    if args.json:
        print_json({**asdict(result), "packed_orders": asdict(packed)})
        return 0
    if result.already_done:
        print("line claims: already complete")
    else:
        state = "complete" if result.finished else "stopped (run again to go on)"
        resumed = ", resumed from the saved position" if result.resumed else ""
        print(f"line claims {state}: {result.pages} pages, {result.lines} line items, {result.claims} claims{resumed}")
    if packed.already_done:
        print("packed orders: already complete")
    elif result.finished:
        state = "complete" if packed.finished else "stopped (run again to go on)"
        resumed = ", resumed from the saved position" if packed.resumed else ""
        print(f"packed orders {state}: {packed.pages} pages, {packed.lines} orders packed{resumed}")
    return 0
