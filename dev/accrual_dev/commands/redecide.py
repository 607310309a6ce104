"""`accrual redecide`: decide orders again under the current configuration (after a fixed configuration, for
instance), through the ledger's normal path. Orders holding confirmed money, reversed or moved are never touched."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import json_option, now, now_option, parse_now, progress_option, settings

REDECIDE_STEP = 50  # orders decided again between two looks at Ctrl-C

if TYPE_CHECKING:
    from accrual.ports import LedgerStore
    from accrual.service.ledger import Redecided


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "redecide",
        help="decide orders not yet confirmed again under the current configuration",
        description="Decide orders again under the current configuration version, through the ledger's normal "
        "path (journal, balances and notifications in one transaction; the trail names the version "
        "that decided). Orders holding confirmed money, reversed or moved are never touched. Select "
        "orders by ORDER (partner#order_id, or a store or partner order number), by --user, or by the "
        "time the order was placed (--since/--until, on its ordered_at). Exit 1 when an order could "
        "not be decided, 2 on a usage error.",
    )
    parser.add_argument(
        "orders", nargs="*", metavar="ORDER", help="orders as partner#order_id, or a store or partner order number"
    )
    parser.add_argument("--user", default=None, help="every order of this shopper")
    parser.add_argument("--since", type=parse_now, default=None, help="orders placed at or after this ISO-8601 time")
    parser.add_argument("--until", type=parse_now, default=None, help="orders placed before this ISO-8601 time")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    json_option(parser)
    now_option(parser)
    progress_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual.adapters.ledger_store import DynamoLedgerStore
    from accrual.composition import composition
    from accrual.service.counts import RunCounts
    from accrual.service.ledger import Ledger
    from accrual_dev.notifications import publish_written
    from accrual_dev.progress import Progress, interrupted

    if not (args.orders or args.user or args.since or args.until):
        print(
            "accrual redecide: name the orders (partner#order_id), or give --user and/or --since/--until",
            file=sys.stderr,
        )
        return 2
    stack = settings()
    store = DynamoLedgerStore(stack)
    keys = select_orders(store, orders=args.orders, user=args.user, since=args.since, until=args.until)
    ledger = Ledger(stack, store=store)
    claims = composition(stack).claims
    at = now(args)
    results: list = []
    counts = RunCounts()
    # a step of orders at a time: a bar on a terminal (not with --json), and Ctrl-C between two steps
    with Progress("redecide", total=len(keys), enabled=False if args.json else args.progress) as progress:
        try:
            for start in range(0, len(keys), REDECIDE_STEP):
                progress.check()
                done, tally = ledger.redecide(keys[start : start + REDECIDE_STEP], now=at, dry_run=args.dry_run)
                if not args.dry_run:  # the claims recorded on the orders follow what the ledger decided
                    claims.after_orders_changed([item.order for item in done if item.outcome == "changed"], now=at)
                results += done
                counts.merge(tally)
                progress.step(len(done))
        except KeyboardInterrupt:
            notified = None if args.dry_run else publish_written(stack, at)
            return interrupted(
                "redecide",
                {"selected": len(keys), "decided": len(results), "counts": counts.as_dict(), "notified": notified},
                "the same command again goes on: an order decided again is unchanged the second time",
            )
    if not args.dry_run:
        publish_written(stack, at)
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": args.dry_run,
                    "config_version": ledger.config.version,
                    "selected": len(keys),
                    "counts": counts.as_dict(),
                    "orders": [item.to_dict() for item in results],
                },
                indent=2,
            )
        )
    else:
        for item in results:
            print(_describe(item, args.dry_run))
        changed = sum(1 for item in results if item.outcome == "changed")
        print(
            f"{len(keys)} orders selected, {changed} {'would change' if args.dry_run else 'changed'} under "
            f"configuration {ledger.config.version}"
        )
    return 1 if counts.unsettled else 0


def select_orders(
    store: LedgerStore, *, orders: list[str], user: str | None, since: datetime | None, until: datetime | None
) -> list[str]:
    """The orders named (`partner#order_id`, or a store or partner order number), else those of the shopper and/or
    those ordered in [since, until) (the order's `ordered_at`: the earliest order time of its lines)."""
    from accrual.ports import utc_text

    if orders:
        keys: set[str] = set()
        for number in orders:
            found = store.find_orders(number)
            if not found:
                raise LookupError(
                    f"no order {number!r} (give it as partner#order_id, or a store or partner order number)"
                )
            keys.update(found)
        return sorted(keys)
    in_range: set[str] | None = None
    if since is not None or until is not None:
        in_range = set(store.orders_between(utc_text(since) if since else None, utc_text(until) if until else None))
    if user is not None:
        mine = set(store.orders_of_user(user))
        return sorted(mine if in_range is None else mine & in_range)
    return sorted(in_range or ())


def _describe(item: Redecided, dry_run: bool) -> str:
    if item.outcome == "not_found":
        return f"{item.order}: no such order"
    if item.outcome == "skipped_confirmed":
        return f"{item.order}: {item.state_from}, holds confirmed money or is final: left as it is"
    if item.outcome == "failed":
        return f"{item.order}: could not be decided (see the log); nothing written"
    if item.outcome == "unchanged":
        return f"{item.order}: {item.state_from}, unchanged under {item.config_version_to}"
    verb = "would change" if dry_run else "changed"
    why = [f"decided by {item.config_version_to} (was {item.config_version_from})"]
    if item.reasons_removed:
        why.append("no longer " + ", ".join(item.reasons_removed))
    if item.reasons_added:
        why.append("now " + ", ".join(item.reasons_added))
    return (
        f"{item.order}: {verb} {item.state_from} → {item.state_to}, {item.cashback_usd_from} → "
        f"{item.cashback_usd_to} USD; {'; '.join(why)}"
    )
