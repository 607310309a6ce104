"""Peak memory of `accrual ingest FILE --partner normalized` as the volume grows: the whole command (reading, rules,
reconciliation into the ledger) in its own process against a local emulator, its peak resident set size read from
the kernel when it exits (`os.wait4`). Streamed, the largest volume must stay under 1.5× the smallest.

The file holds the seeded simulator's orders as first reported, repeated under new order and line numbers until it
has the lines asked for (the clicks are the simulator's, so every order is attributed and decided in full).

    .venv/bin/python bench/ingest_memory.py                          # 1,000 and 10,000 lines (about 10 minutes)
    .venv/bin/python bench/ingest_memory.py --lines 100000,1000000   # the full profile: hours on 2 cores

The emulator's speed sets the time (every order is one transaction); the memory is the command's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from _common import ROOT, accrual_config, build_orders, save_results, table

CLI = Path(sys.executable).parent / "accrual"
LIMIT = 1.5


def write_report(path: Path, orders, wanted: int) -> int:
    """`wanted` normalised lines, whole orders only, streamed to disk.

    A copy keeps the simulator's shoppers but not their new-user coupons: a store account uses one once, and a
    shopper whose several accounts used one has every coupon order decided again when another arrives (the
    multi-account rule), so copying the coupons made a few shoppers hold thousands of coupon orders each and the run
    slow down with every copy (73 lines a second at the start of a 1,000,000-line run, 33 after 150,000 lines)."""
    base = [lines for lines in orders.first.values() if lines[0].sub_id in orders.clicks]
    written, copy = 0, 0
    with path.open("w") as out:
        while written < wanted:
            for lines in base:
                for line in lines:
                    record = json.loads(line.model_dump_json())
                    if copy:
                        record["new_user_coupon"] = False
                        record["order_id"] = f"{record['order_id']}-{copy}"
                        record["line_id"] = f"{record['line_id']}-{copy}"
                        if record.get("partner_order_id"):
                            record["partner_order_id"] = f"{record['partner_order_id']}-{copy}"
                    out.write(json.dumps(record) + "\n")
                    written += 1
                if written >= wanted:
                    return written
            copy += 1
    return written


def _progress(pid: int, path: Path) -> tuple[int | None, int | None, int | None]:
    """(bytes of the report read so far, VmRSS KiB, VmHWM KiB) of a running command, from /proc."""
    position = rss = hwm = None
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    position = int(info.readline().split()[1])
        with open(f"/proc/{pid}/status") as status:
            for row in status:
                if row.startswith("VmRSS:"):
                    rss = int(row.split()[1])
                elif row.startswith("VmHWM:"):
                    hwm = int(row.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass  # the command has just exited
    return position, rss, hwm


def run_one(environment: dict, path: Path, now, trace: Path | None, every: float, threads: int = 1) -> dict:
    """The command in its own process; its peak RSS is the kernel's ru_maxrss of the waited child (KiB on Linux).

    With a trace, the position in the report and the resident set are appended to it every `every` seconds, so a
    run stopped before the end still shows how memory grew with the lines read."""
    started = time.perf_counter()
    command = [str(CLI), "ingest", str(path), "--partner", "normalized", "--now", now.isoformat()]
    command += ["--threads", str(threads)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=environment)
        size = path.stat().st_size
        while True:
            reaped, status, usage = os.wait4(process.pid, os.WNOHANG)
            if reaped:
                break
            if trace is not None:
                position, rss, hwm = _progress(process.pid, path)
                with trace.open("a") as sink:
                    sink.write(
                        json.dumps(
                            {
                                "file": path.name,
                                "seconds": round(time.perf_counter() - started, 1),
                                "read_share": round(position / size, 4) if position is not None else None,
                                "rss_mib": round(rss / 1024, 1) if rss else None,
                                "peak_rss_mib": round(hwm / 1024, 1) if hwm else None,
                            }
                        )
                        + "\n"
                    )
            time.sleep(every if trace is not None else 0.5)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        output, errors = out.read().decode(), err.read().decode()
    if process.returncode not in (0, 1):
        raise SystemExit(f"accrual ingest failed ({process.returncode}):\n{errors[-3000:]}")
    summary = json.loads(output)
    return {
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "read": summary["read"],
        "accepted": summary["accepted"],
        "quarantined": summary["quarantined"],
        "orders_changed": summary["reconciled"].get("orders_changed"),
        "orders_failed": summary["reconciled"].get("orders_failed", 0),
    }


def run(volumes: list[int], emulator: str, trace: Path | None = None, every: float = 60.0, threads: int = 1) -> dict:
    orders = build_orders()
    now = orders.last_event + timedelta(hours=1)
    from accrual_dev.local.provision import provision
    from accrual_dev.local.server import LOCAL_ENVIRONMENT

    if emulator == "dynamodb-local":
        from accrual_dev.local.dynamodb_local import DynamoDBLocalStack

        server = DynamoDBLocalStack()
    elif emulator == "ministack":
        from accrual_dev.local.ministack import MinistackServer

        server = MinistackServer()
    else:
        from _common import _fast_server

        server = _fast_server()
    results = {}
    with tempfile.TemporaryDirectory(prefix="accrual-memory-") as folder_name, server:
        folder = Path(folder_name)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        for wanted in volumes:
            stack = f"mem{uuid.uuid4().hex[:6]}"  # a fresh stack per volume: each run starts from an empty ledger
            os.environ.update(
                {
                    **LOCAL_ENVIRONMENT,
                    **server.endpoints,
                    "ACCRUAL_STACK": stack,
                    "POWERTOOLS_LOG_LEVEL": "ERROR",
                    "LOG_LEVEL": "ERROR",
                }
            )
            provision(stack, template_path=ROOT / "template.yaml")
            config, clicks = folder / "config.json", folder / "clicks.jsonl"
            config.write_text(accrual_config().model_dump_json())
            clicks.write_text("".join(click.model_dump_json() + "\n" for click in orders.clicks.values()))
            for args in (["config", "load", str(config)], ["clicks", "load", str(clicks)]):
                subprocess.run([str(CLI), *args], check=True, capture_output=True, env=dict(os.environ))
            path = folder / f"lines-{wanted}.jsonl"
            lines = write_report(path, orders, wanted)
            started = time.perf_counter()
            figures = run_one(dict(os.environ), path, now, trace, every, threads)
            figures.update(
                lines=lines,
                file_mib=round(path.stat().st_size / 2**20, 1),
                lines_per_second=round(lines / (time.perf_counter() - started), 1),
            )
            results[str(wanted)] = figures
            path.unlink()
            print(f"{lines:,} lines: peak RSS {figures['peak_rss_mib']} MiB in {figures['seconds']} s", flush=True)
    smallest, largest = results[str(min(volumes))], results[str(max(volumes))]
    ratio = round(largest["peak_rss_mib"] / smallest["peak_rss_mib"], 2)
    return {
        "emulator": emulator,
        "threads": threads,
        "volumes": results,
        "largest_over_smallest": ratio,
        "limit": LIMIT,
        "streamed": ratio < LIMIT,
    }


def report(result: dict) -> str:
    rows = [
        [
            f"{figures['lines']:,}",
            figures["file_mib"],
            figures["peak_rss_mib"],
            figures["seconds"],
            figures["lines_per_second"],
            figures["orders_changed"],
            figures["orders_failed"],
        ]
        for figures in result["volumes"].values()
    ]
    return table(
        rows,
        ["lines", "file MiB", "peak RSS MiB", "seconds", "lines/s", "orders changed", "failed"],
        title=f"\n== Peak memory of `accrual ingest` (normalised lines, rules and ledger on {result['emulator']}): "
        f"largest / smallest = {result['largest_over_smallest']} (limit {result['limit']}) ==",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="1000,10000", help="comma-separated volumes (full profile: 100000,1000000)")
    # DynamoDB Local (beside moto) by default: the volume runs' fastest faithful emulator (docs/emulators.md)
    parser.add_argument("--emulator", choices=("dynamodb-local", "ministack", "moto"), default="dynamodb-local")
    parser.add_argument("--trace", type=Path, help="append the command's position and memory to this JSON Lines file")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between trace samples")
    parser.add_argument("--threads", type=int, default=1, help="`accrual ingest --threads N` (default 1)")
    args = parser.parse_args()
    volumes = sorted(int(value) for value in args.lines.split(","))
    result = run(volumes, args.emulator, args.trace, args.every, args.threads)
    save_results("ingest_memory", result)
    print(report(result))
    return 0 if result["streamed"] else 1


if __name__ == "__main__":
    sys.exit(main())
