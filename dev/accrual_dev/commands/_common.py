"""What every command shares: the settings of the stack, the time, JSON output, the common options and the errors an
operator can fix (one line on stderr, exit 2)."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import socket
import sys
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from accrual.settings import Settings

ENDPOINT_PROBE_SECONDS = 3.0
FX_BAND = 2  # accrual.domain.models.FX_BAND, repeated so that --help imports nothing heavy


class OperatorError(Exception):
    """A mistake the operator can fix (a file, an argument, the environment): printed as one line, exit 2."""


class UsageError(Exception):
    """Arguments that do not go together: printed as the parser prints a usage mistake, exit 2."""


class NotFound(Exception):
    """What the command was asked about does not exist (an order, a shopper, a claim): one line, exit 3."""


NOT_FOUND = 3
CREDENTIALS = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values do for the local stack)"


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
    """The endpoint, the credentials and the stack, each reported in one line within seconds when missing (botocore
    would retry for a minute and end in a traceback): a local endpoint that does not answer, no credentials, AWS out
    of reach with AWS_ENDPOINT_URL unset, or a stack that is not there."""
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        _probe(url)
    _check_stack(url)


def _probe(url: str) -> None:
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


def _check_stack(url: str | None) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    stack = os.environ.get("ACCRUAL_STACK", "accrual")
    quick = Config(connect_timeout=ENDPOINT_PROBE_SECONDS, read_timeout=10, retries={"total_max_attempts": 1})
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    where = f"at AWS_ENDPOINT_URL={url}" if url else f"in AWS region {region} (AWS_ENDPOINT_URL is not set)"
    try:
        client = boto3.client("cloudformation", region_name=region, config=quick)
        client.describe_stacks(StackName=stack)
    except NoCredentialsError:
        raise OperatorError(f"no AWS credentials: {CREDENTIALS}") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in CREDENTIAL_CODES:
            raise OperatorError(f"AWS refused the credentials ({code}) {where}: {CREDENTIALS}") from None
        if url:
            raise OperatorError(
                f"stack {stack!r} is not provisioned {where}: a stale endpoint (each `make local` starts a new "
                "one) or another ACCRUAL_STACK; export what `make local` printed, or run `accrual stack provision`"
            ) from None
        raise OperatorError(
            f"stack {stack!r} is not deployed {where}: deploy it with `sam deploy`, name another with ACCRUAL_STACK, "
            "or export the AWS_ENDPOINT_URL that `make local` prints to use the local stack"
        ) from None
    except BotoCoreError as error:
        if url:
            raise OperatorError(f"AWS_ENDPOINT_URL={url} does not answer as AWS: {error}") from None
        raise OperatorError(
            f"AWS does not answer {where}: {error}; export the AWS_ENDPOINT_URL that `make local` prints to use "
            "the local stack"
        ) from None


# what AWS answers to credentials it does not accept
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
    }
)


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


def describe_validation_error(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Name the field and the value of every problem, in one line each; an unknown key of `model` (or of a model
    inside it) with the known key it most resembles."""
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
        if problem.get("type") == "extra_forbidden":
            lines.append(f"{field}: {unknown_key(str(problem['loc'][-1]), known_keys(model, problem['loc'][:-1]))}")
            continue
        lines.append(f"{field}: {plain_message(problem['msg'])} (value: {shown})")
    return "\n".join(lines)


def plain_message(message: str) -> str:
    """A validator's message without pydantic's prefixes (`Value error, `, `Assertion failed, `)."""
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def unknown_key(key: str, known: list[str]) -> str:
    """`unknown key; did you mean 'excluded_shops'?`, or the known keys when none is close."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key (known: {', '.join(known)})" if known else "unknown key"


def known_keys(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at `loc` inside `model` (list indexes and dictionary keys stepped over)."""
    current: Any = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, str) and part in getattr(current, "model_fields", {}):
            current = _model_in(current.model_fields[part].annotation)
    return sorted(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    """The pydantic model an annotation holds (`list[RateCard]`, `RateCard | None`), if any."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
