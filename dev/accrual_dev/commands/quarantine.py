"""`accrual quarantine list | replay`: the report lines that could not be taken in, and taking them in again after a
fix (a configuration, a partner's CSV column map)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from accrual_dev.commands._common import command_group, json_option, now, now_option, parse_now, print_json, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, quarantine = command_group(
        subparsers,
        "quarantine",
        "report lines that could not be taken in, and replaying them after a fix",
        description="Every report line that could not be read, or that the configuration refused, is quarantined "
        "with its reason, its whole raw text kept. After fixing the cause (a configuration version that lists the "
        "partner or the rate, a CSV column map), replay the lines: they go through the normal ingest path.",
    )
    listing = quarantine.add_parser(
        "list",
        help="the quarantined lines waiting, oldest first",
        description="The quarantined lines still waiting (not replayed), oldest first: id, partner, when, the "
        "source and line, the reason and the start of the raw line.",
    )
    listing.add_argument("--partner", default=None, help="only this partner's lines")
    listing.add_argument(
        "--since", type=parse_now, default=None, metavar="TIME", help="only lines quarantined at or after this time"
    )
    listing.add_argument("--all", action="store_true", help="also the lines already replayed")
    json_option(listing)
    replay = quarantine.add_parser(
        "replay",
        help="read quarantined lines again (after a fix) and reconcile what is accepted now",
        description="Read the lines named by ID (from `quarantine list`), or every waiting line of --partner, "
        "again: whole, in the format they arrived in, with today's column map and configuration, and reconcile "
        "what is accepted through the ledger as an ingest does. A line accepted is marked replayed and leaves "
        "the list; a line refused again stays, with its reason now. Replaying again changes nothing. Prints JSON "
        "counts (selected = accepted + still_quarantined); exit 1 when an order could not be settled.",
    )
    replay.add_argument("ids", nargs="*", metavar="ID", help="quarantined lines by id (see quarantine list)")
    replay.add_argument("--partner", default=None, help="every waiting line of this partner")
    replay.add_argument("--dry-run", action="store_true", help="say what would be accepted; write nothing")
    now_option(replay)
    return parser


def run(args: argparse.Namespace) -> int:
    return {"list": list_lines, "replay": replay_lines}[args.quarantine_command](args)


def list_lines(args: argparse.Namespace) -> int:
    from accrual.composition import composition
    from accrual.service.quarantine import describe, waiting

    state = composition(settings()).partner_state
    records = [describe(record) for record in waiting(state, partner=args.partner, since=args.since, replayed=args.all)]
    if args.json:
        print_json(records)
        return 0
    for record in records:
        raw = " ".join(record["raw"].split())
        print(
            f"{record['id']}  {record['partner']}  {record['at']}  {record['source']} line {record['position']}"
            + (f"  (replayed {record['replayed_at']})" if record["replayed_at"] else "")
            + f"\n    {record['reason']}\n    {raw[:150]}{'…' if len(raw) > 150 else ''}"
        )
    print(f"{len(records)} quarantined line(s)", file=sys.stderr)
    return 0


def replay_lines(args: argparse.Namespace) -> int:
    from accrual.composition import composition
    from accrual.service.quarantine import QuarantineReplay, waiting
    from accrual_dev.commands._common import OperatorError, exit_code
    from accrual_dev.notifications import publish_written

    if not args.ids and not args.partner:
        raise OperatorError("name the lines to replay: their ids (see accrual quarantine list) or --partner P")
    stack, at = settings(), now(args)
    root = composition(stack)
    records = waiting(root.partner_state, partner=args.partner, ids=args.ids)
    result = QuarantineReplay(root.ingest, root.sink(at), at).replay(records, dry_run=args.dry_run)
    if not args.dry_run:
        result["notified"] = publish_written(stack, at)
    print_json(result)
    return exit_code(result["reconciled"])
