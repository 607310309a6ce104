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
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from pynamodb.connection import Connection

from accrual.adapters import ledger_tables
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.domain.models import AccrualConfig, OrderLine
from accrual.observability import logger
from accrual.service.ledger import Ledger
from accrual.settings import Settings

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


def warm_connections(settings: Settings, threads: int = 1) -> None:
    """Create the shared PynamoDB connections' botocore clients in this thread (client creation goes through a
    botocore session, which is not thread-safe; using a created client from many threads is), with an HTTP
    connection pool as large as the threads that share them (botocore keeps 10, and a thread beyond them would open
    and drop a connection per call)."""
    ledger_tables.bind_ledger_tables(settings)
    for model in {
        *ledger_tables.ORDER_TABLE_MODELS,
        ledger_tables.BalanceRecord,
        ledger_tables.OutboxRecord,
        ledger_tables.ClickRecord,
        ledger_tables.ControlRecord,
    }:
        if getattr(model.Meta, "max_pool_connections", 10) < threads:
            model.Meta.max_pool_connections = threads
            model._connection = None
        _ = model._get_connection().connection.client


_transaction_connections: dict[tuple[str, str | None, int], Connection] = {}
_connections_lock = threading.Lock()


def transaction_connection(settings: Settings, threads: int) -> Connection:
    """One PynamoDB connection (one botocore client, its HTTP pool sized for the threads) shared by every ledger of
    the process for its transactions, kept across units and warm invocations: creating a client costs tens of
    milliseconds of CPU, which at 16 threads a unit would be seconds."""
    key = (settings.region, settings.dynamodb_host, max(threads, 10))
    with _connections_lock:
        if key not in _transaction_connections:
            connection = Connection(
                region=settings.region, host=settings.dynamodb_host, max_retry_attempts=8, max_pool_connections=key[2]
            )
            _ = connection.client
            _transaction_connections[key] = connection
        return _transaction_connections[key]


def pooled_ledger(settings: Settings, config: AccrualConfig | None, threads: int) -> Ledger:
    # the store's own connection for its transactions: one shared by the pool, its HTTP pool sized to the threads
    store = DynamoLedgerStore(settings, connection=transaction_connection(settings, threads))
    return Ledger(settings, store=store, config=config)


class LedgerPool:
    """Ledgers for concurrent tasks: one per task at a time, all made up front in the calling thread."""

    def __init__(self, settings: Settings, size: int, config: AccrualConfig) -> None:
        warm_connections(settings, size)
        self._free: queue.SimpleQueue[Ledger] = queue.SimpleQueue()
        for _ in range(size):
            self._free.put(pooled_ledger(settings, config, size))

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

    def __init__(self, settings: Settings, *, workers: int = 1, config: AccrualConfig | None = None) -> None:
        self.settings = settings
        self.workers = check_workers(workers)
        self._serial = pooled_ledger(settings, config, workers)
        self._pool: LedgerPool | None = None

    @property
    def config(self) -> AccrualConfig:
        return self._serial.config

    def screen(self, lines: Sequence[OrderLine]):
        return self._serial.screen(lines)

    def _ledgers(self) -> LedgerPool:
        if self._pool is None:
            self._pool = LedgerPool(self.settings, self.workers, self.config)
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
