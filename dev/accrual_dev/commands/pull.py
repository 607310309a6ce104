"""`accrual pull`: new and changed lines from the partners' APIs since their cursors, in this process or, with
--workers N, the deployed way."""

from __future__ import annotations

import argparse
from typing import Any

from accrual_dev.commands import _fanout
from accrual_dev.commands._common import (
    exit_code,
    interrupted,
    now,
    now_option,
    print_json,
    progress_option,
    settings,
    workers_option,
)


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pull",
        help="pull new and changed lines from the partners' APIs since their cursors",
        description="Pull each API partner (AliExpress, Admitad) from its cursor (a first pull reads back "
        "PULL_INITIAL_LOOKBACK_DAYS) up to --now, page by page: archive, read, quarantine, reconcile, "
        "then move the cursor. Endpoints come from the SSM parameters /<stack>/partners/<partner>/"
        "endpoint, credentials from the secrets <stack>/partners/<partner>. Prints JSON counts.",
    )
    parser.add_argument(
        "--partner",
        choices=("aliexpress", "admitad"),
        default=None,
        help="pull only this partner (default: every partner with an endpoint parameter)",
    )
    now_option(parser)
    progress_option(parser)
    workers_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.workers is not None:
        return run_workers(args)
    from accrual.composition import composition
    from accrual_dev.progress import ProgressSink

    root = composition(settings())
    at = now(args)
    label = f"pull {args.partner or 'partners'}"
    sink = ProgressSink(root.concurrent_ledger(), at, claims=root.claims, enabled=args.progress, label=label)
    try:
        pulled = root.puller.pull_all(now=at, sink=sink, partners=[args.partner] if args.partner else None)
    except KeyboardInterrupt:
        return interrupted(
            sink, "pull", "the cursors stand after the last reconciled page: the next pull goes on from there"
        )
    finally:
        sink.close()
    from accrual_dev.notifications import publish_written

    print_json({**pulled.as_dict(), "notified": publish_written(root.settings, at)})
    if pulled.failed:
        return 1
    return exit_code(pulled.reconciled.as_dict())


def run_workers(args: argparse.Namespace) -> int:
    from accrual.service.fanout import check_workers
    from accrual_dev.notifications import publish_written

    stack, at = settings(), now(args)
    summary = _fanout.pull(stack, at, args.partner, check_workers(args.workers))
    print_json({**summary, "notified": publish_written(stack, at)})
    if summary["failed"]:
        return 1
    unsettled = sum(_fanout.unsettled(result.get("reconciled", {})) for result in summary["partners"].values())
    return 1 if unsettled or summary["fanout"].get("unit_failures") else 0
