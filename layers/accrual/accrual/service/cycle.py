"""One whole scheduled cycle: pull the partners, reconcile, confirm what is due, publish the notifications.

Every step is safe to rerun: pulls resume from their cursors and the ledger is idempotent, confirmation works from the
due index, and the relay publishes each outbox event once. A failed cycle is simply run again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from accrual.service.counts import RunCounts
from accrual.service.fanout import ClaimsStep, ConcurrentLedger
from accrual.service.ingest import LedgerSink
from accrual.service.outbox import OutboxRelay
from accrual.service.pull import Puller, PullSummary


@dataclass
class CycleResult:
    run_id: str
    now: datetime
    pull: PullSummary
    confirm: RunCounts
    notify: dict[str, int]

    @property
    def orders_unsettled(self) -> int:
        return self.confirm.unsettled + self.pull.reconciled.unsettled

    @property
    def ok(self) -> bool:
        return not self.pull.failed and not self.orders_unsettled

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "now": self.now.isoformat(),
            "pull": self.pull.as_dict(),
            "confirm": self.confirm.as_dict(),
            "notify": self.notify,
            "orders_unsettled": self.orders_unsettled,
            "ok": self.ok,
        }


def run_cycle(
    puller: Puller,
    ledger: ConcurrentLedger,
    claims: ClaimsStep,
    relay: OutboxRelay,
    *,
    now: datetime,
    sink: LedgerSink,
    grace: timedelta = timedelta(0),
) -> CycleResult:
    """Pull every configured partner through `sink`, confirm what is due with `ledger`, match and escalate the
    claims (the claims step after the ledger's), then sweep the outbox (leaving events younger than `grace` to the
    stream relay)."""
    run_id = uuid.uuid4().hex
    pulled = puller.pull_all(now=now, sink=sink, run_id=run_id)
    confirmed = RunCounts.of(ledger.confirm(now=now))
    confirmed.merge(RunCounts.of(claims.sweep(now=now)))
    published = relay.publish_unpublished(now=now, grace=grace)
    return CycleResult(run_id, now, pulled, confirmed, published)
