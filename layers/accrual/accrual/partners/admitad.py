"""Admitad: the OAuth2 client-credentials token, the `statistics/actions` client (paged by limit/offset, incremental
by `status_updated_start`/`_end`) and the mapping of a response page to normalised order lines.

One action becomes one line per entry of `positions[]`; an action without positions is one line with the action's
own id and amounts. `read` therefore counts positions, and no position collapses into another: a position's line id is
`<action_id>#<position id>`, the k-th repeat of a position id within the action `<action_id>#<position id>#<k>`, and
a position without an id `<action_id>#<its 1-based place>` (`#<place>#position` when a position id already names
that place). A position whose line id would still not be unique is quarantined, never merged. Times are written
without a zone; they are read in `PartnerOptions.timezone` (UTC by default).
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests

from accrual.domain.models import LineStatus, OrderLine
from accrual.partners.http import FetchedPage, PagePosition, PartnerApiError, RetryPolicy, send, with_retries
from accrual.partners.report import (
    LineRejected,
    ParsedReport,
    PartnerOptions,
    ReportFormatError,
    build_line,
    currency_rate,
    decimal_amount,
    identifier,
    loads,
    local_time,
    require,
    separators,
    show,
)

PARTNER = "admitad"
# Added to a quarantined position's raw action: the position's part of its line id (see `position_keys`).
POSITION_KEY = "accrual_position_key"
FILTER_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"
MAX_LIMIT = 500
STAGE = "actions"

STATUSES = {
    "pending": LineStatus.PAID,
    "approved": LineStatus.SETTLED,
    "approved_but_stalled": LineStatus.RECEIVED,  # approved, not yet paid to the service: it waits
    "declined": LineStatus.INVALID,
}

_SOURCE_NAMES = {
    "line_id": "action_id",
    "order_id": "order_id",
    "partner_order_id": "action_id",
    "status": "status",
    "amount": "positions[].amount",
    "commission": "positions[].payment",
    "currency": "currency",
    "ordered_at": "action_date",
    "status_at": "status_updated",
    "settled_at": "status_updated",
    "sub_id": "subid",
    "category_id": "positions[].product_category_id",
    "product_id": "positions[].product_id",
}


def parse_page(
    data: bytes | str | Mapping[str, Any], *, source: str, options: PartnerOptions | None = None
) -> tuple[ParsedReport, Mapping[str, Any]]:
    """The lines of one `statistics/actions` response and its `_meta` (count, limit, offset)."""
    options = options or PartnerOptions()
    payload = decode(data)
    report = ParsedReport(partner=PARTNER, source=source)
    for action in payload["results"]:
        positions = action.get("positions") if isinstance(action, Mapping) else None
        if isinstance(positions, list) and positions:
            keys = position_keys(positions)
            for index, (position, key) in enumerate(zip(positions, keys, strict=True), start=1):
                # The line's raw text is its action with this one position: what the line was built from, and the
                # position's part of the line id (POSITION_KEY), which the position alone cannot say (its place),
                # so that a replay of a quarantined position gives it the same line id.
                report.take(
                    {**action, "positions": [position], POSITION_KEY: key},
                    lambda: map_position(action, position, index, options, key),  # noqa: B023 - called at once
                )
        else:
            report.take(action, lambda: map_position(action, None, 0, options))  # noqa: B023 - called at once
    found = payload.get("_meta")
    meta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return report, meta


def decode(data: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        payload = loads(data) if isinstance(data, (bytes, str)) else data
    except ValueError as error:
        raise ReportFormatError(f"admitad page is not JSON: {error}") from None
    if not isinstance(payload, Mapping) or not isinstance(payload.get("results"), list):
        raise ReportFormatError('admitad page has no results list (expected {"results": [...], "_meta": {...}})')
    return payload


def position_keys(positions: list[Any]) -> list[str | None]:
    """Each position's part of its line id (see the module's docstring), or None where it would not be unique."""
    own: list[str | None] = []
    for position in positions:
        try:
            own.append(identifier(position, "id", required=False) if isinstance(position, Mapping) else None)
        except LineRejected:
            own.append(None)  # map_position quarantines the position for its id
    keys: list[str] = []
    repeats: Counter[str] = Counter()
    for given in own:
        if given is not None:
            repeats[given] += 1
            keys.append(given if repeats[given] == 1 else f"{given}#{repeats[given]}")
        else:
            keys.append("")
    named = set(keys)
    for place, given in enumerate(own, start=1):
        if given is None:
            keys[place - 1] = str(place) if str(place) not in named else f"{place}#position"
    taken = Counter(keys)
    return [key if taken[key] == 1 else None for key in keys]


def map_position(action: Any, position: Any, index: int, options: PartnerOptions, key: str | None = "") -> OrderLine:
    """One line: the action with one of its positions (`key` from `position_keys`), or an action without positions
    (`position` None, `index` 0)."""
    if not isinstance(action, Mapping):
        raise LineRejected(f"action={show(action)}: not a JSON object")
    if position is not None and not isinstance(position, Mapping):
        raise LineRejected(f"positions[{index - 1}]={show(position)}: not a JSON object")
    status_text = require(action, "status")
    status = STATUSES.get(str(status_text).strip().lower())
    if status is None:
        raise LineRejected(f"status={show(status_text)}: unknown status (known: {', '.join(STATUSES)})")
    action_id = identifier(action, "action_id", required=False) or identifier(action, "id")
    zone = options.timezone
    ordered_at = local_time(action, "action_date", zone, required=False) or local_time(
        action, "datetime", zone, required=False
    )
    if ordered_at is None:  # `datetime` is only an older name of the same field: the reason names the current one
        raise LineRejected("action_date: missing")
    status_at = local_time(action, "status_updated", zone, required=False) or ordered_at

    source = position if position is not None else action
    amount_field, commission_field = ("amount", "payment") if position is not None else ("cart", "payment")
    line_id = action_id
    if position is not None:
        own_id = identifier(position, "id", required=False)
        if key is None:
            raise LineRejected(
                f"positions[{index - 1}].id={show(own_id)}: another position of action {show(action_id)} would have"
                " the same line id; neither is merged into the other"
            )
        line_id = f"{action_id}#{key or own_id or index}"
    number_format = separators(options)
    currency = str(action.get("currency") or "").strip()
    if not currency:
        raise LineRejected("currency: missing")
    values = {
        "partner": PARTNER,
        "line_id": line_id,
        "order_id": identifier(action, "order_id", required=False) or action_id,
        "partner_order_id": action_id,
        "sub_id": _text(action.get("subid")),
        "status": status,
        "status_at": status_at,
        "ordered_at": ordered_at,
        "paid_at": ordered_at,
        # `closing_date` is the advertiser's deadline to process the action, not when it was approved; an approved
        # action was settled when its status last changed.
        "settled_at": status_at if status is LineStatus.SETTLED else None,
        "amount": _in_position(index, lambda: decimal_amount(source, amount_field, **number_format)),
        "shipping": "0",
        "currency": currency,
        "usd_rate": currency_rate(
            currency, decimal_amount(action, "usd_rate", required=False, **number_format), options
        ),
        "commission": _in_position(
            index, lambda: decimal_amount(source, commission_field, required=False, **number_format)
        )
        or Decimal("0"),
        "category_id": _in_position(index, lambda: identifier(source, "product_category_id", required=False)),
        "product_id": _in_position(index, lambda: identifier(source, "product_id", required=False)),
        "promo_code": _text(action.get("promocode")),
    }
    return build_line(values, source_names(position is not None, index))


def source_names(has_position: bool, index: int) -> dict[str, str]:
    """The Admitad field each normalised field came from: the position's (`positions[i].amount`) or, for an action
    without positions, the action's own (`cart`, `payment`)."""
    if not has_position:
        return {
            **_SOURCE_NAMES,
            "amount": "cart",
            "commission": "payment",
            "category_id": "product_category_id",
            "product_id": "product_id",
        }
    position = f"positions[{index - 1}]"
    return {
        **_SOURCE_NAMES,
        "amount": f"{position}.amount",
        "commission": f"{position}.payment",
        "category_id": f"{position}.product_category_id",
        "product_id": f"{position}.product_id",
    }


