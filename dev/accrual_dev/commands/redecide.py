"""`accrual redecide`: decide orders again under the current configuration (after a fixed configuration, for
instance), through the ledger's normal path. Orders holding confirmed money, reversed or moved are never touched."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import (
    NotFound,
    UsageError,
    json_option,
    now,
    now_option,
    parse_now,
    print_json,
    progress_option,
    settings,
)

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
        "time the order was placed (--since/--until, on its ordered_at), narrowed (or, alone, chosen among all "
        "orders) by --shop, --category and --reason. The orders whose money or state changes are listed first, "
        "the others counted (--all lists them too). Exit 1 when an order could not be decided, 2 on a usage "
        "error, 3 when a named order does not exist.",
    )
    parser.add_argument(
        "orders", nargs="*", metavar="ORDER", help="orders as partner#order_id, or a store or partner order number"
    )
    parser.add_argument("--user", default=None, help="every order of this shopper")
    parser.add_argument("--since", type=parse_now, default=None, help="orders placed at or after this ISO-8601 time")
    parser.add_argument("--until", type=parse_now, default=None, help="orders placed before this ISO-8601 time")
    parser.add_argument(
        "--shop", action="append", default=[], metavar="SHOP", help="only orders with a line of this shop (repeatable)"
    )
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="CATEGORY",
        help="only orders with a line of this category (repeatable)",
    )
    parser.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="CODE",
        help="only orders whose decision has this reason code, e.g. SHOP_EXCLUDED (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    parser.add_argument(
        "--all",
        action="store_true",
        help="list every order (default: those whose money or state changes; the rest as counts)",
    )
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

    if not (args.orders or args.user or args.since or args.until or args.shop or args.category or args.reason):
        print(
            "accrual redecide: name the orders (partner#order_id), or give --user, --since/--until, --shop, "
            "--category and/or --reason",
            file=sys.stderr,
        )
        return 2
    if args.since and args.until and args.since >= args.until:
        raise UsageError(
            f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}: no order was placed "
            "in that range"
        )
    reasons = _reason_codes(args.reason)
    stack = settings()
    store = DynamoLedgerStore(stack)
    if args.orders or args.user or args.since or args.until:
        keys = select_orders(store, orders=args.orders, user=args.user, since=args.since, until=args.until)
    else:
        keys = store.orders_between(None, None)  # --shop, --category or --reason alone: among all orders
    if args.shop or args.category or reasons:
        keys = [key for key in keys if _matches(store, key, set(args.shop), set(args.category), reasons)]
    ledger = Ledger(store)
    claims = composition(stack).claims
    at = now(args)
    results: list[Redecided] = []
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
    results.sort(key=lambda item: not changes_money(item))  # stable: money first, each group in key order
    money = sum(1 for item in results if changes_money(item))
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "config_version": ledger.config.version,
                "selected": len(keys),
                "changing_money": money,
                "counts": counts.as_dict(),
                "orders": [{**item.to_dict(), "changes_money": changes_money(item)} for item in results],
            }
        )
    else:
        for item in results:
            if args.all or changes_money(item) or item.outcome in ("failed", "not_found"):
                print(_describe(item, args.dry_run))
        print(_summary(results, len(keys), money, args, ledger.config.version))
    return 1 if counts.unsettled else 0


def changes_money(item: Redecided) -> bool:
    """The order's cashback or its state (what it holds) changes, not only the version or the reason codes."""
    return item.outcome == "changed" and (
        item.cashback_usd_from != item.cashback_usd_to or item.state_from != item.state_to
    )


def _summary(results: list[Redecided], selected: int, money: int, args: argparse.Namespace, version: str) -> str:
    verb = "would change" if args.dry_run else "changed"
    changed = sum(1 for item in results if item.outcome == "changed")
    text = f"{selected} orders selected, {changed} {verb} under configuration {version}: {money} in money or state"
    if changed - money:
        text += f", {changed - money} only in configuration version or reason codes"
    outcomes = Counter(item.outcome for item in results if item.outcome in ("unchanged", "skipped_confirmed"))
    if outcomes["unchanged"]:
        text += f"; {outcomes['unchanged']} unchanged"
    if outcomes["skipped_confirmed"]:
        text += f"; {outcomes['skipped_confirmed']} hold confirmed money or are final and stay as they are"
    if not args.all and changed - money:
        text += " (--all lists every order)"
    return text


def _reason_codes(given: list[str]) -> set[str]:
    """The reason codes of --reason, each a code the rules know (a typo gets the code it resembles)."""
    from accrual.domain.decision import Code

    known = sorted(code.value for code in Code)
    for code in given:
        if code not in known:
            close = difflib.get_close_matches(code.upper(), known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(f"--reason {code}: not a reason code{hint}")
    return set(given)


def _matches(store: LedgerStore, key: str, shops: set[str], categories: set[str], reasons: set[str]) -> bool:
    """The order has a line of one of the shops and one of the categories, and one of the reason codes (each only
    when asked for)."""
    from accrual.service.ledger import load_order

    view = load_order(key, store)
    lines = view.lines.values()
    if shops and not any(line.shop_id in shops for line in lines):
        return False
    if categories and not any(line.category_id in categories for line in lines):
        return False
    decided = json.loads(view.decision_json).get("reasons", []) if view.decision_json else []
    return not reasons or bool(reasons & set(decided))


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
                raise NotFound(f"no order {number!r} (give it as partner#order_id, or a store or partner order number)")
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
