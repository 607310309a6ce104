"""`accrual ingest --workers 1` against `--workers 16` as an operator runs them: the same CSV report, a fresh stack each,
on ministack (it answers requests concurrently), with 20 ms added to every DynamoDB call on the client
(`ACCRUAL_DYNAMODB_LATENCY_MS`). Prints the wall time of each command, the speed-up and whether the two ledgers
(balances, journal, orders, notifications) are identical.

    .venv/bin/python bench/cli_workers.py [--orders 3000] [--workers 1,16] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import ROOT, save_results, table  # noqa: E402
from accrual_dev.local.server import LOCAL_ENVIRONMENT  # noqa: E402
from embedded_volume import write_inputs  # noqa: E402
from throughput import Ministack  # noqa: E402

CLI = str(Path(sys.executable).parent / "accrual")
HOOK = HERE / "_hook"


def latency_environment(latency_ms: float) -> dict[str, str]:
    """The CLI and its poller processes wait before every DynamoDB request: bench/_hook's sitecustomize installs the
    latency hook in each of them (the package itself carries no benchmark code)."""
    path = os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH")]))
    return {"ACCRUAL_DYNAMODB_LATENCY_MS": str(latency_ms), "PYTHONPATH": path}


def ledger(environment: dict[str, str]) -> str:
    """The stack's balances, journal, orders and notifications, as the tests compare them."""
    code = (
        "import json, sys; sys.path.insert(0, 'tests')\n"
        "from accrual.settings import load_settings\n"
        "from accrual.adapters.ledger_tables import bind_ledger_tables\n"
        "from support.ledger import snapshot\n"
        "bind_ledger_tables(load_settings())\n"
        "print(json.dumps(snapshot(), sort_keys=True, default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def run(server: Ministack, folder: Path, workers: int, latency_ms: float) -> dict:
    stack = f"cli{workers}x{int(time.time() * 1000) % 100000}"
    environment = {
        **os.environ,
        **LOCAL_ENVIRONMENT,
        "AWS_ENDPOINT_URL": server.url,
        "ACCRUAL_STACK": stack,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for command in (
        ["stack", "provision"],
        ["config", "load", str(ROOT / "events" / "demo-config.json")],
        ["clicks", "load", str(folder / "clicks.jsonl")],
    ):
        subprocess.run([CLI, *command], env=environment, check=True, capture_output=True)
    command = [CLI, "ingest", str(folder / "month.csv"), "--partner", "csv", "--as", "admitad"]
    command += ["--now", "2026-11-02T00:00:00Z", "--no-progress", "--workers", str(workers)]
    started, server_cpu = time.monotonic(), server.cpu_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        command, env={**environment, **latency_environment(latency_ms)}, capture_output=True, text=True
    )
    seconds, server_cpu = time.monotonic() - started, server.cpu_seconds() - server_cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"--workers {workers} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return {
        "workers": workers,
        "seconds": seconds,
        "cli_cpu_seconds": cli_cpu,
        "emulator_cpu_seconds": server_cpu,
        "result": result,
        "ledger": ledger(environment),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--workers", default="1,16")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    counts = [int(value) for value in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as name, Ministack() as server:
        folder = Path(name)
        write_inputs(folder, args.orders)
        runs = [run(server, folder, workers, args.latency_ms) for workers in counts]
    serial = runs[0]
    rows = [
        [
            item["workers"],
            item["result"]["read"],
            f"{item['seconds']:.1f}",
            f"{item['result']['read'] / item['seconds']:.0f}",
            f"{serial['seconds'] / item['seconds']:.1f}x",
            f"{1000 * item['cli_cpu_seconds'] / item['result']['read']:.1f}",
            f"{1000 * item['emulator_cpu_seconds'] / item['result']['read']:.1f}",
            item["result"]["fanout"].get("processes", 1),
            "yes" if item["ledger"] == serial["ledger"] else "NO",
        ]
        for item in runs
    ]
    print(
        table(
            rows,
            [
                "--workers",
                "lines",
                "seconds",
                "lines/s",
                "speed-up",
                "CLI CPU ms/line",
                "emulator CPU ms/line",
                "processes",
                "same ledger",
            ],
            title=f"accrual ingest on ministack, {args.latency_ms:g} ms added per DynamoDB call, {os.cpu_count()} cores",
        )
    )
    save_results(
        "cli_workers",
        {
            "latency_ms": args.latency_ms,
            "orders": args.orders,
            "runs": [
                {
                    "workers": i["workers"],
                    "seconds": round(i["seconds"], 2),
                    "cli_cpu_seconds": round(i["cli_cpu_seconds"], 2),
                    "emulator_cpu_seconds": round(i["emulator_cpu_seconds"], 2),
                }
                for i in runs
            ],
        },
    )
    return 0 if all(item["ledger"] == serial["ledger"] for item in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
