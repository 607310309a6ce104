"""The composition root: the one place that turns `Settings` into adapters and hands the services their ports.

`root()` reads the environment once per process (a Lambda cold start) and keeps one `Composition` per Settings; each
adapter is made the first time a service needs it and reused by every later invocation (the PynamoDB models are
bound to the stack's tables there, once; the Powertools providers' caches outlive a call). The handlers, the
operator's CLI and the local poller all ask it for their services; no service builds an adapter or reads Settings.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property

from accrual.adapters.claims_table import DynamoClaimsStore, claim_rules_of
from accrual.adapters.ledger_store import DynamoLedgerStore, transaction_connection, warm_connections
from accrual.adapters.ledger_tables import bind_ledger_tables
from accrual.adapters.notifications import SnsPublisher
from accrual.adapters.partner_config import SsmPartnerDirectory
from accrual.adapters.partner_state import DynamoPartnerState
from accrual.adapters.report_archive import S3ReportArchive
from accrual.adapters.unit_log import ControlUnitLog
from accrual.adapters.work_queue import SqsWorkQueue
from accrual.domain.models import AccrualConfig
from accrual.ports import Clock
from accrual.service.claims import ClaimService
from accrual.service.counts import RunCounts
from accrual.service.fanout import ConcurrentLedger, ReconcilingSink
from accrual.service.ingest import IngestStep
from accrual.service.ledger import Ledger
from accrual.service.outbox import OutboxRelay
from accrual.service.pull import Puller
from accrual.service.work import WorkService
from accrual.settings import Settings, load_settings


class SystemClock:
    """The one real clock: every service and handler asks the composition's `clock` for "now"."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Composition:
    """The adapters of one stack, each made once, and the services made from them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock: Clock = SystemClock()
        bind_ledger_tables(settings)

    # ---- adapters (the ports' implementations) ---------------------------------------------------------------------
    @cached_property
    def ledger_store(self) -> DynamoLedgerStore:
        return DynamoLedgerStore(self.settings)

    @cached_property
    def archive(self) -> S3ReportArchive:
        return S3ReportArchive(self.settings)

    @cached_property
    def partner_state(self) -> DynamoPartnerState:
        return DynamoPartnerState(self.settings)

    @cached_property
    def partners(self) -> SsmPartnerDirectory:
        return SsmPartnerDirectory(self.settings)

    @cached_property
    def work_queue(self) -> SqsWorkQueue:
        return SqsWorkQueue(self.settings)

    @cached_property
    def dead_letters(self) -> SqsWorkQueue:
        return SqsWorkQueue(self.settings, dead_letter=True)

    @cached_property
    def unit_log(self) -> ControlUnitLog:
        return ControlUnitLog(self.settings, self.clock)

    @cached_property
    def publisher(self) -> SnsPublisher:
        return SnsPublisher(self.settings)

    # ---- services ---------------------------------------------------------------------------------------------------
    def ledger(self, config: AccrualConfig | None = None, *, threads: int = 1) -> Ledger:
        """A ledger whose transactions go through the process's shared connection (its HTTP pool sized to the
        threads that share it)."""
        store = DynamoLedgerStore(self.settings, connection=transaction_connection(self.settings, threads))
        return Ledger(store, config=config)

    def warm(self, threads: int) -> None:
        warm_connections(self.settings, threads)

    def concurrent_ledger(self, workers: int = 1, config: AccrualConfig | None = None) -> ConcurrentLedger:
        return ConcurrentLedger(self, workers=workers, config=config)

    @cached_property
    def claims_store(self) -> DynamoClaimsStore:
        return DynamoClaimsStore(self.settings)

    @cached_property
    def claims(self) -> ClaimService:
        """The claims step, after the ledger's (its own ledger: it runs in the calling thread)."""
        return ClaimService(self.claims_store, self.ledger(), claim_rules_of(self.settings))

    def sink(self, now: datetime, workers: int = 1) -> ReconcilingSink:
        return ReconcilingSink(self.concurrent_ledger(workers), now, self.claims)

    def confirm(self, *, now: datetime, shards: Sequence[int] | None = None, workers: int = 1) -> RunCounts:
        """Confirm, expire and decline what is due at `now` (in the given due-index shards, else all)."""
        return RunCounts.of(self.concurrent_ledger(workers).confirm(now=now, shards=shards))

    def claims_sweep(self, *, now: datetime) -> RunCounts:
        """Match the open claims and escalate the overdue ones."""
        return RunCounts.of(self.claims.sweep(now=now))

    @cached_property
    def ingest(self) -> IngestStep:
        return IngestStep(self.archive, self.partner_state, self.partners)

    @cached_property
    def puller(self) -> Puller:
        initial = timedelta(days=self.settings.pull_initial_lookback_days)
        return Puller(self.ingest, self.partners, initial_lookback=initial)

    @cached_property
    def relay(self) -> OutboxRelay:
        return OutboxRelay(self.ledger_store, self.publisher)

    @property
    def outbox_grace(self) -> timedelta:
        """Deployed, fresh outbox events belong to the stream relay for a while; the sweep leaves them."""
        return timedelta(seconds=self.settings.outbox_sweep_grace_seconds)

    @cached_property
    def work(self) -> WorkService:
        return WorkService(self.ingest, self, self.archive, self.work_queue, self.unit_log)


_compositions: dict[int, tuple[Settings, Composition]] = {}
_compositions_lock = threading.Lock()


def composition(settings: Settings) -> Composition:
    """The composition of this Settings object, made once. Another Settings object, even an equal one, gets its own
    (as it gets its own parameter and secret providers: a command that reads the environment again starts with empty
    caches)."""
    with _compositions_lock:
        if id(settings) not in _compositions:
            _compositions[id(settings)] = (settings, Composition(settings))
        return _compositions[id(settings)][1]


def root() -> Composition:
    """The process's composition (the environment read once, a Lambda cold start)."""
    return composition(load_settings())
