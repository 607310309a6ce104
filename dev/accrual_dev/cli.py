"""`accrual`: the operator's command line. Every command reads AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and ACCRUAL_STACK.

Each command is a thin call into the package: parse arguments, call the service, print, return the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from datetime import UTC, datetime

from accrual_dev import commands as operator_commands
from accrual_dev.books import commands as books_commands


class _HandlersOf:
    """The handlers of a command module that only some commands need, imported when one of them runs: the fan-out,
    local-stack, redecide and claim modules together cost about 0.3 s of every other command's start."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __getattr__(self, name: str):
        def handler(args):
            return getattr(importlib.import_module(self.module), name)(args)

        handler.__qualname__ = f"{self.module}.{name}"
        return handler


fanout_commands = _HandlersOf("accrual_dev.fanout_commands")
redecide_command = _HandlersOf("accrual_dev.redecide_command")
stack_commands = _HandlersOf("accrual_dev.local.commands")
claim_commands = _HandlersOf("accrual_dev.claim_commands")

PARTNERS = ("aliexpress", "admitad", "csv", "normalized")
FX_BAND = 2  # accrual.domain.models.FX_BAND, repeated so that --help imports nothing heavy

ENVIRONMENT = """\
environment:
  AWS_ENDPOINT_URL      the local stack (`make local` / `accrual stack up` print it); unset: AWS itself
  AWS_DEFAULT_REGION    the region (default us-east-1)
  ACCRUAL_STACK         the stack name (default accrual); every resource name comes from its CloudFormation outputs
  AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   credentials as boto3 reads them
  POWERTOOLS_LOG_LEVEL  level of the JSON logs on stderr (INFO; WARNING keeps the terminal quiet)
  PULL_INITIAL_LOOKBACK_DAYS  how far a partner's first pull reads back (30)
  ACCRUAL_POLLER_PROCESSES    with --workers N: at most this many poller processes (default: one per core)
  ACCRUAL_DYNAMODB_LATENCY_MS benchmarks only: a fixed wait before every DynamoDB request (never on AWS)
exit status: 0 done, 1 an answer that needs attention (orders failed, audit differences, unknown order), 2 a mistake
in the command, a file or the environment (one line on stderr naming it), 130 interrupted (counts printed)"""

FORMATS = """\
formats (--partner):
  aliexpress   one saved response page of aliexpress.affiliate.order.listbyindex or order.list (JSON); money in the
               API's minor units (the partner option minor_units, 100 by default)
  admitad      one saved response page of statistics/actions (JSON {"results": [...], "_meta": {...}})
  csv          a CSV file with a header row; its columns are the normalised field names unless the partner's SSM
               parameter /<stack>/partners/NAME/columns maps them (JSON {"columns": {"amount": "Sale Amount", ...},
               "statuses": {...}, "delimiter": ";", "timezone": "Europe/Moscow", "usd_rates": {"RUB": "92.5"}});
               --as NAME names the partner (required)
  normalized   JSON Lines of the normalised order line, each line naming its own partner
A line that cannot be read, names a partner the configuration does not list, or a currency that is not ISO 4217 is
quarantined with its reason (the counts and `quarantine_reasons` say which line and why); the rest is reconciled."""


class OperatorParser(argparse.ArgumentParser):
    """Every command's parser: raw help texts, the environment under every --help, and a mistake in one line."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("epilog", ENVIRONMENT)
        if kwargs.get("description"):
            kwargs["description"] = _wrapped(kwargs["description"])
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _wrapped(text: str, width: int = 100) -> str:
    """Prose paragraphs filled to `width`; a paragraph with indented lines (a list of formats) is kept as written."""
    import textwrap

    paragraphs = text.split("\n\n")
    return "\n\n".join(
        paragraph
        if any(line.startswith(" ") for line in paragraph.splitlines()[1:])
        else textwrap.fill(" ".join(paragraph.split()), width)
        for paragraph in paragraphs
    )


def parse_now(text: str) -> datetime:
    """--now T: an ISO-8601 time; a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time; give e.g. 2026-11-03, 2026-11-03T10:00:00Z or 2026-11-03T13:00:00+03:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=parse_now,
        default=None,
        metavar="TIME",
        help="run the scheduled logic as of this ISO-8601 time, e.g. 2026-11-03T10:00:00Z (a time "
        "without a zone is UTC; default: the current time)",
    )


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (lines, orders, rate, time left); default: when stderr is a terminal",
    )


