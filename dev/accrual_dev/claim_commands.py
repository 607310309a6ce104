"""`accrual claim …`: file, show and list missing-cashback claims (cli.py parses; these call the claims service)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from pydantic import ValidationError

from accrual.domain.claims import Claim, ClaimRequest, ClaimState
from accrual.settings import Settings


def _service():
    from accrual.service.claims import claim_service

    return claim_service(Settings.from_env())


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


def claim_file(args) -> int:
    """Exit 0 for a claim stored (or found: the same shopper and order number again), 2 when it is invalid or
    refused (the reason on stderr, the claim still printed when it was stored as rejected)."""
    from accrual_dev.commands import describe_validation_error

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
    now = args.now or datetime.now(UTC)
    claim, created = _service().file(request, now=now)
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


def claim_show(args) -> int:
    claim = _service().show(args.claim_id)
    if claim is None:
        print(f"no claim {args.claim_id!r}", file=sys.stderr)
        return 1
    _print(claim, args.json)
    return 0


def claim_list(args) -> int:
    claims = _service().list_claims(state=ClaimState(args.state) if args.state else None, user_id=args.user)
    if args.json:
        print(json.dumps([claim.to_dict() for claim in claims], indent=2))
    else:
        for claim in claims:
            _print(claim, False)
    return 0


def claim_match(args) -> int:
    """Match every claim still searched now (what each reconcile and cycle does), printing the counts."""
    now = args.now or datetime.now(UTC)
    print(json.dumps(_service().sweep(now=now), indent=2))
    return 0
