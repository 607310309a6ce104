"""Reconciling and confirming many orders at once inside one worker.

A worker's time goes into waiting on DynamoDB (a Query, a few lookups and a transaction per order, 5-20 ms each), not
into CPU, so independent orders are settled concurrently by a bounded pool of threads. Nothing about the money
changes: each order is still one optimistic transaction (its version, its journal ids, the ADD to the shopper's
balance), so two threads touching the same balance item make DynamoDB cancel one transaction, and the ledger reads the
order again and retries it. The lines of one order always travel together (one thread), orders are handed out in
small chunks (one click lookup per chunk) and a chunk that still reports a failed order after the ledger's own
retries is reconciled once more, alone, after the others: the ledger is idempotent, so what already succeeded comes
out unchanged and only what was lost to contention is done.

Thread safety: a boto3/botocore client is safe to share between threads, a session is not. Each task borrows its own
Ledger (whose click cache is per reconcile call) from a pool built in the calling thread, and the PynamoDB models'
shared connections create their clients in the calling thread before any task starts.
"""

from __future__ import annotations

import math
import queue
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol, TypeVar

from accrual.domain.models import AccrualConfig, OrderLine
from accrual.observability import logger
from accrual.service.counts import RunCounts
from accrual.service.ledger import Ledger

MAX_WORKERS = 256
CHUNK_ORDERS = 8  # orders per task: small enough to spread, large enough to batch the click lookups
# counts a second pass adds to the first: the work it did; what it merely re-read is not counted twice
_SECOND_PASS_ADDS = (
    "orders_changed",
    "lines_applied",
    "lines_moved",
    "notifications",
    "retries",
    "pending_later_than_promised",
    "transitions_refused",
)

T = TypeVar("T")


def check_workers(workers: int, what: str = "workers") -> int:
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"{what} must be 1..{MAX_WORKERS}, got {workers}")
    return workers


class LedgerFactory(Protocol):
    """Where the ledgers of a worker come from (the composition root): one per thread, each on the store's shared
    connections, made in the calling thread."""

    def ledger(self, config: AccrualConfig | None = None, *, threads: int = 1) -> Ledger: ...
    def warm(self, threads: int) -> None:
        """Make the connections `threads` threads share, in this thread, before any of them starts."""


class LedgerPool:
    """Ledgers for concurrent tasks: one per task at a time, all made up front in the calling thread."""

    def __init__(self, factory: LedgerFactory, size: int, config: AccrualConfig) -> None:
        factory.warm(size)
        self._free: queue.SimpleQueue[Ledger] = queue.SimpleQueue()
        for _ in range(size):
            self._free.put(factory.ledger(config, threads=size))

    @contextmanager
    def borrow(self) -> Iterator[Ledger]:
        ledger = self._free.get()
        try:
            yield ledger
        finally:
            self._free.put(ledger)