def _threads(text: str) -> int:
    from accrual.service.fanout import check_workers

    try:
        return check_workers(int(text), "threads")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _workers_option(parser: argparse.ArgumentParser, handler) -> None:
    """--workers N: the command goes the deployed way, through the work queue and the reconcile handler with N
    threads (accrual_dev.fanout_commands); without it, the command runs in this process as before."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="hand the work to the work queue and run it with the reconcile handler on N threads in all, spread "
        "over one poller process per core (as Lambda runs concurrent instances)",
    )
    parser.set_defaults(fanout_handler=handler)


def _force_fx_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force-fx",
        action="store_true",
        help=f"accept fx rates more than a factor of {FX_BAND} away from the current version's",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OperatorParser(prog="accrual", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = commands.add_parser("stack", help="the embedded local AWS stack").add_subparsers(
        dest="stack_command", required=True, metavar="STACK_COMMAND"
    )
    up = stack.add_parser(
        "up",
        help="start the local stack (moto + partner simulator), provision template.yaml, wait for Ctrl-C",
        description="Start a moto server on a free loopback port, provision template.yaml on it, start the partner "
        "simulator beside it and point the partners' endpoints (SSM) and credentials (Secrets Manager) "
        "at the simulator. Prints the `export` lines for another shell, where `accrual config load`, "
        "`clicks load` and `run` then work against the simulator. Runs until Ctrl-C (which forgets "
        "everything).",
    )
    up.add_argument(
        "--no-simulator",
        dest="simulator",
        action="store_false",
        help="leave the partners' endpoints and secrets as the template sets them (the real APIs)",
    )
    up.add_argument("--seed", type=int, default=1, help="the simulator's seeded world (default 1)")
    up.add_argument("--days", type=int, default=30, help="days of simulated orders, ending today (default 30)")
    up.add_argument("--orders-per-day", type=int, default=8, help="simulated orders a day (default 8)")
    up.add_argument(
        "--clicks",
        default=None,
        metavar="FILE",
        help="where to write the simulator's clicks as JSON Lines (default: a file in the temporary "
        "directory, named in the output)",
    )
    up.set_defaults(handler=stack_commands.stack_up)
    provision = stack.add_parser(
        "provision",
        help="provision template.yaml's resources at AWS_ENDPOINT_URL",
        description="Provision template.yaml's resources under ACCRUAL_STACK on the emulator at AWS_ENDPOINT_URL "
        "(a moto server started another way); prints the resource names. Not for AWS: deploy with SAM.",
    )
    provision.set_defaults(handler=stack_commands.stack_provision)

    config = commands.add_parser("config", help="the accrual configuration").add_subparsers(
        dest="config_command", required=True, metavar="CONFIG_COMMAND"
    )
    config_load = config.add_parser(
        "load",
        help="validate a configuration JSON file and store it as a new version",
        description="Validate a configuration document (known partners, rates 0..max_rate, days, plausible fx rates) "
        f"and store it as a new version that becomes current. An fx rate more than a factor of {FX_BAND} "
        "away from the current version's rate for that currency is refused unless --force-fx --reason "
        "TEXT. Exit 2 when the document is refused.",
    )
    config_load.add_argument(
        "file",
        help="the configuration, one JSON document (the accrual configuration format: "
        "version, rate_cards, promotions, fx_rates, ...)",
    )
    _force_fx_option(config_load)
    config_load.add_argument(
        "--reason",
        default=None,
        help="why the forced fx rates are right (required with --force-fx; stored with the version)",
    )
    config_load.set_defaults(handler=operator_commands.config_load)
    config_diff = config.add_parser(
        "diff",
        help="what a configuration file changes relative to the current version, without loading it",
        description="Validate a configuration document as `config load` does and print what it changes relative to "
        "the current stored version (rate cards, promotions, rates, exclusions, fx rates, days), without "
        "storing anything. Exit 0, or 2 when the document would be refused.",
    )
    config_diff.add_argument("file", help="the configuration JSON document to compare with the current version")
    config_diff.add_argument("--json", action="store_true", help="print JSON")
    _force_fx_option(config_diff)
    config_diff.set_defaults(handler=operator_commands.config_diff)

    clicks = commands.add_parser("clicks", help="clicks recorded by the site").add_subparsers(
        dest="clicks_command", required=True, metavar="CLICKS_COMMAND"
    )
    clicks_load = clicks.add_parser(
        "load",
        help="load clicks from a JSON Lines file (clicks are facts: a changed click is refused)",
        description="Load clicks, one JSON object a line. A click is a fact: a sub_id already stored with other "
        "content is refused (the same content again counts as unchanged); a sub_id twice in the file "
        "with different content is refused (the same content twice counts once); a click whose user "
        "already has another account currency (stored, or earlier in the file) is refused. The valid "
        "clicks of the file are stored even when others are refused. Prints JSON counts (stored, "
        "unchanged, repeated, refused, refusals with reasons). Exit 0 when nothing is refused, 2 when "
        "anything is (the valid clicks are stored all the same).",
    )
    clicks_load.add_argument(
        "file",
        help="JSON Lines, one click a line: sub_id, user_id, clicked_at (ISO-8601 with "
        "a zone), partner, account_currency (ISO 4217), country",
    )
    clicks_load.set_defaults(handler=operator_commands.clicks_load)

    ingest = commands.add_parser(
        "ingest",
        help="ingest a saved partner report (API page, CSV or normalised lines)",
        description="Archive a saved report to S3, read it in its partner's format, quarantine the lines that cannot "
        "be read or that the configuration refuses, and reconcile the rest into the ledger as of --now. "
        "CSV and JSON Lines files are read part by part (a file of any length in bounded memory; the "
        "lines of one order that follow each other are decided together). "
        "Ingesting the same file again changes nothing. Prints JSON counts (read = accepted + "
        "quarantined, the reconciled counts, each quarantined line's position and reason).\n\n" + FORMATS,
    )
    ingest.add_argument("file", help="the report file (see the formats below)")
    ingest.add_argument(
        "--partner",
        required=True,
        choices=PARTNERS,
        metavar="FORMAT",
        help=f"the report's format: {', '.join(PARTNERS)}",
    )
    ingest.add_argument(
        "--as",
        dest="as_partner",
        default=None,
        metavar="NAME",
        help="with --partner csv: the partner the CSV belongs to (one of the configuration's "
        "partners); its lines carry this name and its column map is read from SSM",
    )
    _now_option(ingest)
    _progress_option(ingest)
    ingest.add_argument(
        "--threads",
        type=_threads,
        default=1,
        metavar="N",
        help="reconcile each part of the file with N threads in this process (default 1; the file is still read "
        "part by part, so memory does not grow with it). Worth it against a remote DynamoDB, where a line waits "
        "on the network; without --workers only",
    )
    _workers_option(ingest, fanout_commands.ingest)
    ingest.set_defaults(handler=operator_commands.ingest)

    pull = commands.add_parser(
        "pull",
        help="pull new and changed lines from the partners' APIs since their cursors",
        description="Pull each API partner (AliExpress, Admitad) from its cursor (a first pull reads back "
        "PULL_INITIAL_LOOKBACK_DAYS) up to --now, page by page: archive, read, quarantine, reconcile, "
        "then move the cursor. Endpoints come from the SSM parameters /<stack>/partners/<partner>/"
        "endpoint, credentials from the secrets <stack>/partners/<partner>. Prints JSON counts.",
    )
    pull.add_argument(
        "--partner",
        choices=("aliexpress", "admitad"),
        default=None,
        help="pull only this partner (default: every partner with an endpoint parameter)",
    )
    _now_option(pull)
    _progress_option(pull)
    _workers_option(pull, fanout_commands.pull)
    pull.set_defaults(handler=operator_commands.pull)

    confirm = commands.add_parser(
        "confirm",
        help="settle, expire and reverse orders as of --now",
        description="Look at every order due by --now (the due index): settle what the partner settled and the hold "
        "has passed, expire what stayed unpaid, reverse what was invalidated after confirmation. Prints "
        "JSON counts; exit 1 when an order could not be settled (the counts say which).",
    )
    _now_option(confirm)
    _workers_option(confirm, fanout_commands.confirm)
    confirm.set_defaults(handler=operator_commands.confirm)

    run = commands.add_parser(
        "run",
        help="one whole scheduled cycle: pull, reconcile, confirm, notify",
        description="What the scheduled function does: pull every partner, reconcile, confirm what is due, and "
        "publish the notifications left in the outbox. On the local stack (`make local`) the partners "
        "are the simulator. Prints JSON counts; exit 1 when a partner failed or an order could not be "
        "settled.",
    )
    _now_option(run)
    _workers_option(run, fanout_commands.run)
    _progress_option(run)
    run.set_defaults(handler=operator_commands.run_cycle)

    balance = commands.add_parser(
        "balance",
        help="a shopper's pending and confirmed balances",
        description="A shopper's pending and confirmed cashback, in the account currency and in USD.",
    )
    balance.add_argument("user_id", help="the shopper's user_id, as in the clicks")
    balance.add_argument("--json", action="store_true", help="print JSON")
    balance.set_defaults(handler=operator_commands.balance)

    explain = commands.add_parser(
        "explain",
        help="why an order earns what it earns (store or partner order number)",
        description="An order's state, cashback and decision trail (every rule that fired with its numbers), its "
        "journal and refused transitions, and the explanation in plain words. Exit 1 when no order has "
        "that number.",
    )
    explain.add_argument(
        "order_id", help="the store's order number, the partner's order number, or the order key partner#order_id"
    )
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.add_argument("--lang", choices=("en", "ru"), default="en", help="language of the plain-words answer")
    explain.set_defaults(handler=operator_commands.explain)

    review = commands.add_parser(
        "review",
        help="release or decline an order held for review (multi-account coupons, attribution conflict)",
        description="A verdict on an order held on_review: --release (it earns as computed; with --user for an "
        "order whose lines name several shoppers) or --decline (it earns nothing). The verdict is stored "
        "and stands. Exit 1 when no order has that number, 2 when the number names several.",
    )
    review.add_argument(
        "order_id", help="the order held for review: the store's or partner's order number, or partner#order_id"
    )
    verdict = review.add_mutually_exclusive_group(required=True)
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
    review.add_argument(
        "--user",
        help="with --release, for an order whose lines name several shoppers "
        "(ATTRIBUTION_CONFLICT): the shopper it belongs to",
    )
    _now_option(review)
    review.set_defaults(handler=operator_commands.review)

    # ---- redecide (accrual_dev/redecide_command.py) ----
    redecide = commands.add_parser(
        "redecide",
        help="decide orders not yet confirmed again under the current configuration",
        description="Decide orders again under the current configuration version, through the ledger's normal "
        "path (journal, balances and notifications in one transaction; the trail names the version "
        "that decided). Orders holding confirmed money, reversed or moved are never touched. Select "
        "orders by ORDER (partner#order_id, or a store or partner order number), by --user, or by the "
        "time the order was placed (--since/--until, on its ordered_at). Exit 1 when an order could "
        "not be decided, 2 on a usage error.",
    )
    redecide.add_argument(
        "orders", nargs="*", metavar="ORDER", help="orders as partner#order_id, or a store or partner order number"
    )
    redecide.add_argument("--user", default=None, help="every order of this shopper")
    redecide.add_argument("--since", type=parse_now, default=None, help="orders placed at or after this ISO-8601 time")
    redecide.add_argument("--until", type=parse_now, default=None, help="orders placed before this ISO-8601 time")
    redecide.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    redecide.add_argument("--json", action="store_true", help="print JSON")
    _now_option(redecide)
    redecide.set_defaults(handler=redecide_command.redecide)
    dlq = commands.add_parser(
        "dlq",
        help="units of work (pages, due shards) that failed every attempt",
        description="The work dead-letter queue: units (archived pages, due-index shards) that failed every receive "
        "by the reconcile workers.",
    ).add_subparsers(dest="dlq_command", required=True, metavar="DLQ_COMMAND")
    dlq_list = dlq.add_parser(
        "list",
        help="the work dead-letter queue's units with the reason each failed",
        description="Every unit in the work dead-letter queue with its message id, the unit, the reason its last "
        "attempt failed and when. Listing moves nothing.",
    )
    dlq_list.add_argument("--json", action="store_true", help="print JSON")
    dlq_list.set_defaults(handler=fanout_commands.dlq_list)
    dlq_redrive = dlq.add_parser(
        "redrive",
        help="move them back to the work queue (after fixing the cause)",
        description="Move every unit of the work dead-letter queue back to the work queue; with --workers N, run "
        "them at once with the reconcile handler on N threads.",
    )
    dlq_redrive.add_argument(
        "--workers", type=int, default=0, metavar="N", help="then run them with N workers (default: only move them)"
    )
    dlq_redrive.set_defaults(handler=fanout_commands.dlq_redrive)

    # ---- missing-cashback claims (accrual_dev.claim_commands) ----

    claim = commands.add_parser("claim", help="missing-cashback claims").add_subparsers(
        dest="claim_command", required=True, metavar="CLAIM_COMMAND"
    )
    claim_file = claim.add_parser(
        "file",
        help="file a shopper's claim for an order that never showed up, and match it at once",
        description="Store a missing-cashback claim and match it against the reported orders by the store's or the "
        "partner's order number (an unattributed order also by time and amount). The same shopper and "
        "order number again return the existing claim. Exit 2 when the claim is invalid or refused (the "
        "order is another shopper's, or the shopper has no clicks).",
    )
    claim_file.add_argument("--user", required=True, help="the shopper (user_id)")
    claim_file.add_argument("--order", required=True, help="the order number as the shopper knows it")
    claim_file.add_argument("--ordered-at", help="when the order was placed: ISO-8601 time with a zone, or a date")
    claim_file.add_argument("--amount", help="what the shopper paid (decimal), with --currency")
    claim_file.add_argument("--currency", help="ISO 4217 code of --amount")
    claim_file.add_argument(
        "--country", help="the shopper's country (ISO 3166 alpha-2): the language of the notifications"
    )
    claim_file.add_argument("--json", action="store_true", help="print JSON")
    _now_option(claim_file)
    claim_file.set_defaults(handler=claim_commands.claim_file)
    claim_show = claim.add_parser(
        "show",
        help="one claim: state, the order it matched, what was searched",
        description="Print one claim as stored: its state, the order it matched, what was searched and when it "
        "escalates. Exit 2 when no claim has this id.",
    )
    claim_show.add_argument("claim_id", help="the claim's id, as `claim file` printed it")
    claim_show.add_argument("--json", action="store_true", help="print JSON")
    claim_show.set_defaults(handler=claim_commands.claim_show)
    claim_list = claim.add_parser(
        "list",
        help="claims, by state and/or shopper, oldest first",
        description="Every claim in a state (--state) and/or of a shopper (--user), oldest first.",
    )
    claim_list.add_argument(
        "--state", choices=("open", "matched", "resolved", "escalated", "rejected"), help="only claims in this state"
    )
    claim_list.add_argument("--user", help="only this shopper's claims")
    claim_list.add_argument("--json", action="store_true", help="print JSON")
    claim_list.set_defaults(handler=claim_commands.claim_list)
    claim_match = claim.add_parser(
        "match",
        help="match every claim still searched now (each reconcile and "
        "confirm does it too); escalates those whose time has come",
        description="Match every open claim against the ledger now, as each reconcile and confirmation cycle does, "
        "and escalate the claims whose time has come.",
    )
    _now_option(claim_match)
    claim_match.set_defaults(handler=claim_commands.claim_match)
    # ---- end of missing-cashback claims ----
    books_commands.register(commands)  # report, statement reconcile

    audit = commands.add_parser(
        "audit",
        help="recompute balances from the journal; exit 1 on any difference",
        description="Check every balance against the journal, every order's holding, every decision recomputed from "
        "its lines, clicks and configuration version, and each partner line in exactly one order. Exit 1 "
        "on any difference, each naming the order, shopper or line.",
    )
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(handler=operator_commands.audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", None) is not None and getattr(args, "threads", 1) != 1:
        parser.error("--threads is for the command in this process; with --workers N the reconcile handler has N")
    try:
        handler = args.handler
        if getattr(args, "fanout_handler", None) is not None and getattr(args, "workers", None) is not None:
            handler = args.fanout_handler  # --workers N: the work queue and the reconcile handler
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except (operator_commands.OperatorError, LookupError, ValueError, OSError) as error:
        # what an operator can fix (no configuration loaded, an unreadable report, a missing file): one clear line
        print(f"{_command_name(args)}: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - AWS and unforeseen errors: one line; ACCRUAL_DEBUG=1 for the trace
        if os.environ.get("ACCRUAL_DEBUG"):
            raise
        print(
            f"{_command_name(args)}: {type(error).__name__}: {_one_line(error)} (ACCRUAL_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _command_name(args: argparse.Namespace) -> str:
    """`accrual config load`, `accrual ingest`: the command as typed."""
    words = [args.command] + [
        value
        for name, value in sorted(vars(args).items())
        if name.endswith("_command") and name != "command" and isinstance(value, str)
    ]
    return " ".join(["accrual", *words])


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:1000]


if __name__ == "__main__":
    sys.exit(main())
