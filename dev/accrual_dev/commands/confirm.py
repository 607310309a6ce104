"""`accrual confirm`: settle, expire and reverse what is due as of --now, in this process or, with --workers N, the
deployed way."""

from __future__ import annotations

import argparse
from typing import Any

from accrual_dev.commands import _fanout
from accrual_dev.commands._common import exit_code, now, now_option, print_json, settings, workers_option


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "confirm",
        help="settle, expire and reverse orders as of --now, then match the claims",
        description="Look at every order due by --now (the due index): settle what the partner settled and the hold "
        "has passed, expire what stayed unpaid, reverse what was invalidated after confirmation. Prints "
        "JSON counts; exit 1 when an order could not be settled (the counts say which).",
    )
    now_option(parser)
    workers_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.workers is not None:
        return run_workers(args)
    from accrual.service.claims import claim_service
    from accrual.service.ledger import Ledger

    stack, at = settings(), now(args)
    ledger = Ledger(stack)
    counts = ledger.confirm(now=at)
    for name, value in claim_service(stack, ledger).sweep(now=at).items():  # the claims step after the ledger's
        counts[name] = counts.get(name, 0) + value
    print_json(counts)
    return exit_code(counts)


def run_workers(args: argparse.Namespace) -> int:
    from accrual.service.fanout import check_workers

    counts = _fanout.confirm(settings(), now(args), check_workers(args.workers))
    print_json(counts)
    return 1 if _fanout.unsettled(counts) or counts["fanout"].get("unit_failures") else 0
