"""`accrual notifications tail`: what the shoppers' subscribers receive, read from the stack's subscriber queue (or
the outbox), selected by type and shopper."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from accrual_dev.commands._common import command_group, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, notifications = command_group(
        subparsers,
        "notifications",
        "what the shoppers' subscribers receive",
        description="The notifications the stack published (one message per change a shopper should know about).",
    )
    tail = notifications.add_parser(
        "tail",
        help="show the notifications published, oldest first (the subscriber queue, or the outbox)",
        description="Show what a subscriber of the notifications topic receives: the stack's subscriber queue "
        "(LocalNotificationsQueue, subscribed to every notification), oldest first. A message shown is taken off "
        "the queue, as a subscriber takes it, so the next tail shows what arrived since; messages --type or --user "
        "leave out stay on the queue. --source outbox reads the outbox table instead and takes nothing: the "
        "notifications written and not yet published (one leaves the outbox once published). On a local stack the commands that write notifications "
        "(ingest, confirm, claim, review, redecide, run) publish them as they finish; deployed, the relay does.",
    )
    tail.add_argument("--follow", "-f", action="store_true", help="keep showing new notifications until Ctrl-C")
    tail.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="TYPE",
        help="only this event type (cashback.confirmed), or a family (claim: every claim.*); repeatable",
    )
    tail.add_argument(
        "--user", dest="users", action="append", default=[], metavar="USER", help="only this shopper's; repeatable"
    )
    tail.add_argument(
        "--source",
        choices=("queue", "outbox"),
        default="queue",
        help="queue: what a subscriber receives, taken as shown (default); outbox: every notification written, "
        "nothing taken",
    )
    tail.add_argument("--json", action="store_true", help="one JSON message body a line (JSON Lines)")
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual_dev.notifications import Notification, Selection, describe, tail

    def show(message: Notification) -> None:
        if args.json:
            print(json.dumps(message.body, ensure_ascii=False, sort_keys=True), flush=True)
        else:
            unpublished = " (not published yet)" if args.source == "outbox" else ""  # all the outbox holds
            print(describe(message) + unpublished, flush=True)

    selection = Selection(tuple(args.types), tuple(args.users))
    try:
        shown = tail(settings(), source=args.source, selection=selection, follow=args.follow, show=show)
    except KeyboardInterrupt:  # the end of a --follow
        return 0
    if not args.json:
        print(f"{shown} notification(s)", file=sys.stderr)
    return 0
