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
    """`wanted` normalised lines, whole orders only, streamed to disk."""
    base = [lines for lines in orders.first.values() if lines[0].sub_id in orders.clicks]
    written, copy = 0, 0
    with path.open("w") as out:
        while written < wanted:
            for lines in base:
                for line in lines:
                    record = json.loads(line.model_dump_json())
                    if copy:
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


def run_one(environment: dict, path: Path, now) -> dict:
    """The command under a tiny parent that reports its peak RSS (ru_maxrss of the waited child, KiB on Linux)."""
    probe = (
        "import os, subprocess, sys, json, time; t = time.perf_counter(); "
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL); "
        "out = p.stdout.read(); _, status, usage = os.wait4(p.pid, 0); "
        "print(json.dumps({'maxrss_kib': usage.ru_maxrss, 'status': os.waitstatus_to_exitcode(status), "
        "'seconds': time.perf_counter() - t, 'out': out.decode()}))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(CLI),
            "ingest",
            str(path),
            "--partner",
            "normalized",
            "--now",
            now.isoformat(),
        ],
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode:
        raise SystemExit(f"the probe failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    if result["status"] not in (0, 1):
        raise SystemExit(f"accrual ingest failed ({result['status']}):\n{done.stderr[-3000:]}")
    summary = json.loads(result["out"])
    return {
        "peak_rss_mib": round(result["maxrss_kib"] / 1024, 1),
        "seconds": round(result["seconds"], 1),
        "read": summary["read"],
        "accepted": summary["accepted"],
        "quarantined": summary["quarantined"],
        "orders_changed": summary["reconciled"].get("orders_changed"),
        "orders_failed": summary["reconciled"].get("orders_failed", 0),
    }


def run(volumes: list[int], emulator: str) -> dict:
    orders = build_orders()
    now = orders.last_event + timedelta(hours=1)
    from accrual_dev.local.provision import provision
    from accrual_dev.local.server import LOCAL_ENVIRONMENT

    if emulator == "ministack":
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
                    "AWS_ENDPOINT_URL": server.url,
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
            figures = run_one(dict(os.environ), path, now)
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
    parser.add_argument("--emulator", choices=("ministack", "moto"), default="ministack")
    args = parser.parse_args()
    result = run(sorted(int(value) for value in args.lines.split(",")), args.emulator)
    save_results("ingest_memory", result)
    print(report(result))
    return 0 if result["streamed"] else 1


if __name__ == "__main__":
    sys.exit(main())
