"""`accrual`: the operator's command line. Every command reads AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and ACCRUAL_STACK.

Each command is a module of `accrual_dev.commands`: it parses its arguments, calls the service, prints and returns the
exit code. Heavy imports happen inside a command's `run`, so that `--help` and every other command start quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from importlib import import_module

from accrual_dev.commands import COMMANDS
from accrual_dev.commands._common import (
    CREDENTIALS,
    NOT_FOUND,
    NotFound,
    OperatorError,
    UsageError,
    describe_validation_error,
    plain_message,
)

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
exit status: 0 done, 1 an answer that needs attention (orders failed, audit differences), 2 a mistake in the command,
a file or the environment (one line on stderr naming it), 3 not found (an order, a shopper, a claim), 130
interrupted (counts printed)"""


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
    paragraphs = text.split("\n\n")
    return "\n\n".join(
        paragraph
        if any(line.startswith(" ") for line in paragraph.splitlines()[1:])
        else textwrap.fill(" ".join(paragraph.split()), width)
        for paragraph in paragraphs
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OperatorParser(prog="accrual", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command = import_module(f"accrual_dev.commands.{name}")
        command.register(subparsers).set_defaults(handler=command.run)
    return parser


# The ledger plans in this thread while its reader and writer threads wait on DynamoDB: when an answer arrives, the
# waiting thread gets the GIL back after at most this long (Python's default is 5 ms, longer than most calls take).
GIL_SWITCH_SECONDS = 0.0005


def main(argv: list[str] | None = None) -> int:
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    parser = build_parser()
    args = parser.parse_args(argv)
    name = _command_name(args)
    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        parser.error(str(error))
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except NotFound as error:
        print(f"{name}: {_one_line(error)}", file=sys.stderr)
        return NOT_FOUND
    except (OperatorError, LookupError, ValueError, OSError) as error:
        # what an operator can fix (no configuration loaded, an unreadable report, a missing file): one clear line
        print(f"{name}: {_operator_message(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - AWS and unforeseen errors: one line; ACCRUAL_DEBUG=1 for the trace
        if os.environ.get("ACCRUAL_DEBUG"):
            raise
        if _no_credentials(error):
            print(f"{name}: no AWS credentials: {CREDENTIALS}", file=sys.stderr)
            return 2
        print(f"{name}: {_one_line(error) or 'failed'} (ACCRUAL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _operator_message(error: Exception) -> str:
    """One line naming the cause: each field and value of a validation error, else the error's own words."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return "; ".join(describe_validation_error(error).splitlines())
    return plain_message(_one_line(error))


def _no_credentials(error: BaseException) -> bool:
    """botocore's NoCredentialsError, also when PynamoDB wraps it in its own error."""
    from botocore.exceptions import NoCredentialsError

    while error is not None:
        if isinstance(error, NoCredentialsError):
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


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
