"""Incremental pulls of the partners' APIs.

A run reads the partner's cursor and pulls from an overlap before where the last run ended (late lines and status
changes arrive days later) up to `now`, in windows of at most `window`. Every page is archived before it is parsed;
then either the ingest step runs on it here (its quarantined lines kept, its accepted lines reconciled by the sink:
the ledger, idempotent, so re-reading the overlap changes nothing) or, deployed, it is handed on as a unit of work
to the reconcile workers. Only then does the cursor move past it, so a run that fails resumes at the page after the
last one done. A page of an unexpected shape is quarantined whole (counted in `pages_quarantined`) and the cursor
moves past it too: no page stops a feed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from accrual.observability import logger
from accrual.partners import API_PARTNERS, PartnerOptions
from accrual.partners.http import FetchedPage, PagePosition, RetryPolicy
from accrual.ports import Cursor, PartnerDirectory
from accrual.service.counts import RunCounts
from accrual.service.ingest import IngestStep, LedgerSink
from accrual.service.work import WorkUnit, page_unit

DEFAULT_OVERLAP = timedelta(days=5)
# Partners refuse long windows (AliExpress: days, not months); two days keeps each window's paging short.
DEFAULT_WINDOW = timedelta(days=2)

HandOn = Callable[[WorkUnit], object]
COUNTS = ("read", "accepted", "quarantined", "pages", "pages_quarantined")


class PartnerClient(Protocol):
    partner: str

    def pages(self, start: datetime, end: datetime, resume: PagePosition | None = None) -> Iterator[FetchedPage]: ...


# what each API partner's credentials secret must hold
CREDENTIAL_KEYS = {"aliexpress": ("app_key", "app_secret"), "admitad": ("client_id", "client_secret")}


def make_client(
    partner: str,
    partners: PartnerDirectory,
    options: PartnerOptions,
    *,
    retry: RetryPolicy | None = None,
    page_size: int | None = None,
) -> PartnerClient:
    """The partner's API client, with credentials from Secrets Manager and the endpoint from SSM."""
    credentials = partners.credentials(partner)
    missing = [key for key in CREDENTIAL_KEYS.get(partner, ()) if not credentials.get(key)]
    if missing:
        raise ValueError(f"the credentials of {partner} lack {', '.join(missing)}")
    endpoint = partners.endpoint(partner)
    if partner == "aliexpress":
        from accrual.partners.aliexpress import AliExpressClient

        return AliExpressClient(
            endpoint=endpoint,
            app_key=credentials["app_key"],
            app_secret=credentials["app_secret"],
            sign_method=credentials.get("sign_method", "sha256"),
            retry=retry,
            **({"page_size": page_size} if page_size else {}),  # type: ignore[arg-type]
        )
    if partner == "admitad":
        from accrual.partners.admitad import AdmitadClient

        return AdmitadClient(
            endpoint=endpoint,
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            timezone=options.timezone,
            retry=retry,
            **({"limit": page_size} if page_size else {}),  # type: ignore[arg-type]
        )
    raise ValueError(f"{partner!r} has no API client; API partners are {', '.join(API_PARTNERS)}")


def plan_windows(
    cursor: Cursor, now: datetime, overlap: timedelta, window: timedelta, initial_lookback: timedelta | None = None
) -> list[tuple[datetime, datetime, PagePosition | None]]:
    """The windows of this run: first the interrupted window of a failed run (from its saved position), then
    windows of at most `window` from where the cursor says, minus the overlap, up to `now`. A partner without a
    cursor yet is read back `initial_lookback` (at least the overlap): its first pull backfills."""
    planned: list[tuple[datetime, datetime, PagePosition | None]] = []
    if cursor.resume is not None and cursor.window_start is not None and cursor.window_end is not None:
        planned.append((cursor.window_start, cursor.window_end, cursor.resume))
        begin = cursor.window_end
    else:
        base = min(cursor.last_window_end or now, now)
        back = overlap if cursor.last_window_end else max(overlap, initial_lookback or overlap)
        # Whole hours: reruns with a slightly different `now` read the same windows and archive keys.
        begin = (base - back).replace(minute=0, second=0, microsecond=0)
    while begin < now:
        end = min(begin + window, now)
        planned.append((begin, end, None))
        begin = end
    return planned


@dataclass
class PartnerPull:
    """One partner's pull: its windows and pages, lines read = accepted + quarantined over every page, and what the
    ledger made of them (or how many pages were handed on)."""

    partner: str
    run_id: str
    windows: int
    resumed: bool
    start: str | None
    end: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    pages: int = 0
    pages_quarantined: int = 0
    handed_on: int = 0
    reconciled: RunCounts = field(default_factory=RunCounts)

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "partner": self.partner,
            "run_id": self.run_id,
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "pages": self.pages,
            "pages_quarantined": self.pages_quarantined,
            "windows": self.windows,
            "resumed": self.resumed,
            "from": self.start,
            "to": self.end,
            "reconciled": self.reconciled.as_dict(),
        }
        if self.handed_on:
            answer["handed_on"] = self.handed_on
        return answer


