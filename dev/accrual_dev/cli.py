"""`accrual`: the operator's command line. Every command reads AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and ACCRUAL_STACK.

Each command is a thin call into the package: parse arguments, call the service, print, return the exit code.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from accrual_dev import commands as operator_commands
from accrual_dev.local import commands as stack_commands

PARTNERS = ("aliexpress", "admitad", "csv", "normalized")
FX_BAND = 2  # accrual.domain.models.FX_BAND, repeated so that --help imports nothing heavy


def parse_now(text: str) -> datetime:
    """--now T: an ISO-8601 time; a time without a zone is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=parse_now, default=None,
                        help="run the scheduled logic as of this ISO-8601 time (default: the current time)")


def _force_fx_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force-fx", action="store_true",
                        help=f"accept fx rates more than a factor of {FX_BAND} away from the current version's")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accrual", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = commands.add_parser("stack", help="the embedded local AWS stack").add_subparsers(
        dest="stack_command", required=True, metavar="STACK_COMMAND")
    up = stack.add_parser("up", help="start a local moto server, provision template.yaml on it, wait for Ctrl-C")
    up.set_defaults(handler=stack_commands.stack_up)
    provision = stack.add_parser("provision", help="provision template.yaml's resources at AWS_ENDPOINT_URL")
    provision.set_defaults(handler=stack_commands.stack_provision)

    config = commands.add_parser("config", help="the accrual configuration").add_subparsers(
        dest="config_command", required=True, metavar="CONFIG_COMMAND")
    config_load = config.add_parser(
        "load", help="validate a configuration JSON file and store it as a new version",
        description="Validate a configuration document (known partners, rates 0..max_rate, days, plausible fx rates) "
                    f"and store it as a new version that becomes current. An fx rate more than a factor of {FX_BAND} "
                    "away from the current version's rate for that currency is refused unless --force-fx --reason "
                    "TEXT. Exit 2 when the document is refused.")
    config_load.add_argument("file")
    _force_fx_option(config_load)
    config_load.add_argument("--reason", default=None,
                             help="why the forced fx rates are right (required with --force-fx; stored with the "
                                  "version)")
    config_load.set_defaults(handler=operator_commands.config_load)
    config_diff = config.add_parser(
        "diff", help="what a configuration file changes relative to the current version, without loading it",
        description="Validate a configuration document as `config load` does and print what it changes relative to "
                    "the current stored version (rate cards, promotions, rates, exclusions, fx rates, days), without "
                    "storing anything. Exit 0, or 2 when the document would be refused.")
    config_diff.add_argument("file")
    config_diff.add_argument("--json", action="store_true", help="print JSON")
    _force_fx_option(config_diff)
    config_diff.set_defaults(handler=operator_commands.config_diff)

    clicks = commands.add_parser("clicks", help="clicks recorded by the site").add_subparsers(
        dest="clicks_command", required=True, metavar="CLICKS_COMMAND")
    clicks_load = clicks.add_parser(
        "load", help="load clicks from a JSON Lines file (clicks are facts: a changed click is refused)",
        description="Load clicks, one JSON object a line. A click is a fact: a sub_id already stored with other "
                    "content is refused (the same content again counts as unchanged); a sub_id twice in the file "
                    "with different content is refused (the same content twice counts once); a click whose user "
                    "already has another account currency (stored, or earlier in the file) is refused. The valid "
                    "clicks of the file are stored even when others are refused. Prints JSON counts (stored, "
                    "unchanged, repeated, refused, refusals with reasons). Exit 0 when nothing is refused, 2 when "
                    "anything is (the valid clicks are stored all the same).")
    clicks_load.add_argument("file")
    clicks_load.set_defaults(handler=operator_commands.clicks_load)

    ingest = commands.add_parser("ingest", help="ingest a saved partner report (API page, CSV or normalised lines)")
    ingest.add_argument("file")
    ingest.add_argument("--partner", required=True, choices=PARTNERS)
    _now_option(ingest)
    ingest.set_defaults(handler=operator_commands.ingest)

    pull = commands.add_parser("pull", help="pull new and changed lines from the partners' APIs since their cursors")
    pull.add_argument("--partner", choices=("aliexpress", "admitad"), default=None)
    _now_option(pull)
    pull.set_defaults(handler=operator_commands.pull)

    confirm = commands.add_parser("confirm", help="settle, expire and reverse orders as of --now")
    _now_option(confirm)
    confirm.set_defaults(handler=operator_commands.confirm)

    run = commands.add_parser("run", help="one whole scheduled cycle: pull, reconcile, confirm, notify")
    _now_option(run)
    run.set_defaults(handler=operator_commands.run_cycle)

    balance = commands.add_parser("balance", help="a shopper's pending and confirmed balances")
    balance.add_argument("user_id")
    balance.add_argument("--json", action="store_true", help="print JSON")
    balance.set_defaults(handler=operator_commands.balance)

    explain = commands.add_parser("explain", help="why an order earns what it earns (store or partner order number)")
    explain.add_argument("order_id")
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.add_argument("--lang", choices=("en", "ru"), default="en", help="language of the plain-words answer")
    explain.set_defaults(handler=operator_commands.explain)

    review = commands.add_parser("review", help="release or decline an order held for review (multi-account coupons, "
                                                 "attribution conflict)")
    review.add_argument("order_id")
    verdict = review.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--release", dest="verdict", action="store_const", const="released",
                         help="the order earns as if it had not been held")
    verdict.add_argument("--decline", dest="verdict", action="store_const", const="declined",
                         help="the order earns nothing")
    review.add_argument("--user", help="with --release, for an order whose lines name several shoppers "
                                       "(ATTRIBUTION_CONFLICT): the shopper it belongs to")
    _now_option(review)
    review.set_defaults(handler=operator_commands.review)

    # ---- missing-cashback claims (accrual_dev.claim_commands) ----
    from accrual_dev import claim_commands

    claim = commands.add_parser("claim", help="missing-cashback claims").add_subparsers(
        dest="claim_command", required=True, metavar="CLAIM_COMMAND")
    claim_file = claim.add_parser(
        "file", help="file a shopper's claim for an order that never showed up, and match it at once",
        description="Store a missing-cashback claim and match it against the reported orders by the store's or the "
                    "partner's order number (an unattributed order also by time and amount). The same shopper and "
                    "order number again return the existing claim. Exit 2 when the claim is invalid or refused (the "
                    "order is another shopper's, or the shopper has no clicks).")
    claim_file.add_argument("--user", required=True, help="the shopper (user_id)")
    claim_file.add_argument("--order", required=True, help="the order number as the shopper knows it")
    claim_file.add_argument("--ordered-at", help="when the order was placed: ISO-8601 time with a zone, or a date")
    claim_file.add_argument("--amount", help="what the shopper paid (decimal), with --currency")
    claim_file.add_argument("--currency", help="ISO 4217 code of --amount")
    claim_file.add_argument("--country", help="the shopper's country (ISO 3166 alpha-2): the language of the "
                                              "notifications")
    claim_file.add_argument("--json", action="store_true", help="print JSON")
    _now_option(claim_file)
    claim_file.set_defaults(handler=claim_commands.claim_file)
    claim_show = claim.add_parser("show", help="one claim: state, the order it matched, what was searched")
    claim_show.add_argument("claim_id")
    claim_show.add_argument("--json", action="store_true", help="print JSON")
    claim_show.set_defaults(handler=claim_commands.claim_show)
    claim_list = claim.add_parser("list", help="claims, by state and/or shopper, oldest first")
    claim_list.add_argument("--state", choices=("open", "matched", "resolved", "escalated", "rejected"))
    claim_list.add_argument("--user", help="only this shopper's claims")
    claim_list.add_argument("--json", action="store_true", help="print JSON")
    claim_list.set_defaults(handler=claim_commands.claim_list)
    claim_match = claim.add_parser("match", help="match every claim still searched now (each reconcile and "
                                                 "confirm does it too); escalates those whose time has come")
    _now_option(claim_match)
    claim_match.set_defaults(handler=claim_commands.claim_match)
    # ---- end of missing-cashback claims ----

    audit = commands.add_parser("audit", help="recompute balances from the journal; exit 1 on any difference")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(handler=operator_commands.audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (LookupError, ValueError, OSError) as error:
        # what an operator can fix (no configuration loaded, an unreadable report, a missing file): one clear line
        print(f"accrual {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
