"""Incremental pulls of the partners' APIs.

A run reads the partner's cursor and pulls from an overlap before where the last run ended (late lines and status
changes arrive days later) up to `now`, in windows of at most `window`. Every page is archived to S3 before it is
parsed, its quarantined lines are recorded, its accepted lines are handed to `reconcile` (the ledger, idempotent, so
re-reading the overlap changes nothing), and only then does the cursor move past it. A page of an unexpected shape
is quarantined whole (counted in `pages_quarantined`) and the cursor moves past it too: no page stops a feed. A run that fails therefore
resumes at the page after the last one reconciled.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from accrual.adapters.partner_config import partner_credentials, partner_endpoint, partner_options
from accrual.adapters.partner_state import Cursor, PartnerState
from accrual.adapters.report_archive import ReportArchive
from accrual.domain.models import OrderLine
from accrual.observability import logger
from accrual.partners import API_PARTNERS, PartnerOptions, read_page
from accrual.partners.http import FetchedPage, PagePosition, RetryPolicy
from accrual.service.ingest import screen_report
from accrual.service.work import WorkUnit, page_unit
from accrual.settings import Settings

DEFAULT_OVERLAP = timedelta(days=5)
# Partners refuse long windows (AliExpress: days, not months); two days keeps each window's paging short.
DEFAULT_WINDOW = timedelta(days=2)

Reconcile = Callable[[Sequence[OrderLine]], Mapping[str, int]]
HandOn = Callable[[WorkUnit], object]


class PartnerClient(Protocol):
    partner: str

    def pages(self, start: datetime, end: datetime, resume: PagePosition | None = None) -> Iterator[FetchedPage]: ...


def make_client(
    partner: str,
    settings: Settings,
    options: PartnerOptions,
    *,
    retry: RetryPolicy | None = None,
    page_size: int | None = None,
) -> PartnerClient:
    """The partner's API client, with credentials from Secrets Manager and the endpoint from SSM."""
    credentials = partner_credentials(settings, partner)
    endpoint = partner_endpoint(settings, partner)
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


def pull_partner(
    partner: str,
    *,
    now: datetime,
    settings: Settings,
    reconcile: Reconcile,
    overlap: timedelta = DEFAULT_OVERLAP,
    window: timedelta = DEFAULT_WINDOW,
    client: PartnerClient | None = None,
    options: PartnerOptions | None = None,
    run_id: str | None = None,
    initial_lookback: timedelta | None = None,
    hand_on: HandOn | None = None,
) -> dict[str, Any]:
    """Pull one partner up to `now`. Returns counts: read = accepted + quarantined over every page. A partner error
    (after retries) propagates; the cursor then stands after the last reconciled page.

    With `hand_on` (the deployed pull) a page is not parsed here: once archived it is handed on as a unit of work to
    the reconcile workers, and the cursor moves past it only when `hand_on` has returned (the queue holds it)."""
    if now.tzinfo is None:
        raise ValueError("now must carry a zone")
    now = now.astimezone(UTC)
    run_id = run_id or uuid.uuid4().hex
    options = options or partner_options(settings, partner)
    client = client or make_client(partner, settings, options)
    state = PartnerState(settings)
    archive = ReportArchive(settings)
    cursor = state.cursor(partner)
    windows = plan_windows(cursor, now, overlap, window, initial_lookback)
    counts: dict[str, Any] = {
        "partner": partner,
        "run_id": run_id,
        "read": 0,
        "accepted": 0,
        "quarantined": 0,
        "pages": 0,
        "pages_quarantined": 0,
        "windows": len(windows),
        "resumed": cursor.resume is not None,
        "from": windows[0][0].isoformat() if windows else None,
        "to": now.isoformat(),
        "reconciled": {},
    }
    for start, end, resume in windows:
        for page in client.pages(start, end, resume):
            key = archive.put_raw(partner, start, page.page_key, page.raw)
            if hand_on is not None:
                hand_on(page_unit(partner, key, partner, now=now, run_id=run_id))
                state.page_done(partner, start, end, page.resume_after, now)
                counts["pages"] += 1
                counts["handed_on"] = counts.get("handed_on", 0) + 1
                continue
            report = read_page(page.raw, partner, source=key, options=options)
            if report.page_refused:
                counts["pages_quarantined"] += 1
                logger.error("partner page quarantined whole", extra={"partner": partner, "page": key})
            screen_report(report, reconcile)
            if report.quarantined:
                # The whole raw lines go to S3 first: the quarantine records keep a bounded prefix and name it.
                raw_key = archive.put_quarantine(key, report.quarantined, run_id=run_id, partner=partner)
                state.quarantine(partner, key, report.quarantined, run_id=run_id, now=now, raw_key=raw_key)
            if report.lines:
                _add(counts["reconciled"], reconcile(report.lines))
            state.page_done(partner, start, end, page.resume_after, now)
            counts["pages"] += 1
            for name, value in report.counts.items():
                counts[name] += value
            logger.info("partner page", extra={"partner": partner, "page": key, **report.counts})
    return counts


def _add(total: dict[str, int], result: Mapping[str, Any] | None) -> None:
    for name, value in (result or {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[name] = total.get(name, 0) + value


def configured_partners(settings: Settings) -> list[str]:
    """The API partners whose endpoint parameter exists in this stack."""
    configured = []
    for partner in API_PARTNERS:
        try:
            partner_endpoint(settings, partner)
        except RuntimeError:
            continue
        configured.append(partner)
    return configured


def pull_all(
    *,
    now: datetime,
    settings: Settings,
    reconcile: Reconcile,
    overlap: timedelta = DEFAULT_OVERLAP,
    window: timedelta = DEFAULT_WINDOW,
    partners: Sequence[str] | None = None,
    run_id: str | None = None,
    initial_lookback: timedelta | None = None,
    hand_on: HandOn | None = None,
) -> dict[str, Any]:
    """Pull every configured partner; one partner's failure is reported and does not stop the others."""
    run_id = run_id or uuid.uuid4().hex
    summary: dict[str, Any] = {
        "run_id": run_id,
        "read": 0,
        "accepted": 0,
        "quarantined": 0,
        "pages": 0,
        "pages_quarantined": 0,
        "partners": {},
        "failed": [],
    }
    for partner in partners or configured_partners(settings):
        try:
            result = pull_partner(
                partner,
                now=now,
                settings=settings,
                reconcile=reconcile,
                overlap=overlap,
                window=window,
                run_id=run_id,
                initial_lookback=initial_lookback,
                hand_on=hand_on,
            )
        except Exception as error:  # noqa: BLE001 - reported per partner; its cursor already stands where it stopped
            logger.exception("partner pull failed", extra={"partner": partner})
            summary["partners"][partner] = {"error": f"{type(error).__name__}: {error}"}
            summary["failed"].append(partner)
            continue
        summary["partners"][partner] = result
        for name in ("read", "accepted", "quarantined", "pages", "pages_quarantined"):
            summary[name] += result[name]
    return summary