@dataclass
class PullSummary:
    """Every partner's pull of one run; a partner that failed is named with its error and stops no other."""

    run_id: str
    partners: dict[str, PartnerPull] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the partners in the order they were pulled

    @property
    def failed(self) -> list[str]:
        return list(self.errors)

    def total(self, name: str) -> int:
        return sum(getattr(pulled, name) for pulled in self.partners.values())

    @property
    def reconciled(self) -> RunCounts:
        return RunCounts.total(pulled.reconciled for pulled in self.partners.values())

    def as_dict(self) -> dict[str, Any]:
        by_partner: dict[str, Any] = {name: pulled.as_dict() for name, pulled in self.partners.items()}
        by_partner.update({name: {"error": error} for name, error in self.errors.items()})
        return {
            "run_id": self.run_id,
            **{name: self.total(name) for name in COUNTS},
            "partners": {name: by_partner[name] for name in self.order},
            "failed": self.failed,
        }


class Puller:
    """Pulls the API partners through the ingest step (its archive, partner state and directory)."""

    def __init__(
        self,
        ingest: IngestStep,
        partners: PartnerDirectory,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        window: timedelta = DEFAULT_WINDOW,
        initial_lookback: timedelta | None = None,
    ) -> None:
        self.ingest = ingest
        self.partners = partners
        self.overlap = overlap
        self.window = window
        self.initial_lookback = initial_lookback

    def configured_partners(self) -> list[str]:
        """The API partners whose endpoint is configured in this stack."""
        configured = []
        for partner in API_PARTNERS:
            try:
                self.partners.endpoint(partner)
            except RuntimeError:
                continue
            configured.append(partner)
        return configured

    def pull_partner(
        self,
        partner: str,
        *,
        now: datetime,
        sink: LedgerSink | None = None,
        hand_on: HandOn | None = None,
        client: PartnerClient | None = None,
        options: PartnerOptions | None = None,
        run_id: str | None = None,
    ) -> PartnerPull:
        """Pull one partner up to `now`, each page reconciled through `sink` or, with `hand_on` (the deployed
        pull), handed on as a unit of work once archived; the cursor moves past a page only when it is done. A
        partner error (after retries) propagates; the cursor then stands after the last page done."""
        if now.tzinfo is None:
            raise ValueError("now must carry a zone")
        if (sink is None) == (hand_on is None):
            raise ValueError("a pull either reconciles its pages (sink) or hands them on (hand_on)")
        now = now.astimezone(UTC)
        run_id = run_id or uuid.uuid4().hex
        options = options or self.partners.options(partner)
        client = client or make_client(partner, self.partners, options)
        state, archive = self.ingest.state, self.ingest.archive
        cursor = state.cursor(partner)
        windows = plan_windows(cursor, now, self.overlap, self.window, self.initial_lookback)
        pulled = PartnerPull(
            partner,
            run_id,
            len(windows),
            cursor.resume is not None,
            windows[0][0].isoformat() if windows else None,
            now.isoformat(),
        )
        for start, end, resume in windows:
            for page in client.pages(start, end, resume):
                key = archive.put_raw(partner, start, page.page_key, page.raw)
                if hand_on is not None:
                    hand_on(page_unit(partner, key, partner, now=now, run_id=run_id))
                    pulled.handed_on += 1
                else:
                    assert sink is not None
                    done = self.ingest.page(
                        page.raw,
                        partner,
                        partner=partner,
                        source=key,
                        sink=sink,
                        now=now,
                        run_id=run_id,
                        options=options,
                        pulled_page=True,
                    )
                    if done.pages_quarantined:
                        logger.error("partner page quarantined whole", extra={"partner": partner, "page": key})
                    pulled.read += done.read
                    pulled.accepted += done.accepted
                    pulled.quarantined += done.quarantined
                    pulled.pages_quarantined += done.pages_quarantined
                    pulled.reconciled.merge(done.reconciled)
                    logger.info(
                        "partner page",
                        extra={
                            "partner": partner,
                            "page": key,
                            "read": done.read,
                            "accepted": done.accepted,
                            "quarantined": done.quarantined,
                        },
                    )
                state.page_done(partner, start, end, page.resume_after, now)
                pulled.pages += 1
        return pulled

    def pull_all(
        self,
        *,
        now: datetime,
        sink: LedgerSink | None = None,
        hand_on: HandOn | None = None,
        partners: Sequence[str] | None = None,
        run_id: str | None = None,
    ) -> PullSummary:
        """Pull every configured partner (or the ones named); one partner's failure is reported and does not stop
        the others."""
        summary = PullSummary(run_id or uuid.uuid4().hex)
        for partner in partners or self.configured_partners():
            summary.order.append(partner)
            try:
                summary.partners[partner] = self.pull_partner(
                    partner, now=now, sink=sink, hand_on=hand_on, run_id=summary.run_id
                )
            except Exception as error:  # noqa: BLE001 - reported per partner; its cursor stands where it stopped
                logger.exception("partner pull failed", extra={"partner": partner})
                summary.errors[partner] = str(error) or type(error).__name__  # the log has the class and trace
        return summary
