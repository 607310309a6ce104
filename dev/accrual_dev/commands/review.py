"""`accrual review ORDER --release|--decline`: an operator's verdict on an order held for review."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from accrual_dev.commands._common import NotFound, now, now_option, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "review",
        help="release or decline an order held for review (multi-account coupons, attribution conflict)",
        description="A verdict on an order held on_review: --release (it earns as computed; with --user for an "
        "order whose lines name several shoppers) or --decline (it earns nothing). The verdict is stored "
        "and stands. Exit 3 when no order has that number, 2 when the number names several.",
    )
    parser.add_argument(
        "order_id", help="the order held for review: the store's or partner's order number, or partner#order_id"
    )
    verdict = parser.add_mutually_exclusive_group(required=True)
    verdict.add_argument(
        "--release",
        dest="verdict",
        action="store_const",
        const="released",
        help="the order earns as if it had not been held",
    )
    verdict.add_argument(
        "--decline", dest="verdict", action="store_const", const="declined", help="the order earns nothing"
    )
    parser.add_argument(
        "--user",
        help="with --release, for an order whose lines name several shoppers "
        "(ATTRIBUTION_CONFLICT): the shopper it belongs to",
    )
    now_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual.composition import composition
    from accrual.domain.lifecycle import ReviewVerdict
    from accrual.service.reading import find_orders

    stack = settings()
    keys = find_orders(args.order_id, composition(stack).ledger_store)
    if not keys:
        raise NotFound(
            f"no order {args.order_id!r}: neither a store order number, a partner order number nor a key "
            "partner#order_id"
        )
    if len(keys) > 1:
        print(
            f"{args.order_id!r} names {len(keys)} orders ({', '.join(keys[:10])}); give one of them as "
            "partner#order_id",
            file=sys.stderr,
        )
        return 2
    ledger, at = composition(stack).ledger(), now(args)
    try:
        state = ledger.review(keys[0], ReviewVerdict(args.verdict), now=at, user_id=getattr(args, "user", None))
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    composition(stack).claims.after_orders_changed(keys, now=at)  # the claims on the order follow the verdict
    print(f"order {keys[0]}: {args.verdict}, now {state.value}")
    from accrual_dev.notifications import publish_written

    publish_written(stack, now(args))
    return 0
