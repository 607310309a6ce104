"""Concurrent workers inside one process give exactly what a serial run gives: the same balances, journal and
notifications over the same reports, replayed and shuffled."""

from __future__ import annotations

import importlib.util
import random
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest

from accrual.composition import composition
from accrual.service.fanout import ConcurrentLedger, order_chunks
from support.ledger import T0, line, load_reference_data, snapshot, wipe_ledger
from support.readers import audit

BENCH_HOOK = Path(__file__).resolve().parents[2] / "bench" / "_hook"


def bench_hook(name: str) -> ModuleType:
    """A module of the benches' start-up hook (bench/_hook), which the package itself never imports."""
    spec = importlib.util.spec_from_file_location(f"bench_hook_{name}", BENCH_HOOK / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


USERS = {f"u{number:02d}": ("EUR" if number % 3 else "USD") for number in range(12)}


def reports(seed: int) -> list[list]:
    """Three reports over 48 orders of 12 shoppers (so several orders share a balance item): new lines, then status
    changes and amount changes, then settlements and invalidations; some orders have two lines."""
    rng = random.Random(seed)
    orders = [(f"O{number:03d}", f"u{rng.randrange(12):02d}", rng.choice([1, 1, 2])) for number in range(48)]
    first, second, third = [], [], []
    for order, user, count in orders:
        for index in range(1, count + 1):
            amount = f"{rng.randrange(5, 900)}.{rng.randrange(100):02d}"
            first.append(line(order, f"{order}-{index}", user=user, amount=amount))
            if rng.random() < 0.4:
                second.append(
                    line(
                        order,
                        f"{order}-{index}",
                        user=user,
                        at=T0 + timedelta(hours=2),
                        amount=f"{rng.randrange(5, 900)}.00",
                    )
                )
            roll = rng.random()
            if roll < 0.5:
                third.append(
                    line(
                        order, f"{order}-{index}", user=user, status="settled", amount=amount, at=T0 + timedelta(days=1)
                    )
                )
            elif roll < 0.6:
                third.append(
                    line(
                        order, f"{order}-{index}", user=user, status="invalid", amount=amount, at=T0 + timedelta(days=1)
                    )
                )
    return [first, second, third]


def run(stack, batches: list[list], workers: int) -> dict:
    ledger = composition(stack).concurrent_ledger(workers)
    for number, batch in enumerate(batches):
        counts = ledger.reconcile(batch, now=T0 + timedelta(days=number))
        assert counts.get("orders_failed", 0) == 0 and counts.get("journal_conflicts", 0) == 0
    confirmed = ledger.confirm(now=T0 + timedelta(days=4))
    assert confirmed.get("orders_failed", 0) == 0 and confirmed["orders_due"] > 0
    return snapshot()


def test_sixteen_workers_give_the_serial_ledger_replayed_and_shuffled(stack):
    load_reference_data(stack, users=USERS)
    batches = reports(seed=7)
    serial = run(stack, batches, workers=1)
    assert serial["journal"] and serial["outbox"] and len(serial["balances"]) > 6

    wipe_ledger(stack)
    rng = random.Random(11)
    shuffled = [rng.sample(batch, len(batch)) for batch in batches]
    # every report delivered twice (a redelivered page), and the first again after the last (a stale replay)
    replayed = [shuffled[0], shuffled[0], shuffled[1], shuffled[1], shuffled[2], shuffled[0]]
    ledger = composition(stack).concurrent_ledger(16)
    for number, batch in zip([0, 0, 1, 1, 2, 2], replayed, strict=False):
        counts = ledger.reconcile(batch, now=T0 + timedelta(days=number))
        assert counts.get("orders_failed", 0) == 0 and counts["lines_received"] == len(batch)
    ledger.confirm(now=T0 + timedelta(days=4))
    assert snapshot() == serial
    assert audit(stack)["ok"]


def test_concurrent_orders_of_one_shopper_lose_no_money(stack):
    """Every order on the same balance item: concurrent transactions on it are retried, never lost."""
    load_reference_data(stack, users={"alice": "EUR"})
    lines = [line(f"A{number:02d}", amount="100.00") for number in range(40)]
    counts = composition(stack).concurrent_ledger(16).reconcile(lines, now=T0)
    assert counts["orders_changed"] == 40 and counts.get("orders_failed", 0) == 0
    assert snapshot()["balances"]["alice"][0] == "200.00"  # 40 orders x 5% (tools) of 100 USD
    assert audit(stack)["ok"]


def test_an_orders_lines_stay_in_one_chunk_and_every_line_is_handed_out_once():
    lines = [line(f"O{number % 30:02d}", f"L{number}") for number in range(100)]
    chunks = order_chunks(lines, workers=4)
    assert sorted(item.line_id for chunk in chunks for item in chunk) == sorted(item.line_id for item in lines)
    owners = {}
    for index, chunk in enumerate(chunks):
        for item in chunk:
            assert owners.setdefault(item.order_key, index) == index


@pytest.mark.parametrize("workers", [0, 257])
def test_workers_out_of_range_are_refused(workers):
    with pytest.raises(ValueError, match="workers must be"):
        ConcurrentLedger.__init__(object.__new__(ConcurrentLedger), None, workers=workers)


def test_the_latency_hook_waits_before_every_dynamodb_request_of_boto3_and_pynamodb(stack, monkeypatch):
    import boto3
    from pynamodb.connection import Connection

    latency = bench_hook("latency")

    waits: list[float] = []
    monkeypatch.setattr(latency.time, "sleep", waits.append)
    latency.install(7)
    try:
        boto3.client("dynamodb", region_name=stack.region).describe_table(TableName=stack.orders_table)
        Connection(region=stack.region, host=stack.dynamodb_host).describe_table(stack.balances_table)
        boto3.client("s3", region_name=stack.region).list_buckets()  # not DynamoDB: no wait
    finally:
        latency.install(0)
    assert waits == [0.007, 0.007]
