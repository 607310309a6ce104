"""`accrual claim file | show | list | match | resolve`: missing-cashback claims, through the claims service."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import (
    NotFound,
    command_group,
    describe_validation_error,
    json_option,
    now,
    now_option,
    print_json,
    settings,
)

if TYPE_CHECKING:
    from accrual.domain.claims import Claim
    from accrual.service.claims import ClaimService

CLAIM_STATES = ("open", "matched", "resolved", "escalated", "needs_review", "rejected")


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, claim = command_group(subparsers, "claim", "missing-cashback claims")
    file_parser = claim.add_parser(
        "file",
        help="file a shopper's claim for an order that never showed up, and match it at once",
        description="Store a missing-cashback claim and match it against the reported orders by the store's or the "
        "partner's order number (an unattributed order also by time and amount). The same shopper and "
        "order number again return the existing claim. Exit 2 when the claim is invalid or refused (the "
        "order is another shopper's, or the shopper has no clicks).",
    )
    file_parser.add_argument("--user", required=True, help="the shopper (user_id)")
    file_parser.add_argument("--order", required=True, help="the order number as the shopper knows it")
    file_parser.add_argument("--ordered-at", help="when the order was placed: ISO-8601 time with a zone, or a date")
    file_parser.add_argument("--amount", help="what the shopper paid (decimal), with --currency")
    file_parser.add_argument("--currency", help="ISO 4217 code of --amount")
    file_parser.add_argument(
        "--country", help="the shopper's country (ISO 3166 alpha-2): the language of the notifications"
    )
    json_option(file_parser)
    now_option(file_parser)
    show_parser = claim.add_parser(
        "show",
        help="one claim: state, the order it matched, what was searched",
        description="Print one claim as stored: its state, the order it matched, what was searched and when it "
        "escalates. Exit 3 when no claim has this id.",
    )
    show_parser.add_argument("claim_id", help="the claim's id, as `claim file` printed it")
    json_option(show_parser)
    list_parser = claim.add_parser(
        "list",
        help="claims, by state and/or shopper, oldest first",
        description="Every claim in a state (--state) and/or of a shopper (--user), oldest first.",
    )
    list_parser.add_argument("--state", choices=CLAIM_STATES, help="only claims in this state")
    list_parser.add_argument("--user", help="only this shopper's claims")
    json_option(list_parser)
    match_parser = claim.add_parser(
        "match",
        help="match every claim still searched now (each reconcile and "
        "confirm does it too); escalates those whose time has come",
        description="Match every open claim against the ledger now, as each reconcile and confirmation cycle does, "
        "and escalate the claims whose time has come.",
    )
    now_option(match_parser)
    resolve_parser = claim.add_parser(
        "resolve",
        help="an agent's verdict on a claim that waits: approve or reject, with a reason",
        description="Approve a claim (the ledger credits its order to the claimant and the other claims on the order "
        "are rejected) or reject it (the ledger takes it off its order), with the reason, recorded on the claim and "
        "announced to the shopper. Exit 2 when the verdict is refused (the reason on stderr): the claim is already "
        "resolved or rejected, names no order yet, or its order was posted to another shopper; 3 when no claim has "
        "this id.",
    )
    resolve_parser.add_argument("claim_id", help="the claim's id")
    verdict = resolve_parser.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", action="store_true", help="credit the claim's order to the claimant")
    verdict.add_argument("--reject", action="store_true", help="refuse the claim")
    resolve_parser.add_argument("--reason", required=True, help="why, in the agent's words (kept on the claim)")
    json_option(resolve_parser)
    now_option(resolve_parser)
    return parser


def run(args: argparse.Namespace) -> int:
    handlers = {"file": file_claim, "show": show, "list": list_claims, "match": match, "resolve": resolve}
    code = handlers[args.claim_command](args)
    if args.claim_command in ("file", "match", "resolve"):  # they may resolve, reject or escalate: notifications
        from accrual_dev.notifications import publish_written

        publish_written(settings(), now(args))
    return code


def _service() -> ClaimService:
    from accrual.composition import composition

    return composition(settings()).claims


def _print(claim: Claim, as_json: bool) -> None:
    if as_json:
        print(json.dumps(claim.to_dict(), indent=2))
        return
    line = f"claim {claim.claim_id} ({claim.user_id}, order {claim.order_number}): {claim.state.value}"
    if claim.order_key:
        line += f", order {claim.order_key}"
    if claim.reason:
        line += f" ({claim.reason})"
    print(line)
    for item in claim.searched:
        print(f"  searched {item['order'] or '-'}: {item['verdict']} - {item['why']}")


def file_claim(args: argparse.Namespace) -> int:
    """Exit 0 for a claim stored (or found: the same shopper and order number again), 2 when it is invalid or
    refused (the reason on stderr, the claim still printed when it was stored as rejected)."""
    from pydantic import ValidationError

    from accrual.domain.claims import ClaimRequest, ClaimState

    data = {"user_id": args.user, "order_number": args.order}
    if args.ordered_at:
        data["ordered_at"] = args.ordered_at
    if args.amount is not None:
        data["amount"] = args.amount
    if args.currency is not None:
        data["currency"] = args.currency
    if args.country is not None:
        data["country"] = args.country
    try:
        request = ClaimRequest.model_validate(data)
    except ValidationError as error:
        print(f"claim refused:\n{describe_validation_error(error)}", file=sys.stderr)
        return 2
    claim, created = _service().file(request, now=now(args))
    _print(claim, args.json)
    if not created:
        print(
            f"claim {claim.claim_id} was already filed on {claim.to_dict()['filed_at']}: returned as it is",
            file=sys.stderr,
        )
    if claim.state == ClaimState.REJECTED:
        print(f"claim {claim.claim_id} refused: {claim.reason}", file=sys.stderr)
        return 2
    return 0


def show(args: argparse.Namespace) -> int:
    claim = _service().show(args.claim_id)
    if claim is None:
        raise NotFound(f"no claim {args.claim_id!r}")
    _print(claim, args.json)
    return 0


def list_claims(args: argparse.Namespace) -> int:
    from accrual.domain.claims import ClaimState

    claims = _service().list_claims(state=ClaimState(args.state) if args.state else None, user_id=args.user)
    if args.json:
        print(json.dumps([claim.to_dict() for claim in claims], indent=2))
    else:
        for claim in claims:
            _print(claim, False)
    return 0


def match(args: argparse.Namespace) -> int:
    """Match every claim still searched now (what each reconcile and cycle does), printing the counts."""
    print_json(_service().sweep(now=now(args)))
    return 0


def resolve(args: argparse.Namespace) -> int:
    """An agent's verdict: exit 0 when recorded, 3 when there is no such claim, 2 when the verdict is refused."""
    try:
        claim = _service().resolve(args.claim_id, approve=args.approve, reason=args.reason, now=now(args))
    except LookupError:
        raise NotFound(f"no claim {args.claim_id!r}") from None
    except ValueError as error:
        print(f"verdict refused: {error}", file=sys.stderr)
        return 2
    _print(claim, args.json)
    return 0
