"""A day of a cashback service through the operator CLI on a local stack, as `make local` runs it: each step's time and
the peak memory of the CLI and of the local AWS.

Starts the emulator ACCRUAL_EMULATOR names (`--emulator`, DynamoDB Local beside moto by default, as `make local`),
provisions a stack from template.yaml, loads the demo configuration, then times the day's steps, each an `accrual`
command in a subprocess as an operator types it:

1. clicks      `accrual clicks load`: one click per order (the site records a click before each order);
2. ingest      `accrual ingest` of the partner's report of the day's orders (CSV, status paid);
3. settlement  `accrual ingest` of the partner's settlement report (the same lines, status settled);
4. confirm     `accrual confirm` after the hold: every order confirmed, the balances moved;
5. report      `accrual report` of the month, when the CLI has it.

Prints, per step, the wall time, the lines a second and the peak resident memory of the CLI (its process tree: the
poller processes of `--workers` included) and of each emulator process, then the totals; `--json` adds them as JSON.

    .venv/bin/python bench/day.py [--orders 100000] [--emulator dynamodb-local|moto|ministack] [--workers 1]
        [--dynamodb-storage disk|memory]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "accrual")
DAY = datetime(2026, 10, 20, tzinfo=UTC)
HOLD_DAYS = 5  # the demo configuration's hold for admitad
STACK = "day"


def _rss_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a live process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children(pid: int) -> list[int]:
    try:
        found = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
        return found
    except (FileNotFoundError, ProcessLookupError):
        return []


def _tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue += _children(current)
    return pids


@dataclass
class Step:
    name: str
    seconds: float
    lines: int
    cli_peak_mib: float  # the CLI's process tree, sampled: the largest sum of its processes' resident memory
    emulator_peak_mib: dict[str, float] = field(default_factory=dict)  # each emulator process's VmHWM so far
    cli_cpu: float = 0.0  # CPU seconds of the CLI and the processes it started
    emulator_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each emulator process in the step
    answer: dict = field(default_factory=dict)


def run_step(name: str, command: list[str], lines: int, emulator_pids: dict[str, int | None]) -> Step:
    """Run one CLI command, sampling its process tree's memory every 0.2 s."""
    started, cpu_before = time.monotonic(), _children_cpu_seconds()
    emulator_before = {name: _cpu_seconds(pid) for name, pid in emulator_pids.items() if pid is not None}
    process = subprocess.Popen(
        [CLI, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, sum(_rss_kib(pid, "VmRSS") for pid in _tree(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"accrual {' '.join(command)} exited {process.returncode}: {stderr.strip()[-2000:]}")
    try:
        answer = json.loads(stdout)
    except json.JSONDecodeError:
        if process.returncode:
            # exit 1 is an answer that needs attention (orders failed), still JSON; without one it is a failure
            # whose short step time would pass for a fast one
            raise SystemExit(
                f"accrual {' '.join(command)} exited {process.returncode} without its JSON answer: "
                f"{(stdout.strip() or stderr.strip())[-2000:]}"
            ) from None
        answer = {"output": stdout.strip()[-500:]}  # the month's report prints its text
    return Step(
        name=name,
        seconds=seconds,
        lines=lines,
        cli_peak_mib=peak / 1024,
        emulator_peak_mib={
            emulator: _rss_kib(pid, "VmHWM") / 1024 for emulator, pid in emulator_pids.items() if pid is not None
        },
        answer=answer,
        cli_cpu=_children_cpu_seconds() - cpu_before,
        emulator_cpu={name: _cpu_seconds(pid) - emulator_before[name] for name, pid in emulator_pids.items() if pid},
    )


def write_day(folder: Path, orders: int, seed: int = 20) -> tuple[Path, Path, Path]:
    """The day's clicks (one per order; a shopper orders about twice), its report and its settlement report."""
    rng = random.Random(seed)
    shoppers = max(1, orders // 2)
    clicks, report, settlement = folder / "clicks.jsonl", folder / "day.csv", folder / "settlement.csv"
    header = "line_id,order_id,sub_id,status,ordered_at,paid_at,amount,currency,commission,category_id\n"
    with clicks.open("w") as clicked, report.open("w") as reported, settlement.open("w") as settled:
        reported.write(header)
        settled.write(header)
        for number in range(orders):
            user = rng.randrange(shoppers)
            clicked_at = DAY + timedelta(seconds=rng.randrange(86_000))
            ordered_at = (clicked_at + timedelta(seconds=rng.randrange(1, 400))).isoformat()
            clicked.write(
                json.dumps(
                    {
                        "sub_id": f"s-{number}",
                        "user_id": f"u-{user}",
                        "partner": "admitad",
                        "clicked_at": clicked_at.isoformat(),
                        "account_currency": "RUB" if user % 3 == 0 else "USD",
                        "country": "RU" if user % 3 == 0 else "DE",
                    }
                )
                + "\n"
            )
            currency = "RUB" if number % 5 == 0 else "USD"
            amount = rng.choice((9.99, 25.0, 80.5, 240.0, 1800.0)) * (92 if currency == "RUB" else 1)
            line = f"L{number},O{number},s-{number},{{status}},{ordered_at},{ordered_at},{amount:.2f},{currency},0,"
            line += rng.choice(("100001", "44", "66", "3")) + "\n"
            reported.write(line.format(status="paid"))
            settled.write(line.format(status="settled"))
    return clicks, report, settlement


def has_report_command() -> bool:
    done = subprocess.run([CLI, "report", "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--emulator", default=os.environ.get("ACCRUAL_EMULATOR") or "dynamodb-local")
    # on two cores the work queue's pollers cost more CPU than they save (docs/performance.md)
    parser.add_argument("--workers", type=int, default=1, help="--workers of ingest and confirm (1: serial)")
    parser.add_argument(
        "--dynamodb-storage",
        choices=("disk", "memory"),
        default=os.environ.get("DYNAMODB_LOCAL_STORAGE") or "disk",
        help="DynamoDB Local's tables in a file (as `make local`) or in memory",
    )
    parser.add_argument("--steps", default="clicks,ingest,settlement,confirm,report")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    from accrual_dev.local.emulators import EMULATORS
    from accrual_dev.local.provision import provision
    from accrual_dev.local.server import ENDPOINT_VARIABLES, LOCAL_ENVIRONMENT

    wanted = args.steps.split(",")
    workers = ["--workers", str(args.workers)] if args.workers > 1 else []
    ingest = ["--partner", "csv", "--as", "admitad", "--no-progress", *workers]
    os.environ["DYNAMODB_LOCAL_STORAGE"] = args.dynamodb_storage
    emulator = EMULATORS[args.emulator]()
    started = time.monotonic()
    emulator.start()
    startup = time.monotonic() - started
    with tempfile.TemporaryDirectory() as folder, emulator:
        for name in ENDPOINT_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(
            {**LOCAL_ENVIRONMENT, **emulator.endpoints, "ACCRUAL_STACK": STACK, "POWERTOOLS_LOG_LEVEL": "ERROR"}
        )
        provisioned = provision(STACK)
        clicks, report, settlement = write_day(Path(folder), args.orders)
        subprocess.run(
            [CLI, "config", "load", str(ROOT / "events" / "demo-config.json")], check=True, capture_output=True
        )
        plan = {
            "clicks": (["clicks", "load", str(clicks)], args.orders),
            "ingest": (["ingest", str(report), *ingest, "--now", (DAY + timedelta(days=1)).isoformat()], args.orders),
            "settlement": (
                ["ingest", str(settlement), *ingest, "--now", (DAY + timedelta(days=2)).isoformat()],
                args.orders,
            ),
            "confirm": (
                ["confirm", "--now", (DAY + timedelta(days=3 + HOLD_DAYS)).isoformat(), *workers],
                args.orders,
            ),
            "report": (["report", "--month", DAY.strftime("%Y-%m")], args.orders),
        }
        steps: list[Step] = []
        skipped: list[str] = []
        print(
            f"# {args.orders:,} orders on {args.emulator} (processes {emulator.pids}, DynamoDB Local's tables on "
            f"{args.dynamodb_storage}), workers {args.workers}; "
            f"emulator started in {startup:.1f} s, stack provisioned in {provisioned.seconds:.1f} s",
            flush=True,
        )
        for name in wanted:
            if name == "report" and not has_report_command():
                skipped.append("report (this CLI has no `accrual report`)")
                continue
            command, lines = plan[name]
            step = run_step(name, command, lines, emulator.pids)
            steps.append(step)
            peaks = ", ".join(f"{emulator} {mib:,.0f} MiB" for emulator, mib in step.emulator_peak_mib.items())
            cpu = ", ".join(f"{emulator} {seconds:.0f}" for emulator, seconds in step.emulator_cpu.items())
            print(
                f"{name:<11} {step.seconds:8.1f} s  {step.lines / step.seconds:8.1f} lines/s  "
                f"CLI peak {step.cli_peak_mib:7.0f} MiB  local AWS peak so far: {peaks}  "
                f"CPU s: CLI {step.cli_cpu:.0f}, {cpu}",
                flush=True,
            )
        total = sum(step.seconds for step in steps)
        last = steps[-1].emulator_peak_mib if steps else {}
        print(
            f"{'day':<11} {total:8.1f} s  ({total / 60:.1f} min)  "
            f"CLI peak {max((step.cli_peak_mib for step in steps), default=0):7.0f} MiB  "
            f"local AWS peak {sum(last.values()):,.0f} MiB ({', '.join(f'{k} {v:,.0f}' for k, v in last.items())})"
        )
        for name in skipped:
            print(f"skipped: {name}")
        for step in steps:
            counts = {
                key: step.answer[key]
                for key in (
                    "read",
                    "accepted",
                    "quarantined",
                    "reconciled",
                    "orders_due",
                    "moves_post",
                    "orders_failed",
                    "loaded",
                )
                if key in step.answer
            }
            if counts:
                print(f"  {step.name}: {json.dumps(counts)}")
        if args.json:
            print(
                json.dumps(
                    {
                        "orders": args.orders,
                        "emulator": args.emulator,
                        "workers": args.workers,
                        "dynamodb_storage": args.dynamodb_storage,
                        "startup_seconds": round(startup, 1),
                        "steps": [
                            {
                                "name": step.name,
                                "seconds": round(step.seconds, 1),
                                "cli_peak_mib": round(step.cli_peak_mib),
                                "emulator_peak_mib": {k: round(v) for k, v in step.emulator_peak_mib.items()},
                                "cli_cpu_seconds": round(step.cli_cpu, 1),
                                "emulator_cpu_seconds": {k: round(v, 1) for k, v in step.emulator_cpu.items()},
                            }
                            for step in steps
                        ],
                        "skipped": skipped,
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
