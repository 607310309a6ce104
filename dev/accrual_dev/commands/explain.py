"""`accrual explain ORDER`: why an order earns what it earns."""

from __future__ import annotations

import argparse
from typing import Any

from accrual_dev.commands._common import NotFound, json_option, print_json, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "explain",
        help="why an order earns what it earns (store or partner order number)",
        description="An order's state, cashback and decision trail (every rule that fired with its numbers), its "
        "journal and refused transitions, and the explanation in plain words. Exit 3 when no order has "
        "that number.",
    )
    parser.add_argument(
        "order_id", help="the store's order number, the partner's order number, or the order key partner#order_id"
    )
    json_option(parser)
    parser.add_argument("--lang", choices=("en", "ru"), default="en", help="language of the plain-words answer")
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual.composition import composition
    from accrual.service.reading import explain

    root = composition(settings())
    result = explain(root.ledger_store, args.order_id, lang=args.lang, claims=root.claims_store)
    if result is None:
        raise NotFound(f"no order {args.order_id!r} (neither a store nor a partner order number)")
    if args.json:
        print_json(result)
    else:
        # the explanation's first sentence gives the amounts: the state is what it does not say
        print(f"order {result['order_id']} ({result['partner']}): {result['state']}")
        print(result["explanation"])
    return 0