def run_bounded[T](tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Run the tasks on at most `workers` threads (in this thread when 1); results in the tasks' order."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks)), thread_name_prefix="ledger") as pool:
        return list(pool.map(lambda task: task(), tasks))


def order_chunks(lines: Sequence[OrderLine], workers: int) -> list[list[OrderLine]]:
    """The lines grouped by order (an order's lines never split), orders in key order, in chunks of a few orders."""
    by_order: dict[str, list[OrderLine]] = {}
    for line in lines:
        by_order.setdefault(line.order_key, []).append(line)
    keys = sorted(by_order)
    size = max(1, min(CHUNK_ORDERS, math.ceil(len(keys) / (workers * 4))))
    return [
        [line for key in keys[start : start + size] for line in by_order[key]] for start in range(0, len(keys), size)
    ]


def add_counts(total: Counter[str], counts: Mapping[str, object]) -> None:
    for name, value in counts.items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[name] += value


class ConcurrentLedger:
    """The ledger as a worker uses it: screen lines against the configuration, reconcile them with `workers`
    threads, confirm what is due with as many. `workers=1` is exactly the serial ledger."""

    def __init__(self, factory: LedgerFactory, *, workers: int = 1, config: AccrualConfig | None = None) -> None:
        self.factory = factory
        self.workers = check_workers(workers)
        self._serial = factory.ledger(config, threads=workers)
        self._pool: LedgerPool | None = None

    @property
    def config(self) -> AccrualConfig:
        return self._serial.config

    def screen(self, lines: Sequence[OrderLine]):
        return self._serial.screen(lines)

    def _ledgers(self) -> LedgerPool:
        if self._pool is None:
            self._pool = LedgerPool(self.factory, self.workers, self.config)
        return self._pool

    def reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> dict[str, int]:
        if self.workers == 1 or not lines:
            return self._serial.reconcile(lines, now=now)
        pool = self._ledgers()
        chunks = order_chunks(lines, self.workers)

        def task(chunk: list[OrderLine]) -> Callable[[], dict[str, int]]:
            def run() -> dict[str, int]:
                with pool.borrow() as ledger:
                    return ledger.reconcile(chunk, now=now)

            return run

        results = run_bounded([task(chunk) for chunk in chunks], self.workers)
        return self._second_pass(chunks, results, lambda chunk: self._serial.reconcile(chunk, now=now))

    def _second_pass(
        self, units: Sequence[T], results: list[dict[str, int]], again: Callable[[T], dict[str, int]]
    ) -> dict[str, int]:
        total: Counter[str] = Counter()
        for unit, counts in zip(units, results, strict=False):
            if counts.get("orders_failed"):
                # lost to contention (or an outage) after the ledger's retries: once more, alone
                logger.warning("chunk reconciled again", extra={"orders_failed": counts["orders_failed"]})
                retried = again(unit)
                counts = {**counts, "orders_failed": retried.get("orders_failed", 0)}
                for name in _SECOND_PASS_ADDS:
                    counts[name] = counts.get(name, 0) + retried.get(name, 0)
                for name, value in retried.items():
                    if name.startswith("moves_"):
                        counts[name] = counts.get(name, 0) + value
                total["chunks_retried"] += 1
            add_counts(total, counts)
        return dict(total)

    def due_orders(self, *, now: datetime, shards: Iterable[int] | None = None) -> list[str]:
        return list(self._serial.due_orders(now=now, shards=shards))

    def confirm(self, *, now: datetime, shards: Iterable[int] | None = None) -> dict[str, int]:
        """Confirm, expire and decline what is due at `now` (in the given due-index shards, else all), the due
        orders settled concurrently in chunks."""
        if self.workers == 1:
            if shards is None:
                return self._serial.confirm(now=now)
            return self._serial.confirm_orders(self._serial.due_orders(now=now, shards=shards), now=now)
        keys = self.due_orders(now=now, shards=shards)
        pool = self._ledgers()
        size = max(1, min(CHUNK_ORDERS, math.ceil(len(keys) / (self.workers * 4))))
        chunks = [keys[start : start + size] for start in range(0, len(keys), size)]

        def task(chunk: list[str]) -> Callable[[], dict[str, int]]:
            def run() -> dict[str, int]:
                with pool.borrow() as ledger:
                    return ledger.confirm_orders(chunk, now=now)

            return run

        results = run_bounded([task(chunk) for chunk in chunks], self.workers)
        return self._second_pass(chunks, results, lambda chunk: self._serial.confirm_orders(chunk, now=now))


class ClaimsStep(Protocol):
    """The claims step, after the ledger's: the claims naming reconciled orders matched, the open ones swept."""

    def after_reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> Mapping[str, int]: ...
    def sweep(self, *, now: datetime) -> Mapping[str, int]: ...


class ReconcilingSink:
    """The ledger as the ingest step's sink: screening, then reconciling as of `now` with the ledger's threads,
    then the claims step on the orders reconciled (when there is one)."""

    def __init__(self, ledger: ConcurrentLedger, now: datetime, claims: ClaimsStep | None = None) -> None:
        self.ledger = ledger
        self.now = now
        self.claims = claims

    def screen(self, lines: Sequence[OrderLine]) -> tuple[list[OrderLine], list[tuple[OrderLine, str]]]:
        return self.ledger.screen(lines)

    def __call__(self, lines: Sequence[OrderLine]) -> RunCounts:
        counts = RunCounts.of(self.ledger.reconcile(lines, now=self.now))
        if self.claims is not None:
            counts.merge(RunCounts.of(self.claims.after_reconcile(lines, now=self.now)))
        return counts

    def advance(self, consumed_bytes: int) -> None:
        pass
