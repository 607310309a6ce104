"""What every command shares: the settings of the stack, the time, JSON output, the common options and the errors an
operator can fix (one line on stderr, exit 2)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pydantic import ValidationError

    from accrual.settings import Settings

ENDPOINT_PROBE_SECONDS = 3.0
FX_BAND = 2  # accrual.domain.models.FX_BAND, repeated so that --help imports nothing heavy


class OperatorError(Exception):
    """A mistake the operator can fix (a file, an argument, the environment): printed as one line, exit 2."""


class UsageError(Exception):
    """Arguments that do not go together: printed as the parser prints a usage mistake, exit 2."""


# ---- options ----------------------------------------------------------------------------------------------------------
def command_group(subparsers: Any, name: str, help: str, **options: Any) -> tuple[argparse.ArgumentParser, Any]:
    """A command with subcommands (`accrual config load|diff`): its parser and the subparsers for its subcommands,
    whose name lands in `args.<name>_command`."""
    parser = subparsers.add_parser(name, help=help, **options)
    return parser, parser.add_subparsers(dest=f"{name}_command", required=True, metavar=f"{name.upper()}_COMMAND")


def parse_now(text: str) -> datetime:
    """--now T: an ISO-8601 time; a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time; give e.g. 2026-11-03, 2026-11-03T10:00:00Z or 2026-11-03T13:00:00+03:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=parse_now,
        default=None,
        metavar="TIME",
        help="run the scheduled logic as of this ISO-8601 time, e.g. 2026-11-03T10:00:00Z (a time "
        "without a zone is UTC; default: the current time)",
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (lines, orders, rate, time left); default: when stderr is a terminal",
    )


def workers_option(parser: argparse.ArgumentParser) -> None:
    """--workers N: the command goes the deployed way, through the work queue and the reconcile handler with N
    threads (the command module's `run_workers`); without it, the command runs in this process."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="hand the work to the work queue and run it with the reconcile handler on N threads in all, spread "
        "over one poller process per core (as Lambda runs concurrent instances)",
    )


def force_fx_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force-fx",
        action="store_true",
        help=f"accept fx rates more than a factor of {FX_BAND} away from the current version's",
    )


# ---- running ----------------------------------------------------------------------------------------------------------
def now(args: argparse.Namespace) -> datetime:
    return args.now or datetime.now(UTC)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def exit_code(counts: Any) -> int:
    """1 when any order could not be settled (no fx rate, contention, a journal conflict): the counts say which."""
    from accrual.service.counts import RunCounts

    return 1 if RunCounts.of(counts).unsettled else 0


def settings() -> Settings:
    """The stack's settings, once its endpoint and stack answered, with the ledger's tables bound."""
    from accrual.adapters.ledger_tables import bind_ledger_tables
    from accrual.settings import Settings

    check_endpoint()
    found = Settings.from_env()
    bind_ledger_tables(found)
    return found


def interrupted(sink: Any, command: str, resumes: str, **identity: str) -> int:
    """Ctrl-C during a long ingest, pull or run: the counts so far as JSON, one line saying how to go on, exit 130."""
    sink.close()
    print_json({**identity, "interrupted": True, **sink.counts()})
    print(f"accrual {command}: interrupted; {sink.summary()} ({resumes})", file=sys.stderr)
    return 130


# ---- the environment --------------------------------------------------------------------------------------------------
def check_endpoint() -> None:
    """A local endpoint that does not answer, or answers without the stack, is reported in one line within seconds
    (botocore would retry for a minute and end in a traceback)."""
    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OperatorError(f"AWS_ENDPOINT_URL={url!r} is not a URL (expected http://HOST:PORT)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OperatorError(f"AWS_ENDPOINT_URL={url!r} has no valid port") from None
    try:
        socket.create_connection((parts.hostname, port), timeout=ENDPOINT_PROBE_SECONDS).close()
    except OSError as error:
        why = (
            "connection refused"
            if isinstance(error, ConnectionRefusedError)
            else (f"no answer in {ENDPOINT_PROBE_SECONDS:.0f} s" if isinstance(error, TimeoutError) else str(error))
        )
        raise OperatorError(
            f"AWS_ENDPOINT_URL={url} does not answer ({why}): start the local stack with "
            "`make local` (or `accrual stack up`) and export the AWS_ENDPOINT_URL it prints, or unset "
            "it to use AWS"
        ) from None
    _check_stack(url)


def _check_stack(url: str) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    stack = os.environ.get("ACCRUAL_STACK", "accrual")
    quick = Config(connect_timeout=ENDPOINT_PROBE_SECONDS, read_timeout=10, retries={"max_attempts": 1})
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    try:
        boto3.client("cloudformation", region_name=region, config=quick).describe_stacks(StackName=stack)
    except ClientError:
        raise OperatorError(
            f"stack {stack!r} is not provisioned at AWS_ENDPOINT_URL={url}: a stale endpoint (each "
            "`make local` starts a new one) or another ACCRUAL_STACK; export what `make local` "
            "printed, or run `accrual stack provision`"
        ) from None
    except BotoCoreError as error:
        raise OperatorError(f"AWS_ENDPOINT_URL={url} does not answer as AWS: {error}") from None


# ---- files and documents ----------------------------------------------------------------------------------------------
def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, or an OperatorError naming the file."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise OperatorError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OperatorError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise OperatorError(f"{path}: cannot be read ({error.strerror or error})") from None


def read_text(path: str | Path, expected: str) -> str:
    """A UTF-8 text file, or an OperatorError naming the file, the first bad byte and what was expected."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise OperatorError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); expected {expected}"
        ) from None


def describe_validation_error(error: ValidationError) -> str:
    """Name the field and the value of every problem, in one line each."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(document)"
        value = problem.get("input")
        if problem.get("type") == "missing":
            lines.append(f"{field}: missing")
            continue
        shown = json.dumps(value, default=str, ensure_ascii=False)
        if len(shown) > 200:
            shown = f"{shown[:200]}… ({len(shown)} characters)"
        lines.append(f"{field}: {problem['msg']} (value: {shown})")
    return "\n".join(lines)
