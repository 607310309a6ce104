"""Progress of long ingests and pulls on stderr, and the counts so far when the operator interrupts.

The ledger is handed a report's lines a slice of orders at a time (all the lines of one order in the same slice, so
every order is decided exactly as in one call), and a progress bar (tqdm, a development dependency only: the Lambda
layer never imports this module) shows lines, orders, the rate and the time left. The first Ctrl-C stops at the end
of the slice being reconciled (a second one at once); what was reconciled is counted and stays reconciled (the ledger
is idempotent, so the same file or pull run again finishes the job).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from accrual.domain.models import OrderLine
from accrual.service.counts import RunCounts
from accrual.service.fanout import ConcurrentLedger, ReconcilingSink

ORDERS_PER_SLICE = 200


class ProgressSink(ReconcilingSink):
    """The ledger's reconcile (and screening) with progress and running counts."""

    def __init__(
        self, ledger: ConcurrentLedger, now: datetime, *, enabled: bool | None = None, label: str = ""
    ) -> None:
        super().__init__(ledger, now)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label = label
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
        return RunCounts.of(result)

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
            bar.update(len(chosen))
            bar.set_postfix(lines=self.lines, failed=self.reconciled.get("orders_failed", 0), refresh=False)

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
            self._bar = tqdm(
                total=orders, unit="order", desc=self.label, file=sys.stderr, dynamic_ncols=True, smoothing=0.1
            )
        elif self.pages > 1:  # a pull: the total grows page by page
            self._bar.total = (self._bar.total or 0) + orders
            self._bar.refresh()
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
