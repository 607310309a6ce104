"""Rules bench: decisions per second of `decide_order` (pure, single core) on realistic orders, and the peak memory
(tracemalloc) of N decisions streamed (each decision dropped once made, as a pull page does).

    .venv/bin/python bench/rules.py [--decisions 50000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections import Counter
from datetime import timedelta

from _common import accrual_config, build_orders, save_results, table
from accrual.domain.decision import MissingFxRate
from accrual.domain.rules import decide_order


def workload():
    """(lines, click, review accounts) per order: first reports and final reports of every simulated order."""
    orders = build_orders()
    config = accrual_config()
    now = orders.last_event + timedelta(hours=1)
    pool, mix = [], Counter()
    for report in (orders.first, orders.final):
        for lines in report.values():
            click = orders.clicks.get(lines[0].sub_id or "")
            review = (
                frozenset({"acct-other"})
                if any(line.new_user_coupon for line in lines) and len(pool) % 2
                else frozenset()
            )
            pool.append((lines, click, review))
    for lines, _click, _review in pool:
        mix[f"lines={len(lines)}"] += 1
        for line in lines:
            mix["hot"] += line.is_hot
            mix["non_affiliate"] += not line.is_affiliate
            mix["non_usd_line"] += line.currency != "USD"
            mix["vat_country"] += line.ship_to_country in config.vat_rates and line.tax is None
            mix[f"status={line.status.value}"] += 1
            mix[f"category={line.category_id}"] += 1
    return pool, config, now, mix, orders.decorated


def run(decisions: int, seconds: float) -> dict:
    pool, config, now, mix, decorated = workload()
    outcomes, codes = Counter(), Counter()
    for lines, click, review in pool:  # warm up and describe the mix
        try:
            decision = decide_order(lines, click, config, now=now, other_new_user_coupon_accounts=review)
        except MissingFxRate:
            outcomes["missing_fx"] += 1
            continue
        outcomes[decision.outcome.value] += 1
        codes.update(decision.reasons)

    # Throughput: as many passes over the pool as fit in `seconds`, garbage collector as in production.
    done, started = 0, time.perf_counter()
    cpu_started = time.process_time()
    while time.perf_counter() - started < seconds:
        for lines, click, review in pool:
            decide_order(lines, click, config, now=now, other_new_user_coupon_accounts=review)
        done += len(pool)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    lines_done = sum(len(lines) for lines, _, _ in pool) * (done // len(pool))

    # Memory: N decisions streamed (made and dropped), the pool already in memory before tracing starts.
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    traced_started = time.perf_counter()
    checkpoints = {decisions // 5, decisions // 2, decisions}
    curve = {}
    for number in range(1, decisions + 1):
        lines, click, review = pool[number % len(pool)]
        decide_order(lines, click, config, now=now, other_new_user_coupon_accounts=review)
        if number in checkpoints:
            current, peak = tracemalloc.get_traced_memory()
            curve[number] = {
                "current_kib": round((current - base) / 1024, 1),
                "peak_kib": round((peak - base) / 1024, 1),
            }
    traced_seconds = time.perf_counter() - traced_started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "orders_in_pool": len(pool),
        "lines_per_order_mix": {key: value for key, value in sorted(mix.items()) if key.startswith("lines=")},
        "line_mix": {key: value for key, value in sorted(mix.items()) if not key.startswith("lines=")},
        "decorations": dict(decorated),
        "outcomes": dict(outcomes),
        "top_reasons": dict(codes.most_common(12)),
        "decisions": done,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "decisions_per_second": round(done / wall),
        "lines_per_second": round(lines_done / wall),
        "us_per_decision": round(wall / done * 1e6, 1),
        "memory_decisions": decisions,
        "memory_peak_kib": round((peak - base) / 1024, 1),
        "memory_retained_kib": round((current - base) / 1024, 1),
        "memory_curve": curve,
        "memory_pass_seconds_with_tracemalloc": round(traced_seconds, 2),
    }


def report(result: dict) -> str:
    rows = [
        ["orders in the pool (first + final reports)", result["orders_in_pool"]],
        ["lines per order", ", ".join(f"{k[6:]}: {v}" for k, v in result["lines_per_order_mix"].items())],
        ["outcomes", ", ".join(f"{k}: {v}" for k, v in result["outcomes"].items())],
        ["decisions timed (single core)", f"{result['decisions']:,} in {result['wall_seconds']} s"],
        ["decisions / s", f"{result['decisions_per_second']:,}"],
        ["lines / s", f"{result['lines_per_second']:,}"],
        ["µs / decision", result["us_per_decision"]],
        [f"peak memory, {result['memory_decisions']:,} decisions streamed", f"{result['memory_peak_kib']:,} KiB"],
        ["retained after the stream", f"{result['memory_retained_kib']:,} KiB"],
        [
            "peak after n decisions",
            ", ".join(f"{int(n):,}: {v['peak_kib']:,} KiB" for n, v in result["memory_curve"].items()),
        ],
    ]
    return table(rows, ["rules: decide_order", "value"], title="\n== 1. Rules (pure Python, no I/O) ==")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    result = run(args.decisions, args.seconds)
    save_results("rules", result)
    print(report(result))


if __name__ == "__main__":
    main()
