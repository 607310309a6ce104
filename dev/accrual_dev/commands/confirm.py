"""`accrual confirm`: settle, expire and reverse what is due as of --now, in this process or, with --workers N, the
deployed way."""

from __future__ import annotations

import argparse
from typing import Any

from accrual_dev.commands import _fanout
from accrual_dev.commands._common import (
    exit_code,
    now,
    now_option,
    print_json,
    progress_option,
    settings,
    workers_option,
)

# due orders confirmed in one step, the ledger's window unless set (a shopper's orders in one step share
# transactions); Ctrl-C stops between steps
CONFIRM_STEP: int | None = None


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "confirm",
        help="settle, expire and reverse orders as of --now, then match the claims",
        description="Look at every order due by --now (the due index): settle what the partner settled and the hold "
        "has passed, expire what stayed unpaid, reverse what was invalidated after confirmation. Prints "
        "JSON counts; exit 1 when an order could not be settled (the counts say which).",
    )
    now_option(parser)
    progress_option(parser)
    workers_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """The due orders a step at a time, with a bar on a terminal (the due index counted first, for its total); Ctrl-C
    stops between two steps with the counts so far. What was written is then published (on a local stack)."""
    if args.workers is not None:
        return run_workers(args)
    from accrual.composition import composition
    from accrual.service.ledger import CONFIRM_TOGETHER
    from accrual_dev.notifications import PublishingWhileWriting
    from accrual_dev.progress import Progress, count, in_steps, interrupted

    stack, at = settings(), now(args)
    root = composition(stack)
    ledger = root.ledger()
    shown = Progress("confirm", enabled=args.progress).enabled
    total = count(ledger.due_orders(now=at)) if shown else None
    publishing = PublishingWhileWriting(stack, at)  # on a local stack, published as it is written
    with publishing:
        with Progress("confirm", total=total, enabled=shown) as progress:
            confirmed, stopped = in_steps(
                ledger.due_orders(now=at),
                lambda keys: ledger.confirm_orders(keys, now=at),
                progress,
                size=CONFIRM_STEP or CONFIRM_TOGETHER,
            )
        counts = dict(confirmed)
        if stopped:
            return interrupted(
                "confirm",
                {**counts, "notified": publishing.done()},
                "confirming again goes on: what was confirmed is no longer due",
            )
        for name, value in root.claims.sweep(now=at).items():  # the claims step after the ledger's
            counts[name] = counts.get(name, 0) + value
        notified = publishing.done()
    print_json({**counts, "notified": notified})
    return exit_code(counts)


def run_workers(args: argparse.Namespace) -> int:
    from accrual.service.fanout import check_workers
    from accrual_dev.notifications import publish_written

    stack, at = settings(), now(args)
    counts = _fanout.confirm(stack, at, check_workers(args.workers))
    print_json({**counts, "notified": publish_written(stack, at)})
    return 1 if _fanout.unsettled(counts) or counts["fanout"].get("unit_failures") else 0
