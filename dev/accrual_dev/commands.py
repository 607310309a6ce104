"""The operator commands behind `accrual` (cli.py parses; these call the services and print)."""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import bind_ledger_tables
from accrual.domain.models import AccrualConfig, Click
from accrual.settings import Settings

ENDPOINT_PROBE_SECONDS = 3.0


class OperatorError(Exception):
    """A mistake the operator can fix (a file, an argument, the environment): printed as one line, exit 2."""


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


def _exit_code(counts: dict) -> int:
    """1 when any order could not be settled (no fx rate, contention, a journal conflict): the counts say which."""
    from accrual.service.counts import RunCounts

    return 1 if RunCounts.of(counts).unsettled else 0


def _now(args) -> datetime:
    return args.now or datetime.now(UTC)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


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


def _settings() -> Settings:
    check_endpoint()
    settings = Settings.from_env()
    bind_ledger_tables(settings)
    return settings


def _read_config(path: str) -> AccrualConfig | None:
    """The document validated on its own, or None after printing one line per problem (field and value)."""
    text = read_text(path, "a configuration JSON document")
    try:
        return AccrualConfig.model_validate_json(text)
    except ValidationError as error:
        print(f"configuration {path} is invalid:\n{describe_validation_error(error)}", file=sys.stderr)
        return None


def _checked_against_current(args, config: AccrualConfig) -> tuple[AccrualConfig | None, list, bool]:
    """The current stored configuration, the fx rates outside the band around it, and whether that refuses the
    document (it does unless --force-fx; the refusal is printed)."""
    from accrual.domain.config_diff import fx_out_of_band

    version, current = reference_data.stored_current_config()
    if version is not None and current is None:
        print(
            f"note: the current version {version!r} no longer passes today's checks; there is nothing to compare with",
            file=sys.stderr,
        )
    out_of_band = fx_out_of_band(current, config) if current is not None and current.version != config.version else []
    if out_of_band and not args.force_fx:
        print(
            f"configuration {args.file} is invalid:\n"
            + "\n".join(map(str, out_of_band))
            + "\nif these rates are right, load with --force-fx --reason TEXT",
            file=sys.stderr,
        )
        return current, out_of_band, True
    return current, out_of_band, False


def config_load(args) -> int:
    if args.force_fx and not (args.reason or "").strip():
        print("accrual config load: --force-fx needs --reason TEXT (stored with the version)", file=sys.stderr)
        return 2
    config = _read_config(args.file)
    if config is None:
        return 2
    _settings()
    _current, forced, refused = _checked_against_current(args, config)
    if refused:
        return 2
    reason = args.reason.strip() if args.force_fx else None
    try:
        created = reference_data.save_config(config, now=datetime.now(UTC), reason=reason)
    except reference_data.ConfigVersionConflict as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"configuration {config.version} {'stored' if created else 'already stored'}; it is now current")
    for problem in forced:
        print(f"forced (--force-fx, reason: {reason}): {problem}")
    return 0


def config_diff(args) -> int:
    from accrual.domain.config_diff import describe, diff

    config = _read_config(args.file)
    if config is None:
        return 2
    _settings()
    current, out_of_band, refused = _checked_against_current(args, config)
    if refused:
        return 2
    result = diff(current, config)
    result["fx_forced"] = [problem.to_dict() for problem in out_of_band]
    if args.json:
        _print_json(result)
    else:
        print("\n".join(describe(result)))
        for problem in out_of_band:
            print(f"  ! would be forced (--force-fx): {problem}")
    return 0


def clicks_load(args) -> int:
    """Clicks are facts: a sub_id stored with other content is refused, as is a click whose shopper already has
    another account currency; the valid clicks of the file are stored all the same. Exit 2 when any is refused."""
    from accrual.domain.click_batch import Refusal, screen

    entries: list[tuple[int | None, Click]] = []
    refusals: list[Refusal] = []
    read = 0
    for number, text in enumerate(read_text(args.file, "clicks as JSON Lines").splitlines(), start=1):
        if not text.strip():
            continue
        read += 1
        try:
            entries.append((number, Click.model_validate_json(text)))
        except ValidationError as error:
            for problem in describe_validation_error(error).splitlines():
                refusals.append(Refusal(number, _sub_id_of(text) or "", problem))
    screened = screen(entries)
    refusals += screened.refusals
    _settings()
    result = reference_data.store_clicks([click for _, click in screened.accepted], now=datetime.now(UTC))
    lines = {click.sub_id: number for number, click in screened.accepted}
    refusals += [Refusal(lines[sub_id], sub_id, reason) for sub_id, reason in result.refused.items()]
    refusals.sort(key=lambda refusal: refusal.line or 0)
    _print_json(
        {
            "file": str(args.file),
            "read": read,
            "stored": len(result.stored),
            "unchanged": len(result.unchanged),
            "repeated": screened.repeated,
            "refused": len({refusal.line for refusal in refusals}),
            "refusals": [refusal.to_dict() for refusal in refusals],
        }
    )
    for refusal in refusals:
        print(refusal, file=sys.stderr)
    return 2 if refusals else 0


