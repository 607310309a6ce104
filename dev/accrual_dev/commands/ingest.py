"""`accrual ingest FILE --partner FORMAT`: a saved partner report archived, read, screened and reconciled, in this
process or, with --workers N, the deployed way (the work queue and the reconcile handler)."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from accrual_dev.commands import _fanout
from accrual_dev.commands._common import (
    OperatorError,
    UsageError,
    exit_code,
    interrupted,
    now,
    now_option,
    print_json,
    progress_option,
    read_bytes,
    settings,
    workers_option,
)

PARTNERS = ("aliexpress", "admitad", "csv", "normalized")

FORMATS = """\
formats (--partner):
  aliexpress   one saved response page of aliexpress.affiliate.order.listbyindex or order.list (JSON); money in the
               API's minor units (the partner option minor_units, 100 by default)
  admitad      one saved response page of statistics/actions (JSON {"results": [...], "_meta": {...}})
  csv          a CSV file with a header row; its columns are the normalised field names unless the partner's SSM
               parameter /<stack>/partners/NAME/columns maps them (JSON {"columns": {"amount": "Sale Amount", ...},
               "statuses": {...}, "delimiter": ";", "decimal_separator": ",", "thousands_separator": " ",
               "date_format": "%d.%m.%Y %H:%M", "timezone": "Europe/Moscow", "encoding": "cp1251",
               "usd_rates": {"RUB": "92.5"}}; docs/formats.md, "CSV column maps"); --as NAME names the partner
  normalized   JSON Lines of the normalised order line, each line naming its own partner
A line that cannot be read, names a partner the configuration does not list, or a currency that is not ISO 4217 is
quarantined with its reason (the counts and `quarantine_reasons` say which line and why, `top_reasons` the most
frequent kinds); the rest is reconciled. A file more than --max-quarantined of whose lines are quarantined exits 1
with its top reasons on stderr."""


def _threads(text: str) -> int:
    from accrual.service.fanout import check_workers

    try:
        return check_workers(int(text), "threads")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ingest",
        help="ingest a saved partner report (API page, CSV or normalised lines)",
        description="Archive a saved report to S3, read it in its partner's format, quarantine the lines that cannot "
        "be read or that the configuration refuses, and reconcile the rest into the ledger as of --now. "
        "CSV and JSON Lines files are read part by part (a file of any length in bounded memory; the "
        "lines of one order that follow each other are decided together). "
        "Ingesting the same file again changes nothing. Prints JSON counts (read = accepted + "
        "quarantined, the reconciled counts, each quarantined line's position and reason).\n\n" + FORMATS,
    )
    parser.add_argument("file", help="the report file (see the formats below)")
    parser.add_argument(
        "--partner",
        required=True,
        choices=PARTNERS,
        metavar="FORMAT",
        help=f"the report's format: {', '.join(PARTNERS)}",
    )
    parser.add_argument(
        "--as",
        dest="as_partner",
        default=None,
        metavar="NAME",
        help="with --partner csv: the partner the CSV belongs to (one of the configuration's "
        "partners); its lines carry this name and its column map is read from SSM",
    )
    now_option(parser)
    progress_option(parser)
    parser.add_argument(
        "--threads",
        type=_threads,
        default=1,
        metavar="N",
        help="reconcile each part of the file with N threads in this process (default 1; the file is still read "
        "part by part, so memory does not grow with it). Worth it against a remote DynamoDB, where a line waits "
        "on the network; without --workers only",
    )
    parser.add_argument(
        "--max-quarantined",
        type=_share,
        default=None,
        metavar="SHARE",
        help="exit 1, naming the top reasons, when more than this share of the file's lines is quarantined (default "
        "0.5: a file mostly unread is likely one its column map, date or number format does not describe)",
    )
    workers_option(parser)
    return parser


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to 1 (0.5 is half the lines)")
    return share


def mostly_quarantined(report: dict[str, Any], args: argparse.Namespace) -> bool:
    """True (with the top reasons on stderr) when more than --max-quarantined of the file's lines were quarantined."""
    from accrual.service.ingest import MOSTLY_QUARANTINED
    from accrual.service.ingest import mostly_quarantined as beyond

    share = MOSTLY_QUARANTINED if args.max_quarantined is None else args.max_quarantined
    if not beyond(int(report.get("read") or 0), int(report.get("quarantined") or 0), share):
        return False
    print(
        f"accrual ingest: {report['quarantined']} of {report['read']} lines quarantined, more than {share:.0%};"
        " top reasons:",
        file=sys.stderr,
    )
    for item in report.get("top_reasons", []):
        print(f"  {item['lines']} lines: {item['reason']} (e.g. {item['example']})", file=sys.stderr)
    if report.get("column_map"):
        print(
            f'  the column map is the SSM parameter {report["column_map"]} (docs/formats.md, "CSV column maps")',
            file=sys.stderr,
        )
    return True


