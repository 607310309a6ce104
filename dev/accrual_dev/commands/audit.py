"""`accrual audit`: every balance, holding and decision recomputed from the journal and the facts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from accrual_dev.commands._common import json_option, print_json, progress_option, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "audit",
        help="recompute balances from the journal; exit 1 on any difference",
        description="Check every balance against the journal, every order's holding, every decision recomputed from "
        "its lines, clicks and configuration version, and each partner line in exactly one order. Exit 1 "
        "on any difference, each naming the order, shopper or line.",
    )
    json_option(parser)
    progress_option(parser)
    return parser


class _Watched:
    """The ledger's store as the audit reads it: every item scanned is a step of the bar and a place to stop."""

    def __init__(self, store: Any, progress: Any) -> None:
        self._store, self._progress = store, progress

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not name.startswith("scan_"):
            return found
        return lambda *args, **kwargs: self._progress.each(found(*args, **kwargs))


def run(args: argparse.Namespace) -> int:
    from accrual.adapters.ledger_store import DynamoLedgerStore
    from accrual.service.reading import audit
    from accrual_dev.progress import Progress, interrupted

    store = DynamoLedgerStore(settings())
    # a bar of the items read so far (journal entries, balances, lines, orders: their number is not known ahead)
    with Progress("audit", unit="item", enabled=False if args.json else args.progress) as progress:
        try:
            result = audit(_Watched(store, progress))
        except KeyboardInterrupt:
            return interrupted("audit", {"items_read": progress.done}, "nothing was written: audit again")
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