def _sub_id_of(text: str) -> str | None:
    try:
        value = json.loads(text).get("sub_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _check_partner_arguments(args) -> None:
    """`--as NAME` goes with `--partner csv`, and only there (checked before anything is read from AWS)."""
    named = getattr(args, "as_partner", None)
    if args.partner == "csv" and not named:
        raise OperatorError(
            "--partner csv needs --as NAME: the partner whose report the CSV file is (its column map "
            "is the SSM parameter /<stack>/partners/NAME/columns)"
        )
    if named and args.partner != "csv":
        raise OperatorError(f"--as is for --partner csv only: {args.partner} lines name their partner themselves")


def lines_partner(args) -> str:
    """The partner the file's lines belong to: the API partner itself, `--as NAME` for a CSV file (checked against
    the configuration's partners), and `normalized` for JSON Lines, whose lines name their own partner."""
    named = getattr(args, "as_partner", None)
    if not named:
        return args.partner
    config = reference_data.current_config()
    if named not in config.partners:
        hint = next((f"; did you mean {known!r}?" for known in config.partners if known == named.strip().lower()), "")
        raise OperatorError(
            f"--as {named!r}: not a partner of configuration {config.version} "
            f"(known: {', '.join(sorted(config.partners))}){hint}"
        )
    return named


def checked_report_file(args) -> Path:
    """The report file of `accrual ingest`, after its arguments are checked: refused in one line when it is missing,
    empty or binary. Only its first block is read here (a large file is streamed later)."""
    _check_partner_arguments(args)
    path = Path(args.file)
    try:
        with path.open("rb") as file:
            head = file.read(8192)
            blank = not head.strip() and not file.read(1 << 16).strip()
    except FileNotFoundError:
        raise OperatorError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OperatorError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise OperatorError(f"{path}: cannot be read ({error.strerror or error})") from None
    if blank:
        raise OperatorError(f"{args.file}: empty file")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 has NULs too
        raise OperatorError(
            f"{args.file}: a binary file (a NUL byte at offset {head.index(b'\x00')}), not "
            f"{'JSON' if args.partner in ('aliexpress', 'admitad') else args.partner} text"
        )
    return path


def read_report(args) -> bytes:
    """The whole report file, checked as `checked_report_file` does."""
    return read_bytes(checked_report_file(args))


def _interrupted(sink, command: str, resumes: str, **identity: str) -> int:
    """Ctrl-C during a long ingest, pull or run: the counts so far as JSON, one line saying how to go on, exit 130."""
    sink.close()
    _print_json({**identity, "interrupted": True, **sink.counts()})
    print(f"accrual {command}: interrupted; {sink.summary()} ({resumes})", file=sys.stderr)
    return 130


def ingest(args) -> int:
    """A report file: JSON Lines and CSV files are streamed part by part (memory does not grow with the file); an API
    page is read whole."""
    import hashlib

    from accrual.adapters.report_archive import ReportArchive
    from accrual.partners import ReportFormatError
    from accrual.service.ingest import ingest_report
    from accrual.service.ingest_stream import ingest_file_streamed
    from accrual_dev.progress import ProgressSink

    path = checked_report_file(args)
    settings = _settings()
    partner = lines_partner(args)
    now = _now(args)
    streamed = args.partner in ("csv", "normalized")
    size = path.stat().st_size if streamed else None  # the bar's total: the whole file, not what was read so far
    sink = ProgressSink(settings, now, enabled=args.progress, label=path.name, threads=args.threads, total_bytes=size)
    try:
        if streamed:
            report = ingest_file_streamed(
                path, args.partner, partner=partner, settings=settings, now=now, reconcile=sink
            )
        else:
            data = read_bytes(path)
            archive = ReportArchive(settings)
            # the same file ingested twice is archived under the same key (and, through the idempotent ledger,
            # changes nothing)
            digest = hashlib.sha256(data).hexdigest()[:16]
            day = now.replace(hour=0, minute=0, second=0, microsecond=0)
            source = archive.put_raw(partner, day, f"{path.stem}-{digest}", data)
            report = ingest_report(
                data,
                args.partner,
                partner=partner,
                source=source,
                settings=settings,
                now=now,
                reconcile=sink,
                archive=archive,
            )
    except ReportFormatError as error:
        raise OperatorError(f"{args.file}: {error}") from None
    except KeyboardInterrupt:
        return _interrupted(
            sink,
            "ingest",
            "ingesting the file again finishes it: the ledger skips what is done",
            file=str(args.file),
            partner=partner,
        )
    finally:
        sink.close()
    _print_json({"file": str(args.file), **report})
    return _exit_code(report["reconciled"])


def pull(args) -> int:
    from datetime import timedelta

    from accrual.service.pull import pull_all
    from accrual_dev.progress import ProgressSink

    settings = _settings()
    now = _now(args)
    initial = timedelta(days=int(os.environ.get("PULL_INITIAL_LOOKBACK_DAYS", "30")))
    sink = ProgressSink(settings, now, enabled=args.progress, label=f"pull {args.partner or 'partners'}")
    try:
        summary = pull_all(
            now=now,
            settings=settings,
            reconcile=sink,
            partners=[args.partner] if args.partner else None,
            initial_lookback=initial,
        )
    except KeyboardInterrupt:
        return _interrupted(
            sink, "pull", "the cursors stand after the last reconciled page: the next pull goes on from there"
        )
    finally:
        sink.close()
    _print_json(summary)
    if summary["failed"]:
        return 1
    return max((_exit_code(result.get("reconciled", {})) for result in summary["partners"].values()), default=0)


def confirm(args) -> int:
    from accrual.service.claims import claim_service
    from accrual.service.ledger import Ledger

    settings, now = _settings(), _now(args)
    ledger = Ledger(settings)
    counts = ledger.confirm(now=now)
    for name, value in claim_service(settings, ledger).sweep(now=now).items():  # the claims step after the ledger's
        counts[name] = counts.get(name, 0) + value
    _print_json(counts)
    return _exit_code(counts)


def run_cycle(args) -> int:
    from accrual.service.cycle import run_cycle as cycle
    from accrual_dev.progress import ProgressSink

    settings, now = _settings(), _now(args)
    sink = ProgressSink(settings, now, enabled=args.progress, label="run: pull partners")
    try:
        summary = cycle(settings, now=now, reconcile=sink)
    except KeyboardInterrupt:
        return _interrupted(
            sink,
            "run",
            "the cursors stand after the last reconciled page and nothing was confirmed: the next run goes on from "
            "there",
        )
    finally:
        sink.close()
    _print_json(summary)
    return 0 if summary["ok"] else 1


def balance(args) -> int:
    from accrual.service.reading import balance as read_balance

    result = read_balance(_settings(), args.user_id)
    if args.json:
        _print_json(result)
    else:
        currency = result["account_currency"]
        print(
            f"{result['user_id']}: pending {result['pending']} {currency} ({result['pending_usd']} USD), "
            f"confirmed {result['confirmed']} {currency} ({result['confirmed_usd']} USD)"
        )
    return 0


def explain(args) -> int:
    from accrual.service.reading import explain as read_explain

    result = read_explain(_settings(), args.order_id, lang=args.lang)
    if result is None:
        print(f"no order {args.order_id!r} (neither a store nor a partner order number)", file=sys.stderr)
        return 1
    if args.json:
        _print_json(result)
    else:
        print(
            f"order {result['order_id']} ({result['partner']}), {result['state']}: "
            f"{result['cashback']} {result['account_currency']} ({result['cashback_usd']} USD)"
        )
        print(result["explanation"])
    return 0


def review(args) -> int:
    from accrual.domain.lifecycle import ReviewVerdict
    from accrual.service.ledger import Ledger
    from accrual.service.reading import find_orders

    settings = _settings()
    keys = find_orders(args.order_id)
    if not keys:
        print(
            f"no order {args.order_id!r}: neither a store order number, a partner order number nor a key "
            "partner#order_id",
            file=sys.stderr,
        )
        return 1
    if len(keys) > 1:
        print(
            f"{args.order_id!r} names {len(keys)} orders ({', '.join(keys[:10])}); give one of them as "
            "partner#order_id",
            file=sys.stderr,
        )
        return 2
    try:
        state = Ledger(settings).review(
            keys[0], ReviewVerdict(args.verdict), now=_now(args), user_id=getattr(args, "user", None)
        )
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"order {keys[0]}: {args.verdict}, now {state.value}")
    return 0


def audit(args) -> int:
    from accrual.service.reading import audit as run_audit

    result = run_audit(_settings())
    if args.json:
        _print_json(result)
    else:
        print(
            f"{result['orders']} orders, {result['balances']} balances, {result['journal_entries']} journal entries: "
            + ("all agree" if result["ok"] else f"{len(result['differences'])} differences")
        )
        for difference in result["differences"]:
            print("  " + json.dumps(difference))
        for user_id in result["negative_confirmed_balances"]:
            print(f"  negative confirmed balance: {user_id}")
    return 0 if result["ok"] else 1