def _in_position(index: int, read: Callable[[], Any]) -> Any:
    """A position's field read by `read`; a reason names it as `positions[i].field` (index 0: the action's own)."""
    try:
        return read()
    except LineRejected as rejected:
        if index:
            raise LineRejected(f"positions[{index - 1}].{rejected}") from None
        raise


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


def filter_time(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime(FILTER_TIME_FORMAT)


class AdmitadClient:
    """`GET /statistics/actions/` with a client-credentials token that is reused until shortly before it expires."""

    partner = PARTNER

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        scope: str = "statistics",
        limit: int = 100,
        timezone: str = "UTC",
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.endpoint = endpoint.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.limit = max(1, min(MAX_LIMIT, limit))
        self.timezone = timezone
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0
        self.tokens_issued = 0

    def __repr__(self) -> str:  # never show the secret
        return f"AdmitadClient(endpoint={self.endpoint!r})"

    def token(self) -> str:
        # A minute of margin: a token that expires between our check and the partner's is refused there.
        if self._token is None or self._clock() >= self._token_expires - 60:
            self._token, lifetime = with_retries(self.retry, self._fetch_token)
            self._token_expires = self._clock() + lifetime
            self.tokens_issued += 1
        return self._token

    def _fetch_token(self) -> tuple[str, float]:
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode("ascii")
        response = send(
            PARTNER,
            self.session,
            "POST",
            f"{self.endpoint}/token/",
            timeout=self.timeout,
            data={"grant_type": "client_credentials", "client_id": self._client_id, "scope": self.scope},
            headers={"Authorization": f"Basic {basic}"},
        )
        if response.status_code != 200:
            raise PartnerApiError(
                PARTNER,
                f"token refused (HTTP {response.status_code}): {_error_text(response)}",
                code=str(response.status_code),
            )
        body = response.json()
        if not body.get("access_token"):
            raise PartnerApiError(PARTNER, "token response without access_token")
        return body["access_token"], float(body.get("expires_in") or 0)

    def actions(self, params: Mapping[str, Any]) -> bytes:
        """One page of actions, retried while it fails transiently; a refused token is renewed once."""
        return with_retries(self.retry, lambda: self._actions_once(params))

    def _actions_once(self, params: Mapping[str, Any]) -> bytes:
        for renewed in (False, True):
            response = send(
                PARTNER,
                self.session,
                "GET",
                f"{self.endpoint}/statistics/actions/",
                timeout=self.timeout,
                params=dict(params),
                headers={"Authorization": f"Bearer {self.token()}"},
            )
            if response.status_code == 401 and not renewed:
                self._token = None
                continue
            if response.status_code != 200:
                raise PartnerApiError(
                    PARTNER,
                    f"statistics/actions HTTP {response.status_code}: {_error_text(response)}",
                    code=str(response.status_code),
                )
            try:
                decode(response.content)
            except ReportFormatError:
                pass  # a page of an unexpected shape is the pull's to archive and quarantine whole; paging goes on
            return response.content
        raise PartnerApiError(PARTNER, "statistics/actions refused a fresh token")

    def pages(self, start: datetime, end: datetime, resume: PagePosition | None = None) -> Iterator[FetchedPage]:
        offset = int(resume.position or 0) if resume and resume.stage == STAGE else 0
        page_no = resume.page_no if resume and resume.stage == STAGE else 1
        total: int | None = None  # `_meta.count` of the last readable page
        while True:
            raw = self.actions(
                {
                    "status_updated_start": filter_time(start, self.timezone),
                    "status_updated_end": filter_time(end, self.timezone),
                    "limit": self.limit,
                    "offset": offset,
                }
            )
            # The next page starts a whole `limit` on: offsets count the partner's rows, not what this page held.
            next_offset = offset + self.limit
            try:
                payload = decode(raw)
            except ReportFormatError:
                # quarantined whole by the pull; paging goes on while this page's or an earlier page's count says
                # there is more
                total = _odd_page_total(raw, total)
                done = total is None or next_offset >= total
            else:
                count = len(payload["results"])
                total = _total(payload.get("_meta"), default=offset + count)
                done = count == 0 or next_offset >= total
            resume_after = PagePosition(None) if done else PagePosition(STAGE, str(next_offset), page_no + 1)
            yield FetchedPage(raw=raw, page_key=f"actions-{page_no:04d}", resume_after=resume_after)
            if done:
                return
            offset, page_no = next_offset, page_no + 1


def _odd_page_total(raw: bytes, known: int | None) -> int | None:
    """`_meta.count` of a page whose results are of an unexpected shape, when it has one; else `known`."""
    try:
        payload = loads(raw)
    except ValueError:
        return known
    meta = payload.get("_meta") if isinstance(payload, Mapping) else None
    count = _total(meta, default=-1)
    return count if count >= 0 else known


def _total(meta: Any, default: int) -> int:
    """`_meta.count`; one that is not a plain count (the partner's data too) reads as what this page shows."""
    count = meta.get("count") if isinstance(meta, Mapping) else None
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    if isinstance(count, str) and count.strip().isascii() and count.strip().isdigit() and len(count.strip()) <= 18:
        return int(count)
    return default


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, Mapping):
        return str(body.get("error_description") or body.get("error") or body.get("detail") or body)[:200]
    return str(body)[:200]
