"""The services wired to fakes of every port: what the composition root does for a stack, in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from accrual.domain.models import AccrualConfig
from accrual.service.counts import RunCounts
from accrual.service.fanout import ConcurrentLedger, ReconcilingSink
from accrual.service.ingest import IngestStep
from accrual.service.ledger import Ledger
from accrual.service.outbox import OutboxRelay
from accrual.service.pull import Puller
from accrual.service.work import WorkService
from support.fakes.ledger_store import InMemoryLedgerStore
from support.fakes.ports import (
    FakeArchive,
    FakePartnerDirectory,
    FakePartnerState,
    FakePublisher,
    FakeUnitLog,
    FakeWorkQueue,
    FixedClock,
)
from support.ledger import T0
from support.memory import clicks, config


class FakeWorld:
    def __init__(self, users: dict[str, str] | None = None, **config_changes: Any) -> None:
        self.store = InMemoryLedgerStore()
        self.store.save_config(config(**config_changes))
        self.store.save_clicks(clicks(users if users is not None else {"alice": "EUR", "bob": "USD"}))
        self.archive = FakeArchive()
        self.partner_state = FakePartnerState()
        self.partners = FakePartnerDirectory()
        self.work_queue = FakeWorkQueue()
        self.unit_log = FakeUnitLog()
        self.publisher = FakePublisher()
        self.clock = FixedClock(T0)
        self.ingest = IngestStep(self.archive, self.partner_state, self.partners)
        self.puller = Puller(self.ingest, self.partners)
        self.relay = OutboxRelay(self.store, self.publisher)
        self.work = WorkService(self.ingest, self, self.archive, self.work_queue, self.unit_log)

    def ledger(self, config: AccrualConfig | None = None, *, threads: int = 1) -> Ledger:
        return Ledger(store=self.store, config=config)

    def warm(self, threads: int) -> None:
        pass

    def concurrent_ledger(self, workers: int = 1, config: AccrualConfig | None = None) -> ConcurrentLedger:
        return ConcurrentLedger(self, workers=workers, config=config)

    def sink(self, now: datetime, workers: int = 1) -> ReconcilingSink:
        return ReconcilingSink(self.concurrent_ledger(workers), now)

    def confirm(self, *, now: datetime, shards: Sequence[int] | None = None, workers: int = 1) -> RunCounts:
        return RunCounts.of(self.concurrent_ledger(workers).confirm(now=now, shards=shards))

    def claims_sweep(self, *, now: datetime) -> RunCounts:
        return RunCounts()  # no claims store behind the in-memory ledger
