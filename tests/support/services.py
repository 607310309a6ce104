"""The services of a local stack as the emulator tests drive them: through the composition root, with a sink that
is the ledger unless the test passes its own (a recorder of the lines a page hands on)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from accrual.composition import Composition, composition
from accrual.domain.models import OrderLine
from accrual.partners import PartnerOptions
from accrual.partners.http import RetryPolicy
from accrual.service.counts import RunCounts
from accrual.service.drop import ingest_drop as drop_service
from accrual.service.ingest import LedgerSink
from accrual.service.ingest_stream import PART_LINES
from accrual.service.ingest_stream import ingest_file_streamed as streamed_service
from accrual.service.pull import DEFAULT_OVERLAP, DEFAULT_WINDOW, PartnerClient, Puller
from accrual.service.pull import make_client as client_service
from accrual.settings import Settings

Reconcile = Callable[[Sequence[OrderLine]], Mapping[str, int]]


class RecordingSink:
    """A test's own reconcile as the ingest step's sink: it screens nothing."""

    def __init__(self, reconcile: Reconcile) -> None:
        self.reconcile = reconcile

    def screen(self, lines: Sequence[OrderLine]) -> tuple[list[OrderLine], list[tuple[OrderLine, str]]]:
        return list(lines), []

    def __call__(self, lines: Sequence[OrderLine]) -> RunCounts:
        counts = self.reconcile(lines) or {}
        return RunCounts.of({name: value for name, value in counts.items() if isinstance(value, int)})

    def advance(self, consumed_bytes: int) -> None:
        pass


def root(settings: Settings) -> Composition:
    return composition(settings)


def sink_of(settings: Settings, now: datetime, reconcile: Reconcile | None) -> LedgerSink:
    return RecordingSink(reconcile) if reconcile is not None else root(settings).sink(now)


def ingest_report(
    data: bytes,
    report_format: str,
    *,
    partner: str,
    source: str,
    settings: Settings,
    now: datetime,
    reconcile: Reconcile | None = None,
) -> dict[str, Any]:
    page = root(settings).ingest.page(
        data,
        report_format,
        partner=partner,
        source=source,
        sink=sink_of(settings, now, reconcile),
        now=now,
        run_id=uuid.uuid4().hex,
    )
    return page.as_dict()


def ingest_drop(
    bucket: str, key: str, *, settings: Settings, now: datetime, reconcile: Reconcile | None = None
) -> dict[str, Any]:
    ingest = root(settings).ingest
    return drop_service(bucket, key, ingest=ingest, sink=sink_of(settings, now, reconcile), now=now).as_dict()


def ingest_file_streamed(
    path: Path, report_format: str, *, partner: str, settings: Settings, now: datetime, part_lines: int = PART_LINES
) -> dict[str, Any]:
    services = root(settings)
    return streamed_service(
        path,
        report_format,
        partner=partner,
        ingest=services.ingest,
        sink=services.sink(now),
        now=now,
        part_lines=part_lines,
    ).as_dict()


def make_client(
    partner: str, settings: Settings, options: PartnerOptions, *, retry: RetryPolicy | None = None, page_size=None
) -> PartnerClient:
    return client_service(partner, root(settings).partners, options, retry=retry, page_size=page_size)


def puller(settings: Settings, overlap: timedelta = DEFAULT_OVERLAP, window: timedelta = DEFAULT_WINDOW) -> Puller:
    services = root(settings)
    return Puller(services.ingest, services.partners, overlap=overlap, window=window)


def pull_partner(
    partner: str,
    *,
    now: datetime,
    settings: Settings,
    reconcile: Reconcile,
    overlap: timedelta = DEFAULT_OVERLAP,
    window: timedelta = DEFAULT_WINDOW,
    **options: Any,
) -> dict[str, Any]:
    pulled = puller(settings, overlap, window).pull_partner(
        partner, now=now, sink=sink_of(settings, now, reconcile), **options
    )
    return pulled.as_dict()


def pull_all(
    *, now: datetime, settings: Settings, reconcile: Reconcile, overlap: timedelta = DEFAULT_OVERLAP
) -> dict[str, Any]:
    return puller(settings, overlap).pull_all(now=now, sink=sink_of(settings, now, reconcile)).as_dict()
