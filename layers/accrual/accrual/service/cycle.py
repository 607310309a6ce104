"""One whole scheduled cycle: pull the partners, reconcile, confirm what is due, publish the notifications.

Every step is safe to rerun: pulls resume from their cursors and the ledger is idempotent, confirmation works from the
due index, and the relay publishes each outbox event once. A failed cycle is simply run again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from accrual.service.claims import claim_service
from accrual.service.fanout import ConcurrentLedger
from accrual.service.ingest import LedgerSink, ledger_reconcile
from accrual.service.outbox import OutboxRelay
from accrual.service.pull import HandOn, pull_all
from accrual.settings import Settings


def pull_partners(
    settings: Settings,
    *,
    now: datetime,
    partner: str | None = None,
    run_id: str | None = None,
    workers: int = 1,
    hand_on: HandOn | None = None,
    reconcile: LedgerSink | None = None,
) -> dict[str, Any]:
    """Pull every partner (or one); the pages are reconciled by `reconcile` (by default the ledger with `workers`
    threads; the CLI passes its sink with a progress bar) or handed on as units of work."""
    initial = timedelta(days=settings.pull_initial_lookback_days)
    return pull_all(
        now=now,
        settings=settings,
        reconcile=reconcile or ledger_reconcile(settings, now, workers),
        partners=[partner] if partner else None,
        run_id=run_id,
        initial_lookback=initial,
        hand_on=hand_on,
    )


def run_cycle(
    settings: Settings, now: datetime, *, workers: int = 1, reconcile: LedgerSink | None = None
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex
    pulled = pull_partners(settings, now=now, run_id=run_id, workers=workers, reconcile=reconcile)
    confirmed = ConcurrentLedger(settings, workers=workers).confirm(now=now)
    for name, value in claim_service(settings).sweep(now=now).items():  # the claims step after the ledger's
        confirmed[name] = confirmed.get(name, 0) + value
    grace = timedelta(seconds=settings.outbox_sweep_grace_seconds)
    published = OutboxRelay(settings).publish_unpublished(now=now, grace=grace)
    unsettled = sum(
        counts.get(name, 0)
        for counts in (confirmed, *(partner.get("reconciled", {}) for partner in pulled.get("partners", {}).values()))
        for name in ("orders_failed", "journal_conflicts")
    )
    return {
        "run_id": run_id,
        "now": now.isoformat(),
        "pull": pulled,
        "confirm": confirmed,
        "notify": published,
        "orders_unsettled": unsettled,
        "ok": not pulled.get("failed") and not unsettled,
    }
