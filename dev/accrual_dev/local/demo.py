"""`make run`: the main job end to end on the embedded local stack, with a summary of what happened.

A moto server is started and provisioned from template.yaml, the partner simulator serves a seeded world of
AliExpress sub-orders and Admitad actions, and the operator commands (`accrual config load`, `clicks load`, `run`,
`balance`, `explain`, `audit`) run as subprocesses exactly as an operator would type them. Two scheduled cycles run:
the first as of the simulator's clock, the second three weeks later, when partners have settled, declined and
invalidated orders and the hold periods have passed. Exit 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from accrual.settings import RESOURCE_VARIABLES
from accrual_dev.local.provision import default_template_path, provision
from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer

STACK = "demo"
SEED = 3
START = datetime.fromisoformat("2026-10-01T00:00:00+00:00")
# A fresh partner cursor reads only the overlap window (5 days) before the cycle's time, so the simulated world is
# five days long and the first cycle, at its end, sees all of it. 12 orders a day keeps moto fast enough (its
# TransactWriteItems copies whole tables) while still giving capped, non-affiliate, hot and invalid orders.
DAYS = 5
ORDERS_PER_DAY = 12
FIRST_CYCLE = START + timedelta(days=DAYS)
# Three weeks on, receipts, settlements (AliExpress hold 3 days, Admitad 5) and declines have happened.
SECOND_CYCLE = FIRST_CYCLE + timedelta(days=21)
WORKERS = 4  # threads per reconcile worker (accrual run --workers)
ROOT = default_template_path().parent
CONFIG = ROOT / "events" / "demo-config.json"
# Which order to explain, in order of preference: the ones support is asked about most.
INTERESTING = ("CAP_APPLIED", "NON_AFFILIATE_RATE", "PARTNER_INVALID", "VIRTUAL_PRODUCT", "HOT_PRODUCT_RATE")


class DemoFailed(Exception):
    pass


def _accrual_command() -> list[str]:
    """The console script beside this interpreter (what `make` installs), else the module."""
    script = Path(sys.executable).parent / "accrual"
    return [str(script)] if script.exists() else [sys.executable, "-m", "accrual_dev.cli"]


def accrual(*arguments: str) -> tuple[int, str]:
    """Run one operator command; its logs (stderr) are shown only when it fails."""
    done = subprocess.run(
        [*_accrual_command(), *arguments],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    # 1 is an answer (audit differences, unsettled orders) when the command printed one, and so is 2 from `clicks
    # load` (refused clicks); a crash also exits 1, but prints nothing on stdout.
    if done.returncode not in (0, 1, 2) or (done.returncode and not done.stdout.strip()):
        raise DemoFailed(f"accrual {' '.join(arguments)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.returncode, done.stdout


def _local_environment(endpoint: str) -> None:
    """Point this process and its subprocesses at the local stack only."""
    for name in (*RESOURCE_VARIABLES, "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint, "ACCRUAL_STACK": STACK})
    # The commands log every page at INFO to stderr; the summary below is what the demo is for.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


def _drain_queue(sqs, queue_url: str) -> Counter[str]:
    """Count (and delete) every notification on the local queue by its event_type attribute."""
    arrived: Counter[str] = Counter()
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return arrived
        for message in messages:
            envelope = json.loads(message["Body"])
            arrived[envelope.get("MessageAttributes", {}).get("event_type", {}).get("Value", "?")] += 1
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                for number, message in enumerate(messages)
            ],
        )


def _cycle(label: str, now: datetime, sqs, queue_url: str, failures: list[str]) -> dict[str, Any]:
    started = time.monotonic()
    code, output = accrual("run", "--now", now.isoformat(), "--workers", str(WORKERS))
    result = json.loads(output)
    if code:
        failures.append(f"{label}: accrual run exited {code}")
    arrived = _drain_queue(sqs, queue_url)
    pulled = result["pull"]
    print(f"\n== {label}: accrual run --now {now.isoformat()} ({time.monotonic() - started:.1f} s)")
    for partner, counts in sorted(pulled["partners"].items()):
        if "error" in counts:
            failures.append(f"{label}: {partner} pull failed: {counts['error']}")
            print(f"  {partner:<10} FAILED {counts['error']}")
            continue
        balanced = counts["read"] == counts["accepted"] + counts["quarantined"]
        if not balanced:
            failures.append(f"{label}: {partner} read {counts['read']} != accepted + quarantined")
        print(
            f"  {partner:<10} {counts['pages']:>3} pages, lines read {counts['read']:>4} = accepted "
            f"{counts['accepted']:>4} + quarantined {counts['quarantined']:>2}  "
            f"{'ok' if balanced else 'MISMATCH'}"
        )
    confirmed = {name: value for name, value in sorted(result["confirm"].items()) if value and isinstance(value, int)}
    print(f"  confirm:   {', '.join(f'{name} {value}' for name, value in confirmed.items()) or 'nothing due'}")
    for stage in ("pull", "confirm"):  # the work queue and the reconcile workers (accrual_dev.poller)
        fanout = result[stage].get("fanout", {})
        print(
            f"  fan-out {stage:<8} {fanout.get('units_done', 0)} units in {fanout.get('batches', 0)} batches "
            f"of the work queue, {fanout.get('workers')} threads per worker, "
            f"{fanout.get('unit_failures', 0)} failed attempts"
        )
    published = sum(result["notify"].values())
    print(
        f"  notify:    {published} published ({', '.join(f'{k} {v}' for k, v in sorted(result['notify'].items()))})"
        f"; on the local queue: {sum(arrived.values())} "
        f"({', '.join(f'{kind} {count}' for kind, count in sorted(arrived.items()))})"
    )
    # An order the ledger could not settle (no fx rate, contention, a journal conflict) is a failed demo.
    for stage in (result["confirm"], *(counts.get("reconciled", {}) for counts in pulled["partners"].values())):
        for name in ("orders_failed", "journal_conflicts"):
            if stage.get(name):
                failures.append(f"{label}: {name} {stage[name]}")
    if not result["ok"]:
        failures.append(f"{label}: the cycle reported failed partners {pulled['failed']}")
    if sum(arrived.values()) != published:
        failures.append(f"{label}: {published} notifications published but {sum(arrived.values())} arrived")
    return result


def _ledger_summary(settings, failures: list[str]) -> list[str]:
    """Orders by state and journal moves by kind, read straight from the tables; returns the orders to explain."""
    from accrual.adapters.ledger_items import stored_order
    from accrual.adapters.ledger_tables import BalanceRecord, JournalEntryRecord, OrderRecord, bind_ledger_tables

    bind_ledger_tables(settings)
    states: Counter[str] = Counter()
    by_reason: dict[str, list[str]] = {}
    for record in OrderRecord.scan(OrderRecord.sk == "ORDER"):
        order, decision, _ = stored_order(record, with_lines=False)  # a new stack's orders: the packed form
        states[f"{order.partner} {order.state}"] += 1
        body = json.loads(decision) if decision else {}
        for reason in body.get("reasons", []):
            by_reason.setdefault(reason, []).append(body["order_id"])
    moves: Counter[str] = Counter(
        entry.transition for entry in JournalEntryRecord.scan(JournalEntryRecord.sk.startswith("ENTRY#"))
    )
    print("\n== Ledger")
    print("  orders by state:  " + ", ".join(f"{name} {count}" for name, count in sorted(states.items())))
    print("  journal moves:    " + ", ".join(f"{name} {count}" for name, count in sorted(moves.items())))
    print("  reasons fired:    " + ", ".join(f"{code} {len(orders)}" for code, orders in sorted(by_reason.items())))
    if not states:
        failures.append("no orders reached the ledger")

    balances = sorted(
        BalanceRecord.scan(),
        reverse=True,
        key=lambda b: (b.confirmed_usd or Decimal(0)) + (b.pending_usd or Decimal(0)),
    )
    print(f"\n== Top balances of {len(balances)} shoppers (accrual balance USER_ID)")
    for balance in balances[:3]:
        print("  " + accrual("balance", balance.user_id)[1].strip())
    if not any((b.confirmed_usd or 0) > 0 for b in balances):
        failures.append("no shopper has a confirmed balance after the second cycle")
    return [orders[0] for code in INTERESTING if (orders := sorted(by_reason.get(code, [])))][:1]


def run_demo() -> int:
    started = time.monotonic()
    failures: list[str] = []
    with ExitStack() as resources:
        server = resources.enter_context(MotoServer())
        _local_environment(server.url)
        provisioned = provision(STACK)
        print(
            f"local AWS (moto) at {server.url}; stack {STACK} {provisioned.action} from template.yaml "
            f"in {provisioned.seconds:.1f} s"
        )

        from accrual.settings import Settings
        from accrual_dev.simulator import running_simulator
        from accrual_dev.simulator.local import configure_local_partners

        settings = Settings.from_env()
        simulator = resources.enter_context(
            running_simulator(seed=SEED, start=START, days=DAYS, orders_per_day=ORDERS_PER_DAY, now=FIRST_CYCLE)
        )
        configure_local_partners(settings, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates)
        world = simulator.world
        print(
            f"partner simulator at {simulator.url} (seed {SEED}): {len(world.aliexpress)} AliExpress sub-orders, "
            f"{len(world.admitad)} Admitad actions, {len(world.clicks)} clicks, "
            f"{START:%Y-%m-%d} to {world.end:%Y-%m-%d}"
        )

        _, output = accrual("config", "load", str(CONFIG))
        print(f"\n$ accrual config load {CONFIG.relative_to(ROOT)}\n  {output.strip()}")
        folder = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="accrual-demo-")))
        clicks = folder / "clicks.jsonl"
        clicks.write_text(world.clicks_jsonl(), encoding="utf-8")
        code, output = accrual("clicks", "load", str(clicks))
        counts = json.loads(output)
        print(
            f"$ accrual clicks load clicks.jsonl\n  {counts['stored']} stored, {counts['unchanged']} unchanged, "
            f"{counts['refused']} refused"
        )
        if code:
            failures.append("some clicks were refused")

        sqs = settings.client("sqs")
        queue_url = settings.local_notifications_queue_url
        assert queue_url is not None, "the local stack subscribes a notifications queue"
        _cycle("first cycle", FIRST_CYCLE, sqs, queue_url, failures)
        simulator.app.now = SECOND_CYCLE  # the partners' clock moves on with the schedule
        _cycle("second cycle", SECOND_CYCLE, sqs, queue_url, failures)

        for order_id in _ledger_summary(settings, failures):
            for lang in ("en", "ru"):
                print(f"\n== accrual explain {order_id} --lang {lang}")
                print("  " + accrual("explain", order_id, "--lang", lang)[1].strip().replace("\n", "\n  "))

        code, output = accrual("audit")
        print(f"\n== accrual audit\n  {output.strip()}")
        if code:
            failures.append("the audit found balances that differ from the journal")

    print(f"\nfinished in {time.monotonic() - started:.1f} s; every process stopped")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print("demo OK" if not failures else f"demo FAILED ({len(failures)} problems)")
    return 1 if failures else 0


def main() -> int:
    # SIGTERM unwinds like Ctrl-C (KeyboardInterrupt), so the moto server, the simulator and a running command are
    # stopped either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run_demo()
    except DemoFailed as error:
        print(f"demo FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every process stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
