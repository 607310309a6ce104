"""Run the benchmarks, print their tables and a summary; every figure goes to bench/results.json (not committed).

    .venv/bin/python bench/run.py                 # or: make bench (about 40 minutes on a shared 2-core machine)
    .venv/bin/python bench/run.py --full-memory   # ingest memory at 100,000 and 1,000,000 lines: hours
    .venv/bin/python bench/run.py --all           # also moto's time growth and the ledger bench at 1,000 orders

Default steps: calls and units per order for each step on ministack beside the reference and the lower bound
(steps.py), the same steps on DynamoDB Local (its calls; its units are its own accounting), CPU per line (cpu.py), handler import time (coldstart.py), ingest peak memory at 1,000 and 10,000 lines
(ingest_memory.py), rules throughput (rules.py), the ledger bench's stream relay at 200 orders on moto (ledger.py),
then the cost extrapolation (cost.py).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def machine() -> dict:
    import os

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


# The last commit before the write path's rework (compressed items, orders read ahead, line claims): `make bench`
# runs the steps on it too, on the same emulator, for the before / after table.
BEFORE = "ade226e"
BOUNDS = {"first_report": 10, "settlement": 6, "confirmation": 8, "reversal": 9}  # write units per order, the targets


def before_and_after(results: dict) -> str:
    """Per step: calls, read and write units per order and CLI CPU per line, before and after, beside the bound."""
    from _common import table

    before = (results.get("steps_before") or {}).get("steps") or {}
    after = (results.get("steps") or {}).get("steps") or {}
    if not before or not after:
        return ""
    rows = []
    order = ("first_report", "replay", "settlement", "confirmation", "reversal")
    for step, figures in sorted(after.items(), key=lambda item: order.index(item[0]) if item[0] in order else 99):
        old, new, bound = before[step]["project"], figures["project"], figures["lower_bound"]
        lines = max(
            1,
            results["steps"]["lines_first"] if step in ("first_report", "replay") else results["steps"]["lines_final"],
        )
        rows.append(
            [
                step,
                f"{old['dynamodb_calls']} → {new['dynamodb_calls']} ({bound['dynamodb_calls']})",
                f"{round(old['dynamodb_calls'] * results['steps']['orders'] / lines, 2)} → "
                f"{round(new['dynamodb_calls'] * results['steps']['orders'] / lines, 2)}",
                f"{old['rru']} → {new['rru']} ({bound['rru']})",
                f"{old['wru']} → {new['wru']} ({bound['wru']}; target {BOUNDS.get(step, '-')})",
                f"{old.get('cpu_ms_per_line', '-')} → {new.get('cpu_ms_per_line', '-')}",
            ]
        )
    cpu = results.get("cpu") or {}
    loads = (cpu.get("us_per_line") or {}).get("json_loads")
    costs = [
        results.get(name, {}).get("usd_per_million_orders", {}).get("total")
        for name in ("cost_from_steps_before", "cost_from_steps")
    ]
    return "\n".join(
        [
            table(
                rows,
                [
                    "per order",
                    "DynamoDB calls (bound)",
                    "calls per line",
                    "RRU (bound)",
                    "WRU (bound; target)",
                    "CLI CPU ms/line",
                ],
                title=f"\n== Before ({BEFORE}) → after, {results['steps']['orders']} orders on {results['steps']['emulator']} ==",
            ),
            f"json.loads of a line: {loads} µs (bench/cpu.py); CPU per line is the accrual process's own, start-up taken off",
            f"$ per million orders (DynamoDB + SNS, assumed prices): {costs[0]} → {costs[1]}",
        ]
    )


def summary() -> str:
    from _common import load_results, save_results, table

    results = load_results()
    rows = []
    steps = (results.get("steps") or {}).get("steps") or {}
    order = ("first_report", "replay", "settlement", "confirmation", "reversal")
    for step, figures in sorted(steps.items(), key=lambda item: order.index(item[0]) if item[0] in order else 99):
        project, reference, bound = figures["project"], figures["reference"], figures["lower_bound"]
        rows.append(
            [
                step,
                f"{project['dynamodb_calls']} / {reference['dynamodb_calls']} / {bound['dynamodb_calls']}",
                f"{project['rru']} / {reference['rru']} / {bound['rru']}",
                f"{project['wru']} / {reference['wru']} / {bound['wru']}",
            ]
        )
    blocks = []
    if rows:
        blocks.append(
            table(
                rows,
                ["per order", "DynamoDB calls (project / reference / bound)", "RRU", "WRU"],
                title=f"\n== Summary ({results['steps']['orders']} orders on {results['steps']['emulator']}) ==",
            )
        )
    rows = []
    cpu = results.get("cpu")
    if cpu:
        rows += [
            [
                "CPU per line: normalisation / rules (× json.loads)",
                f"{cpu['ratio_to_json_loads']['normalised_lines']} / {cpu['ratio_to_json_loads']['rules']}",
            ]
        ]
    memory = results.get("ingest_memory")
    if memory:
        rows += [
            [
                f"accrual ingest peak RSS at {int(lines):,} lines",
                f"{figures['peak_rss_mib']} MiB ({figures['seconds']} s)",
            ]
            for lines, figures in memory["volumes"].items()
        ]
        rows.append(["largest / smallest", f"{memory['largest_over_smallest']} (limit {memory['limit']})"])
    cold = results.get("coldstart")
    if cold:
        rows += [
            [f"import of functions/{name}", f"{figures['import_ms_median']} ms"]
            for name, figures in cold["functions"].items()
        ]
    cost = results.get("cost_from_steps")
    if cost:
        rows.append(["$ per million orders (DynamoDB + SNS, assumed prices)", cost["usd_per_million_orders"]["total"]])
    if rows:
        blocks.append(table(rows, ["figure", "value"]))
    local = (results.get("steps_dynamodb_local") or {}).get("steps") or {}
    if local:
        blocks.append(
            table(
                [
                    [
                        step,
                        local[step]["project"]["dynamodb_calls"],
                        local[step]["project"]["wru"],
                        local[step]["reference"]["wru"],
                    ]
                    for step in order
                    if step in local
                ],
                ["per order", "DynamoDB calls", "WRU: project", "WRU: reference"],
                title="The same steps on DynamoDB Local: the calls are the same; the write units follow its own "
                "accounting, not DynamoDB's 2 per item per started KB in a transaction (it charges a one-item "
                "transaction of 100 bytes 4 units, five such items on one table 4 too), so no bound beside them",
            )
        )
    save_results("_machine", machine())
    compared = before_and_after(results)
    if compared:
        blocks.append(compared)
    return "\n".join(blocks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-memory", action="store_true", help="ingest memory at 100,000 and 1,000,000 lines")
    parser.add_argument("--all", action="store_true", help="also moto_growth.py and ledger.py at 1,000 orders")
    parser.add_argument("--orders", type=int, default=200, help="orders of the steps bench")
    parser.add_argument("--before", default=BEFORE, help=f"the commit the steps are compared with (default {BEFORE})")
    args = parser.parse_args()
    before = Path(tempfile.mkdtemp(prefix="accrual-before-"))
    archive = subprocess.run(
        ["git", "archive", args.before, "layers", "dev"], cwd=HERE.parent, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    plan = [
        ["steps.py", "--orders", str(args.orders), "--code", str(before), "--section", "steps_before"],
        ["steps.py", "--orders", str(args.orders)],
        # a month shaped like an operator's: 1,200 lines from 100 shoppers (a shopper's orders share transactions)
        ["steps.py", "--orders", "720", "--shoppers", "100", "--section", "steps_shoppers_100"],
        # the same steps on DynamoDB Local: its calls count the same, its units do not follow DynamoDB's rules
        ["steps.py", "--orders", str(args.orders), "--emulator", "dynamodb-local", "--section", "steps_dynamodb_local"],
        ["cpu.py"],
        ["coldstart.py"],
        ["ingest_memory.py", *(["--lines", "100000,1000000"] if args.full_memory else [])],
        ["rules.py", "--seconds", "3"],
        ["ledger.py", "--fast-orders", "200,1000" if args.all else "200"],
    ]
    if args.all:
        plan.append(["moto_growth.py"])
    plan.append(["cost.py"])
    started = time.monotonic()
    for step in plan:
        step_started = time.monotonic()
        answer = subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]], cwd=HERE.parent)
        if answer.returncode:
            print(f"bench/{step[0]} failed ({answer.returncode})", file=sys.stderr)
            return answer.returncode
        print(f"(bench/{step[0]}: {time.monotonic() - step_started:.0f} s)", flush=True)
    print(summary())
    print(f"\nall benches: {time.monotonic() - started:.0f} s; figures in {HERE / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
