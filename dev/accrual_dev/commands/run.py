"""`accrual run`: one whole scheduled cycle (pull, reconcile, confirm, notify), in this process or, with --workers N,
the deployed way."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

from accrual_dev.commands import _fanout
from accrual_dev.commands._common import (
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
        "run",
        help="one whole scheduled cycle: pull, reconcile, confirm, notify",
        description="What the scheduled function does: pull every partner, reconcile, confirm what is due, and "
        "publish the notifications left in the outbox. On the local stack (`make local`) the partners "
        "are the simulator. Prints JSON counts; exit 1 when a partner failed or an order could not be "
        "settled.",
    )
    now_option(parser)
    workers_option(parser)
    progress_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.workers is not None:
        return run_workers(args)
    from accrual.composition import composition
    from accrual.service.cycle import run_cycle
    from accrual_dev.progress import ProgressSink

    root, at = composition(settings()), now(args)
    label = "run: pull partners"
    sink = ProgressSink(root.concurrent_ledger(), at, claims=root.claims, enabled=args.progress, label=label)
    try:
        summary = run_cycle(
            root.puller, root.concurrent_ledger(), root.claims, root.relay, now=at, sink=sink, grace=root.outbox_grace
        ).as_dict()
    except KeyboardInterrupt:
        return interrupted(
            sink,
            "run",
            "the cursors stand after the last reconciled page and nothing was confirmed: the next run goes on from "
            "there",
        )
    finally:
        sink.close()
    print_json(summary)
    return 0 if summary["ok"] else 1


def run_workers(args: argparse.Namespace) -> int:
    """One whole cycle as the deployed functions run it: pull (pages handed on and reconciled), confirm (shards
    handed on and settled), then the outbox published."""
    from accrual.composition import composition
    from accrual.service.fanout import check_workers

    stack, at, workers = settings(), now(args), check_workers(args.workers)
    pulled = _fanout.pull(stack, at, None, workers)
    confirmed = _fanout.confirm(stack, at, workers)
    grace = timedelta(seconds=int(os.environ.get("OUTBOX_SWEEP_GRACE_SECONDS", "0")))
    published = composition(stack).relay.publish_unpublished(now=at, grace=grace)
    unsettled = _fanout.unsettled(confirmed) + sum(
        _fanout.unsettled(partner.get("reconciled", {})) for partner in pulled["partners"].values()
    )
    failures = pulled["fanout"].get("unit_failures", 0) + confirmed["fanout"].get("unit_failures", 0)
    summary = {
        "run_id": pulled["run_id"],
        "now": at.isoformat(),
        "pull": pulled,
        "confirm": confirmed,
        "notify": published,
        "orders_unsettled": unsettled,
        "unit_failures": failures,
        "ok": not pulled["failed"] and not unsettled and not failures,
    }
    print_json(summary)
    return 0 if summary["ok"] else 1
