"""Throughput of the reconciliation with concurrent workers, against an emulator that answers concurrently.

The same report (the first report of N simulated orders, the bench's realistic data) is reconciled on a fresh stack
with 1, 4, 16 and 64 workers, with a fixed client-side latency added to every DynamoDB call
(`ACCRUAL_DYNAMODB_LATENCY_MS`, default 20 ms: DynamoDB's round trip rather than the emulator's), then confirmed as
of after the hold. Every run's balances, journal and notifications are compared with the serial run's (1 worker):
they must be identical. Prints lines per second, the speed-up over the serial run and the DynamoDB calls per line.

The emulator is ministack (its own virtual environment, `.tools/ministack`, built by `make ministack`): the
project's moto server answers one request at a time, which would measure moto's lock, not the workers.

    .venv/bin/python bench/throughput.py [--orders 600] [--workers 1,4,16,64] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import ROOT, accrual_config, build_orders, save_results, table  # noqa: E402
from _hook import latency  # noqa: E402
from accrual.adapters import reference_data  # noqa: E402
from accrual.adapters.ledger_tables import bind_ledger_tables  # noqa: E402
from accrual_dev.local.ministack import MinistackServer  # noqa: E402
from accrual_dev.local.server import LOCAL_ENVIRONMENT  # noqa: E402


class Ministack(MinistackServer):
    """The project's ministack launcher, with the emulator's CPU time for the bench's per-line figures."""

    def cpu_seconds(self) -> float:
        """The emulator process's CPU time so far (user + system), from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CallCounter:
    """Counts DynamoDB requests (every attempt) through the same botocore hook the latency uses, and the capacity
    units the emulator reports consumed (ReturnConsumedCapacity, which PynamoDB asks for on every call)."""

    def __init__(self) -> None:
        self.calls = 0
        self.read_units = 0.0
        self.write_units = 0.0

    def __call__(self, **_: object) -> None:
        self.calls += 1

    def after_call(self, parsed: dict | None = None, model=None, **_: object) -> None:
        consumed = (parsed or {}).get("ConsumedCapacity") or []
        for item in consumed if isinstance(consumed, list) else [consumed]:
            units = float(item.get("CapacityUnits", 0) or 0)
            write = float(item.get("WriteCapacityUnits", 0) or 0)
            read = float(item.get("ReadCapacityUnits", 0) or 0)
            if write or read:
                self.write_units += write
                self.read_units += read
            elif model is not None and model.name in (
                "TransactWriteItems",
                "PutItem",
                "UpdateItem",
                "BatchWriteItem",
                "DeleteItem",
            ):
                self.write_units += units
            else:
                self.read_units += units


def snapshot():
    sys.path.insert(0, str(ROOT / "tests"))
    from support.ledger import snapshot as ledger_snapshot

    return ledger_snapshot()


def run(emulator, orders, keys, workers: int, latency_ms: float, counter: CallCounter) -> dict:
    from accrual import settings as settings_module
    from accrual.composition import composition
    from accrual.settings import Settings
    from accrual_dev.local.provision import provision

    name = f"tp{workers}x{uuid.uuid4().hex[:6]}"
    os.environ["ACCRUAL_STACK"] = name
    latency.install(0)
    provision(name, template_path=ROOT / "template.yaml")
    for value in vars(settings_module).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    settings = Settings.from_env()
    bind_ledger_tables(settings)
    config = accrual_config()
    reference_data.save_config(config, now=orders.last_event)
    reference_data.save_clicks(
        (orders.clicks[orders.first[key][0].sub_id] for key in keys if orders.first[key][0].sub_id in orders.clicks),
        now=orders.last_event,
    )
    lines = [line for key in keys for line in orders.first[key]]
    random.Random(workers).shuffle(lines)  # every run sees the report in another order
    ledger = composition(settings).concurrent_ledger(workers, config=config)
    ledger.screen(lines[:1])
    now = orders.last_event + timedelta(hours=1)
    latency.install(latency_ms)
    counter.calls, counter.read_units, counter.write_units = 0, 0.0, 0.0
    started, cpu, server_cpu = time.perf_counter(), time.process_time(), emulator.cpu_seconds()
    counts = ledger.reconcile(lines, now=now)
    reconcile_seconds = time.perf_counter() - started
    cpu, server_cpu = time.process_time() - cpu, emulator.cpu_seconds() - server_cpu
    calls, read_units, write_units = counter.calls, counter.read_units, counter.write_units
    started = time.perf_counter()
    confirmed = ledger.confirm(now=now + timedelta(days=max(config.hold_days.values()) + 1))
    confirm_seconds = time.perf_counter() - started
    latency.install(0)
    return {
        "workers": workers,
        "lines": len(lines),
        "orders": len(keys),
        "seconds": reconcile_seconds,
        "lines_per_second": len(lines) / reconcile_seconds,
        "client_cpu_ms_per_line": 1000 * cpu / len(lines),
        "emulator_cpu_ms_per_line": 1000 * server_cpu / len(lines),
        "calls_per_line": calls / len(lines),
        "wcu_per_order": write_units / len(keys),
        "rcu_per_order": read_units / len(keys),
        "confirm_orders": confirmed.get("orders_due", 0),
        "confirm_seconds": confirm_seconds,
        "failed": counts.get("orders_failed", 0) + confirmed.get("orders_failed", 0),
        "retries": counts.get("retries", 0) + confirmed.get("retries", 0),
        "chunks_retried": counts.get("chunks_retried", 0),
        "snapshot": snapshot(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=int(os.environ.get("BENCH_THROUGHPUT_ORDERS", "600")))
    parser.add_argument("--workers", default="1,4,16,64")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    worker_counts = [int(value) for value in args.workers.split(",")]
    if worker_counts[0] != 1:
        worker_counts.insert(0, 1)

    orders = build_orders(days=30, orders_per_day=max(20, args.orders // 25))
    keys = sorted(orders.first)
    random.Random(5).shuffle(keys)
    keys = sorted(keys[: args.orders])
    counter = CallCounter()
    latency.install(0)
    from botocore import session as botocore_session

    original_init = botocore_session.Session.__init__

    def counting_init(self, *a, **k):
        original_init(self, *a, **k)
        self.register("before-send.dynamodb", counter, unique_id="bench-dynamodb-calls")
        self.register("after-call.dynamodb", counter.after_call, unique_id="bench-dynamodb-capacity")

    botocore_session.Session.__init__ = counting_init

    with Ministack() as emulator:
        os.environ.update({**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": emulator.url, "POWERTOOLS_LOG_LEVEL": "ERROR"})
        results = [run(emulator, orders, keys, workers, args.latency_ms, counter) for workers in worker_counts]
    serial = results[0]
    rows = []
    for result in results:
        same = result["snapshot"] == serial["snapshot"]
        result["identical_to_serial"] = same
        rows.append(
            [
                result["workers"],
                result["lines"],
                f"{result['seconds']:.1f}",
                f"{result['lines_per_second']:.0f}",
                f"{result['lines_per_second'] / serial['lines_per_second']:.1f}x",
                f"{result['calls_per_line']:.2f}",
                f"{result['wcu_per_order']:.1f}",
                f"{result['rcu_per_order']:.1f}",
                f"{result['client_cpu_ms_per_line']:.1f}",
                f"{result['emulator_cpu_ms_per_line']:.1f}",
                f"{result['confirm_orders']}",
                f"{result['confirm_seconds']:.1f}",
                result["retries"],
                result["failed"],
                "yes" if same else "NO",
            ]
        )
    print(
        table(
            rows,
            [
                "workers",
                "lines",
                "seconds",
                "lines/s",
                "speed-up",
                "DynamoDB calls/line",
                "WCU/order",
                "RCU/order",
                "client CPU ms/line",
                "emulator CPU ms/line",
                "confirmed",
                "confirm s",
                "retries",
                "failed",
                "same ledger",
            ],
            title=f"Reconcile throughput on ministack, {args.latency_ms:g} ms added per DynamoDB call, "
            f"{os.cpu_count()} cores",
        )
    )
    save_results(
        "throughput",
        {
            "latency_ms": args.latency_ms,
            "emulator": "ministack 1.5.33",
            "runs": [{k: v for k, v in result.items() if k != "snapshot"} for result in results],
        },
    )
    mismatched = [result["workers"] for result in results if not result["identical_to_serial"]]
    if mismatched or any(result["failed"] for result in results):
        print(f"ledger differs from the serial run with workers {mismatched}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
