"""`accrual balance USER`: a shopper's pending and confirmed balances."""

from __future__ import annotations

import argparse
from typing import Any

from accrual_dev.commands._common import NotFound, json_option, print_json, settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "balance",
        help="a shopper's pending and confirmed balances",
        description="A shopper's pending and confirmed cashback, in the account currency and in USD. Exit 3 when the "
        "shopper is unknown (no click and no balance).",
    )
    parser.add_argument("user_id", help="the shopper's user_id, as in the clicks")
    json_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from accrual.adapters import reference_data
    from accrual.composition import composition
    from accrual.service.reading import balance

    store = composition(settings()).ledger_store
    if store.balance(args.user_id) is None and not reference_data.account_currencies([args.user_id]):
        raise NotFound(f"no shopper {args.user_id!r}: no click and no balance names this user_id")
    result = balance(store, args.user_id)
    if args.json:
        print_json(result)
    else:
        currency = result["account_currency"]
        print(
            f"{result['user_id']}: pending {result['pending']} {currency} ({result['pending_usd']} USD), "
            f"confirmed {result['confirmed']} {currency} ({result['confirmed_usd']} USD)"
        )
    return 0
