"""Ledger bench on the embedded local stack: a moto server on a free loopback port, template.yaml provisioned as a
fresh stack for every volume, N attributed orders from the seeded simulator taken through their whole life:

  A  reconcile, first report     the lines as first reported (paid / pending): a new order each
  B  reconcile, replay of A      the very same lines again (an overlapping pull): reads only, no write expected
  C  reconcile, final report     the lines as finally reported (settled / approved)
  D  confirm                     the confirmation cycle after the hold: every order due (tracemalloc peak measured)
  E  outbox sweep                OutboxRelay.publish_unpublished: every notification written by A-D
  F  stream relay (sample)       the deployed relay's path (Powertools Idempotency) on up to 100 notifications

For each phase: AWS calls by operation, items per TransactWriteItems, estimated write and read request units
(moto reports no real consumed capacity; see `_common.Meter`), and emulator seconds. The figures that describe the
design are the counts; seconds are moto's.

    .venv/bin/python bench/ledger.py [--fast-orders 200,1000] [--full-max 200] [--orders N  (stock moto: slow)]

Volumes run on bench/_fast_moto.py (moto without its per-item copy of whole tables; same counts, see there);
volumes above --full-max run A, C and D only. bench/moto_growth.py shows the stock emulator's time growth.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
import tracemalloc
import uuid
from datetime import timedelta
from types import SimpleNamespace

from _common import LocalStack, Meter, accrual_config, build_orders, save_results, table
from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import OutboxRecord, bind_ledger_tables
from accrual.composition import composition

GC_EVERY = 100  # AWS calls between forced garbage collections while confirm is traced
CHUNK_ORDERS = 50  # orders per reconcile call, about one partner report page
PHASES = ("A_first_report", "B_replay", "C_final_report", "D_confirm", "E_outbox_sweep", "F_stream_relay")


def _chunks(report: dict, keys: list[str]):
    for start in range(0, len(keys), CHUNK_ORDERS):
        yield [line for key in keys[start : start + CHUNK_ORDERS] for line in report[key]]


class _Done(Exception):
    """The phases of a volume run without the full set end after D."""


def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="bench-relay",
        memory_limit_in_mb=256,
        aws_request_id=uuid.uuid4().hex,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench-relay",
        get_remaining_time_in_millis=lambda: 60_000,
    )


def run_volume(local: LocalStack, orders, n: int, full: bool = True) -> dict:
    config = accrual_config()
    keys = orders.settled()
    random.Random(n).shuffle(keys)
    keys = keys[:n]
    if len(keys) < n:
        raise SystemExit(f"only {len(keys)} settled orders in the simulated world, {n} asked")
    name = f"b{n}x{uuid.uuid4().hex[:6]}"
    settings, tables, labels, provision_seconds = local.stack(name)
    bind_ledger_tables(settings)
    reference_data.save_config(config, now=orders.last_event)
    reference_data.save_clicks((orders.clicks[orders.final[key][0].sub_id] for key in keys), now=orders.last_event)

    meter = Meter(tables, labels)
    meter.install()
    ledger = composition(settings).ledger(config)  # the deployed function reads the config once per invocation
    t_first = orders.last_event + timedelta(hours=1)
    t_final = t_first + timedelta(hours=2)
    t_confirm = t_final + timedelta(days=max(config.hold_days.values()) + 1)
    results, seconds, counts, sample = {}, {}, {}, []
    try:
        reconciles = [
            ("A_first_report", orders.first, t_first),
            ("B_replay", orders.first, t_first + timedelta(hours=1)),
            ("C_final_report", orders.final, t_final),
        ]
        for phase_name, report, now in reconciles if full else [reconciles[0], reconciles[2]]:
            meter.start(phase_name)
            started, total = time.perf_counter(), {}
            for lines in _chunks(report, keys):
                for key, value in ledger.reconcile(lines, now=now).items():
                    total[key] = total.get(key, 0) + value
            seconds[phase_name] = time.perf_counter() - started
            results[phase_name], counts[phase_name] = meter.stop(), total

        # D: confirm, memory traced. A confirm before anything is due warms the code paths up (imports, clients).
        ledger.confirm(now=orders.last_event - timedelta(days=365))
        gc.collect()
        meter.start("D_confirm")
        # Cyclic garbage waits for CPython's generation-2 collection, whose timing depends on the whole heap (here
        # the bench's own data): a collection every GC_EVERY AWS calls makes the peak describe the confirm cycle.
        meter.gc_every, meter.live_peak = GC_EVERY, 0
        tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
        base, _ = tracemalloc.get_traced_memory()
        started = time.perf_counter()
        counts["D_confirm"] = ledger.confirm(now=t_confirm)
        seconds["D_confirm"] = time.perf_counter() - started
        current, peak = tracemalloc.get_traced_memory()
        gc.collect()
        after_gc, _ = tracemalloc.get_traced_memory()
        if os.environ.get("BENCH_TRACE_TOP"):
            for stat in tracemalloc.take_snapshot().statistics("traceback")[: int(os.environ["BENCH_TRACE_TOP"])]:
                print(stat, *stat.traceback.format(most_recent_first=True)[:24], sep="\n  ")
        tracemalloc.stop()
        results["D_confirm"] = meter.stop()
        confirm_memory = {
            "peak_kib": round((peak - base) / 1024, 1),
            "retained_kib": round((current - base) / 1024, 1),
            "retained_after_gc_kib": round((after_gc - base) / 1024, 1),
        }
        confirm_memory["live_peak_kib"] = round((meter.live_peak - base) / 1024, 1)
        confirm_memory["gc_every_calls"] = meter.gc_every
        meter.gc_every = 0

        if not full:
            raise _Done
        relay = composition(settings).relay
        meter.start("E_outbox_sweep")
        started = time.perf_counter()
        counts["E_outbox_sweep"] = relay.publish_unpublished(now=t_confirm + timedelta(hours=1))
        seconds["E_outbox_sweep"] = time.perf_counter() - started
        results["E_outbox_sweep"] = meter.stop()

        # as the stream relay gets them: the item's attributes with the body as text, whichever form it is stored in
        sample = [
            {**record.attribute_values, "body": record.body}
            for _, record in zip(range(100), OutboxRecord.scan(), strict=False)
        ]
        meter.start("F_stream_relay")
        started = time.perf_counter()
        outcome: dict[str, int] = {}
        for item in sample:
            done = relay.publish(item, now=t_confirm + timedelta(hours=2), lambda_context=lambda_context())
            outcome[done] = outcome.get(done, 0) + 1
        seconds["F_stream_relay"] = time.perf_counter() - started
        counts["F_stream_relay"] = outcome
        results["F_stream_relay"] = meter.stop()
    except _Done:
        pass
    finally:
        meter.uninstall()
    sample = sample if full else []

    notifications = sum(
        counts[phase].get("notifications", 0) for phase in ("A_first_report", "C_final_report", "D_confirm")
    )
    out = {
        "orders": n,
        "lines_first": sum(len(orders.first[k]) for k in keys),
        "lines_final": sum(len(orders.final[k]) for k in keys),
        "notifications": notifications,
        "stack": name,
        "provision_seconds": round(provision_seconds, 1),
        "orders_table_items_estimated": meter.items["orders"],
        "confirm_memory": confirm_memory,
        "phases": {},
    }
    growth = {}
    for phase_name, phase in results.items():
        per = n if phase_name != "F_stream_relay" else max(1, len(sample))
        figures = phase.as_dict(per)
        figures["per"] = "order" if phase_name != "F_stream_relay" else "notification"
        figures["ledger_counts"] = counts[phase_name]
        figures["emulator_seconds"] = round(seconds[phase_name], 2)
        figures["emulator_orders_per_second"] = round(per / seconds[phase_name], 1) if seconds[phase_name] else None
        out["phases"][phase_name] = figures
        for bucket, (spent, transactions, items) in sorted(phase.txn_time_by_size.items()):
            slot = growth.setdefault(bucket, [0.0, 0, 0])
            slot[0] += spent
            slot[1] += transactions
            slot[2] += items
    out["transaction_time_by_orders_table_items"] = {
        str(bucket): {
            "transactions": transactions,
            "ms_per_transaction": round(spent / transactions * 1000, 1),
            "ms_per_transaction_item": round(spent / items * 1000, 2),
        }
        for bucket, (spent, transactions, items) in sorted(growth.items())
    }
    return out


def _label(volume: dict) -> str:
    return f"N={volume['orders']}{'f' if volume.get('emulator', '').startswith('moto, no') else ''}"


def report(volumes: list[dict]) -> str:
    blocks = []
    rows = []
    for volume in volumes:
        for phase_name, figures in volume["phases"].items():
            txn = figures["transactions"]
            items = sum(int(size) * count for size, count in figures["items_per_transaction"].items())
            rows.append(
                [
                    f"{_label(volume)} {phase_name}",
                    figures["per"],
                    figures["api_calls_per_order"],
                    round(txn / figures["orders"], 2) if figures["orders"] else "",
                    round(items / txn, 2) if txn else "-",
                    figures["wru_per_order"],
                    figures["rru_per_order"],
                    figures["emulator_orders_per_second"],
                ]
            )
    blocks.append(
        table(
            rows,
            ["phase", "per", "API calls", "txns", "items/txn", "WRU", "RRU", "emulator per/s"],
            title="\n== 2. Ledger write path on moto: counts per order (or per notification) ==",
        )
    )
    rows = []
    for volume in volumes:
        for phase_name, figures in volume["phases"].items():
            calls = ", ".join(
                f"{name.split(':')[1]} {value:g}" for name, value in figures["calls_per_order_by_operation"].items()
            )
            rows.append([f"{_label(volume)} {phase_name}", calls])
    blocks.append(table(rows, ["phase", "API calls per order by operation"]))
    rows = []
    for volume in volumes:
        for phase_name, figures in volume["phases"].items():
            if figures["transaction_items_by_kind"]:
                kinds = ", ".join(
                    f"{k} {v / figures['orders']:.2f}" for k, v in figures["transaction_items_by_kind"].items()
                )
                rows.append(
                    [
                        f"{_label(volume)} {phase_name}",
                        kinds,
                        ", ".join(f"{s}:{c}" for s, c in figures["items_per_transaction"].items()),
                    ]
                )
    blocks.append(table(rows, ["phase", "transaction items per order", "items/txn histogram"]))
    rows = []
    for volume in volumes:
        for bucket, figures in volume["transaction_time_by_orders_table_items"].items():
            rows.append(
                [
                    _label(volume),
                    bucket,
                    figures["transactions"],
                    figures["ms_per_transaction"],
                    figures["ms_per_transaction_item"],
                ]
            )
    blocks.append(
        table(
            rows,
            ["N", "orders-table items at start", "transactions", "ms / txn (emulator)", "ms / txn item"],
            title="\n-- moto TransactWriteItems time vs table size (deep copy per item; emulator only) --",
        )
    )
    rows = [
        [
            _label(volume),
            volume["phases"]["D_confirm"]["ledger_counts"].get("orders_due"),
            volume["confirm_memory"]["peak_kib"],
            volume["confirm_memory"]["live_peak_kib"],
            volume["confirm_memory"]["retained_after_gc_kib"],
        ]
        for volume in volumes
    ]
    blocks.append(
        table(
            rows,
            ["N", "orders due", "peak KiB", "live max KiB (after gc)", "retained after gc KiB"],
            title=f"\n== 3. Ledger.confirm memory (tracemalloc; page_size=100; gc.collect every "
            f"{GC_EVERY} AWS calls) ==",
        )
    )
    return "\n".join(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="", help="volumes on stock moto (comma-separated; slow, see moto_growth)")
    parser.add_argument(
        "--fast-orders",
        default="200,1000",
        help="volumes on moto without the per-item table copy (bench/_fast_moto.py)",
    )
    parser.add_argument(
        "--full-max",
        type=int,
        default=200,
        help="volumes above this run only A, C and D (B, E, F are per-order counts already shown)",
    )
    args = parser.parse_args()
    plan = [(False, int(value)) for value in args.orders.split(",") if value.strip()]
    plan += [(True, int(value)) for value in args.fast_orders.split(",") if value.strip()]
    orders = build_orders()
    results = []
    for fast in (False, True):
        volumes = [n for is_fast, n in plan if is_fast == fast]
        if not volumes:
            continue
        with LocalStack(fast=fast) as local:
            for n in volumes:
                started = time.perf_counter()
                result = run_volume(local, orders, n, full=n <= args.full_max)
                result["emulator"] = "moto, no per-item table copy" if fast else "moto (stock)"
                result["total_seconds"] = round(time.perf_counter() - started, 1)
                results.append(result)
                print(f"N={n} on {result['emulator']}: done in {result['total_seconds']} s", flush=True)
    save_results("ledger", {"volumes": results})
    print(report(results))


if __name__ == "__main__":
    main()
