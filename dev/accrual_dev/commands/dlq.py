"""`accrual dlq list | redrive`: units of work (pages, due shards) that failed every attempt."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from accrual_dev.commands import _fanout
from accrual_dev.commands._common import command_group, json_option, print_json, settings

if TYPE_CHECKING:
    from accrual.settings import Settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, dlq = command_group(
        subparsers,
        "dlq",
        "units of work (pages, due shards) that failed every attempt",
        description="The work dead-letter queue: units (archived pages, due-index shards) that failed every receive "
        "by the reconcile workers.",
    )
    list_parser = dlq.add_parser(
        "list",
        help="the work dead-letter queue's units with the reason each failed",
        description="Every unit in the work dead-letter queue with its message id, the unit, the reason its last "
        "attempt failed and when. Listing moves nothing.",
    )
    json_option(list_parser)
    redrive_parser = dlq.add_parser(
        "redrive",
        help="move them back to the work queue (after fixing the cause)",
        description="Move every unit of the work dead-letter queue back to the work queue; with --workers N, run "
        "them at once with the reconcile handler on N threads.",
    )
    redrive_parser.add_argument(
        "--workers", type=int, default=0, metavar="N", help="then run them with N workers (default: only move them)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    return {"list": list_units, "redrive": redrive}[args.dlq_command](args)


def dead_letters(stack: Settings) -> list[dict[str, Any]]:
    """Every message in the work dead-letter queue, with the reason its last attempt failed. The messages are
    received and made visible again at once: listing moves nothing."""
    from accrual.composition import composition

    root = composition(stack)
    queue = root.dead_letters
    seen: dict[str, dict[str, Any]] = {}
    handles = []
    while True:
        messages = queue.receive(limit=10, visibility_timeout=30)
        fresh = [message for message in messages if message.message_id not in seen]
        if not fresh:
            break
        for message in fresh:
            handles.append(message.receipt_handle)
            failure = root.work.failure_reason(message.message_id)
            try:
                unit = json.loads(message.body)
            except ValueError:
                unit = {"body": message.body}
            seen[message.message_id] = {
                "message_id": message.message_id,
                "unit": unit,
                "reason": failure.reason if failure else None,
                "failed_at": failure.at if failure else None,
                "receipt_handle": message.receipt_handle,
            }
    queue.release(handles)
    return list(seen.values())


def list_units(args: argparse.Namespace) -> int:
    letters = dead_letters(settings())
    if args.json:
        print_json([{key: value for key, value in letter.items() if key != "receipt_handle"} for letter in letters])
    else:
        for letter in letters:
            unit = letter["unit"]
            what = unit.get("key") or f"confirm shard {unit.get('shard')}"
            print(
                f"{letter['message_id']}  {unit.get('kind')}  {what}  now={unit.get('now')}\n"
                f"    {letter['reason'] or '(no reason recorded)'}  [{letter['failed_at'] or '?'}]"
            )
        print(f"{len(letters)} unit(s) in the dead-letter queue", file=sys.stderr)
    return 0


def redrive(args: argparse.Namespace) -> int:
    """Move the dead-letter queue's units back to the work queue (after the cause is fixed) and, with --workers,
    run them. (SQS's own message-move task does the same on AWS; this works on every emulator.)"""
    from accrual.composition import composition
    from accrual.service.work import WorkUnit

    stack = settings()
    root = composition(stack)
    work, dead = root.work_queue, root.dead_letters
    moved = 0
    runs: set[str] = set()
    while True:
        received = dead.receive(limit=10, visibility_timeout=30)
        if not received:
            break
        for message in received:
            try:
                unit = WorkUnit.model_validate_json(message.body)
            except ValueError:
                unit = None  # not a unit: moved back as it is, the workers will say why
            if unit is not None:
                root.work.handed_on_again(unit)
                runs.add(unit.run_id)
            work.send([message.body])
            dead.delete([message.receipt_handle])
            moved += 1
    result: dict[str, Any] = {"redriven": moved}
    if args.workers and moved:
        # every unit the runs ever logged: the ones redriven are waited for again, the others are done
        drained = _fanout.drain(stack, args.workers, {run: len(root.work.outcomes(run)) for run in runs})
        result["fanout"] = drained["fanout"]
        result["reconciled"] = _fanout.sum_counts(
            [item for item in drained["results"] if item.get("kind") == "page"], "reconciled"
        )
        from datetime import UTC, datetime

        from accrual_dev.notifications import publish_written

        result["notified"] = publish_written(stack, datetime.now(UTC))
    print_json(result)
    return 1 if result.get("fanout", {}).get("unit_failures") else 0