def run(args: argparse.Namespace) -> int:
    """A report file: JSON Lines and CSV files are streamed part by part (memory does not grow with the file); an API
    page is read whole."""
    if args.workers is not None:
        if args.threads != 1:
            raise UsageError(
                "--threads is for the command in this process; with --workers N the reconcile handler has N"
            )
        return run_workers(args)
    import uuid

    from accrual.composition import composition
    from accrual.partners import ReportFormatError
    from accrual.service.ingest_stream import ingest_file_streamed
    from accrual_dev.notifications import PublishingWhileWriting
    from accrual_dev.progress import ProgressSink

    path = checked_report_file(args)
    root = composition(settings())
    partner = lines_partner(args)
    at = now(args)
    streamed = args.partner in ("csv", "normalized")
    size = path.stat().st_size if streamed else None  # the bar's total: the whole file, not what was read so far
    ledger = root.concurrent_ledger(args.threads)
    sink = ProgressSink(ledger, at, claims=root.claims, enabled=args.progress, label=path.name, total_bytes=size)
    publishing = PublishingWhileWriting(root.settings, at)  # on a local stack, published as it is written
    with publishing:
        try:
            if streamed:
                report = ingest_file_streamed(
                    path, args.partner, partner=partner, ingest=root.ingest, sink=sink, now=at
                )
            else:
                data = read_bytes(path)
                # the same file ingested twice is archived under the same key (and, through the idempotent ledger,
                # changes nothing)
                digest = hashlib.sha256(data).hexdigest()[:16]
                day = at.replace(hour=0, minute=0, second=0, microsecond=0)
                source = root.archive.put_raw(partner, day, f"{path.stem}-{digest}", data)
                report = root.ingest.page(
                    data, args.partner, partner=partner, source=source, sink=sink, now=at, run_id=uuid.uuid4().hex
                )
        except ReportFormatError as error:
            raise OperatorError(f"{args.file}: {error}") from None
        except KeyboardInterrupt:
            return interrupted(
                sink,
                "ingest",
                "ingesting the file again finishes it: the ledger skips what is done",
                file=str(args.file),
                partner=partner,
            )
        finally:
            sink.close()
        notified = publishing.done()
    print_json({"file": str(args.file), **report.as_dict(), "notified": notified})
    return max(exit_code(report.reconciled.as_dict()), 1 if mostly_quarantined(report.as_dict(), args) else 0)


def run_workers(args: argparse.Namespace) -> int:
    """--workers N: the report archived, split into page-sized units when large, reconciled by the workers."""
    import uuid

    from accrual.composition import composition
    from accrual.service.fanout import check_workers
    from accrual_dev.notifications import publish_written

    check_workers(args.workers)
    data = read_bytes(checked_report_file(args))  # the same checks and one-line errors as the in-process ingest
    stack, at = settings(), now(args)
    work = composition(stack).work
    path = Path(args.file)
    # `--partner csv --as NAME`: the lines are NAME's, read with the CSV reader
    partner, report_format = lines_partner(args), args.partner
    digest = hashlib.sha256(data).hexdigest()[:16]
    source = work.archive.put_raw(
        partner, at.replace(hour=0, minute=0, second=0, microsecond=0), f"{path.stem}-{digest}", data
    )
    run_id = uuid.uuid4().hex
    units = work.file_units(
        data,
        report_format,
        partner=partner,
        key=source,
        now=at,
        run_id=run_id,
        parts_prefix=f"raw/{partner}/files/{path.stem}-{digest}",
        lines_per_part=part_lines(data.count(b"\n"), args.workers),
    )
    work.hand_on(units)
    drained = _fanout.drain(stack, args.workers, {run_id: len(units)})
    report = {
        "partner": partner,
        "source": source,
        "format": report_format,
        "run_id": run_id,
        "units": len(units),
        **_fanout.page_summary(drained["results"], run_id),
        **({"column_map": work.ingest.partners.column_map_name(partner)} if report_format == "csv" else {}),
        "fanout": drained["fanout"],
        "notified": publish_written(stack, at),
    }
    print_json(report)
    failed = _fanout.unsettled(report["reconciled"]) or drained["fanout"].get("unit_failures")
    return 1 if failed or mostly_quarantined(report, args) else 0


def part_lines(lines: int, workers: int) -> int:
    """Lines per unit of a file ingested with `workers`: a dropped file's part size, smaller when that would leave
    a poller process without units (two units per process at least, 50 lines at the smallest)."""
    from accrual.service.work import DROP_PAGE_LINES
    from accrual_dev.poller import poller_processes

    processes = poller_processes(workers, units=workers)
    if processes == 1:
        return DROP_PAGE_LINES
    return max(50, min(DROP_PAGE_LINES, -(-lines // (2 * processes))))


def _check_partner_arguments(args: argparse.Namespace) -> None:
    """`--as NAME` goes with `--partner csv`, and only there (checked before anything is read from AWS)."""
    named = getattr(args, "as_partner", None)
    if args.partner == "csv" and not named:
        raise OperatorError(
            "--partner csv needs --as NAME: the partner whose report the CSV file is (its column map "
            "is the SSM parameter /<stack>/partners/NAME/columns)"
        )
    if named and args.partner != "csv":
        raise OperatorError(f"--as is for --partner csv only: {args.partner} lines name their partner themselves")


def lines_partner(args: argparse.Namespace) -> str:
    """The partner the file's lines belong to: the API partner itself, `--as NAME` for a CSV file (checked against
    the configuration's partners), and `normalized` for JSON Lines, whose lines name their own partner."""
    from accrual.adapters import reference_data

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


def checked_report_file(args: argparse.Namespace) -> Path:
    """The report file, after the command's arguments are checked: refused in one line when it is missing, empty or
    binary. Only its first block is read here (a large file is streamed later)."""
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
