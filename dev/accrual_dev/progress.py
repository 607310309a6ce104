"""Progress of long commands on stderr, and the counts so far when the operator interrupts.

The ledger is handed a report's lines a slice of orders at a time (all the lines of one order in the same slice, so
every order is decided exactly as in one call), and a progress bar (tqdm, a development dependency only: the Lambda
layer never imports this module) shows lines, orders, the rate and the time left. A file's bar counts its bytes
against the file's size, so its percentage and time left cover the whole file; a pull's pages are not known ahead, so
its bar counts orders without a total (and promises no time left). The first Ctrl-C stops at the end of the slice
being reconciled (a second one at once); what was reconciled is counted and stays reconciled (the ledger is
idempotent, so the same file or pull run again finishes the job).

`Progress` does the same for the commands that work through a list (clicks, due orders, orders to decide again,
the audit's scans): a bar when stderr is a terminal, and Ctrl-C asked between two steps.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import batched
from typing import Any

from accrual.domain.models import OrderLine
from accrual.service.counts import RunCounts
from accrual.service.fanout import ClaimsStep, ConcurrentLedger, ReconcilingSink

ORDERS_PER_SLICE = 200


class ProgressSink(ReconcilingSink):
    """The ledger's reconcile (and screening) with progress and running counts."""

    def __init__(
        self,
        ledger: ConcurrentLedger,
        now: datetime,
        *,
        claims: ClaimsStep | None = None,
        enabled: bool | None = None,
        label: str = "",
        total_bytes: int | None = None,
    ) -> None:
        super().__init__(ledger, now, claims)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label = label
        self.total_bytes = total_bytes  # a file: the bar counts its bytes read against its size
        self.bytes_read = 0
        self.reconciled: Counter[str] = Counter()
        self.lines = 0
        self.orders = 0
        self.pages = 0
        self._bar: Any = None

    def screen(self, lines: Sequence[OrderLine]) -> tuple[list[OrderLine], list[tuple[OrderLine, str]]]:
        accepted, refused = super().screen(lines)
        if self.enabled and self.pages == 0 and len(lines) > ORDERS_PER_SLICE:
            print(
                f"{self.label}: {len(lines)} lines read; {len(refused)} refused by the configuration, "
                f"{len(accepted)} to reconcile",
                file=sys.stderr,
                flush=True,
            )
        return accepted, refused

    def __call__(self, lines: Sequence[OrderLine]) -> RunCounts:
        by_order: dict[str, list[OrderLine]] = defaultdict(list)
        for line in lines:
            by_order[line.order_key].append(line)
        keys = sorted(by_order)
        self.pages += 1
        bar = self._progress(len(keys))
        result: Counter[str] = Counter()
        with self._stop_between_slices() as stop:
            for start in range(0, len(keys), ORDERS_PER_SLICE):
                if stop.is_set():
                    raise KeyboardInterrupt
                self._reconcile_slice(keys[start : start + ORDERS_PER_SLICE], by_order, result, bar)
        counts = RunCounts.of(result)
        if self.claims is not None:  # the claims step, after the ledger's
            counts.merge(RunCounts.of(self.claims.after_reconcile(lines, now=self.now)))
        return counts

    def _reconcile_slice(
        self, chosen: list[str], by_order: Mapping[str, list[OrderLine]], result: Counter[str], bar: Any
    ) -> None:
        slice_lines = [line for key in chosen for line in by_order[key]]
        done = self.ledger.reconcile(slice_lines, now=self.now)
        result.update(done)
        self.reconciled.update(done)
        self.lines += len(slice_lines)
        self.orders += len(chosen)
        if bar is not None:
            if self.total_bytes is None:
                bar.update(len(chosen))
            bar.set_postfix(
                lines=self.lines, orders=self.orders, failed=self.reconciled.get("orders_failed", 0), refresh=False
            )

    def advance(self, consumed_bytes: int) -> None:
        """A part of the file of `size` bytes has been read and handed on (a streamed ingest calls it)."""
        self.bytes_read += consumed_bytes
        if self._bar is not None and self.total_bytes is not None:
            self._bar.update(min(consumed_bytes, max(self.total_bytes - self._bar.n, 0)))

    def _stop_between_slices(self) -> _StopBetweenSlices:
        return _StopBetweenSlices()

    def _progress(self, orders: int) -> Any:
        if not self.enabled:
            return None
        if self._bar is None:
            try:
                from tqdm import tqdm
            except ImportError:  # progress is a convenience of the development install, never a requirement
                self.enabled = False
                return None
            if self.total_bytes is not None:
                options: dict[str, Any] = {"total": self.total_bytes, "unit": "B", "unit_scale": True}
            else:  # pages not known ahead: a count and a rate, no total and no time left
                options = {"total": None, "unit": "order"}
            self._bar = tqdm(desc=self.label, file=sys.stderr, dynamic_ncols=True, smoothing=0.1, **options)
        return self._bar

    def counts(self) -> dict[str, Any]:
        return {
            "lines_reconciled": self.lines,
            "orders_reconciled": self.orders,
            "pages": self.pages,
            "reconciled": dict(self.reconciled),
        }

    def summary(self) -> str:
        failed = self.reconciled.get("orders_failed", 0)
        return f"{self.lines} lines of {self.orders} orders reconciled in {self.pages} page(s)" + (
            f", {failed} orders failed" if failed else ""
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Progress:
    """A command's progress through a list: a bar on stderr (when enabled: by default when stderr is a terminal), and
    Ctrl-C asked between two steps (`check` raises KeyboardInterrupt there; a second Ctrl-C stops at once)."""

    def __init__(self, label: str, *, total: int | None = None, unit: str = "order", enabled: bool | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self._bar: Any = None
        self._stop = _StopBetweenSlices()

    def __enter__(self) -> Progress:
        self._requested = self._stop.__enter__()
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:  # progress is a convenience of the development install, never a requirement
                self.enabled = False
            else:
                self._bar = tqdm(total=self.total, unit=self.unit, desc=self.label, file=sys.stderr, dynamic_ncols=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.__exit__()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def check(self) -> None:
        """Between two steps: stop here when the operator asked to."""
        if self._requested.is_set():
            raise KeyboardInterrupt

    def step(self, size: int = 1, **postfix: object) -> None:
        self.done += size
        if self._bar is not None:
            self._bar.update(size)
            if postfix:
                self._bar.set_postfix(refresh=False, **postfix)

    def each[T](self, items: Iterable[T]) -> Iterator[T]:
        """The items, one step each, checked between them."""
        for item in items:
            self.check()
            yield item
            self.step()


def in_steps[T](
    items: Iterable[T], work: Callable[[list[T]], Mapping[str, int]], progress: Progress, *, size: int
) -> tuple[Counter[str], bool]:
    """`work` over the items `size` at a time, its counts added up; stops between two steps at Ctrl-C. Returns the
    counts and whether it was interrupted."""
    counts: Counter[str] = Counter()
    try:
        for chunk in batched(items, size):
            progress.check()
            counts.update(work(list(chunk)))
            progress.step(len(chunk))
    except KeyboardInterrupt:
        return counts, True
    return counts, False


def count(items: Iterable[object]) -> int:
    """A first pass over a list that is not known ahead (the due index): how many steps the bar has."""
    return sum(1 for _ in items)


def interrupted(command: str, counts: Mapping[str, Any], resumes: str) -> int:
    """The counts so far as JSON, one line saying how to go on, exit 130."""
    import json

    print(json.dumps({"interrupted": True, **counts}, indent=2, default=str))
    print(f"accrual {command}: interrupted ({resumes})", file=sys.stderr)
    return 130


class _StopBetweenSlices:
    """While a report is reconciled, the first Ctrl-C asks to stop at the next slice boundary; a second one stops
    at once. Outside the main thread (no signal handlers there) Ctrl-C keeps its usual meaning."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self.requested

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _on_interrupt(self, signum: int, frame: object) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()
        print(
            "\nstopping after the orders being reconciled (Ctrl-C again to stop at once)", file=sys.stderr, flush=True
        )
