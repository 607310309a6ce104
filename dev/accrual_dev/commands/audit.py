"""`accrual audit`: every balance, holding and decision recomputed from the journal and the facts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from accrual_dev.commands._common import json_option, print_json, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "audit",
        help="recompute balances from the journal; exit 1 on any difference",
        description="Check every balance against the journal, every order's holding, every decision recomputed from "
        "its lines, clicks and configuration version, and each partner line in exactly one order. Exit 1 "
        "on any difference, each naming the order, shopper or line.",
    )
    json_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual.service.reading import audit

    result = audit(settings())
    if args.json:
        print_json(result)
    else:
        print(
            f"{result['orders']} orders, {result['balances']} balances, {result['journal_entries']} journal entries: "
            + ("all agree" if result["ok"] else f"{len(result['differences'])} differences")
        )
        for difference in result["differences"]:
            print("  " + json.dumps(difference))
        for user_id in result["negative_confirmed_balances"]:
            print(f"  negative confirmed balance: {user_id}")
    return 0 if result["ok"] else 1
