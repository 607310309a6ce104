"""AliExpress affiliate programme: request signing, the order-list client on the Open Platform "sync" gateway, and the
mapping of a response page to normalised order lines.

A saved response page (`accrual ingest FILE --partner aliexpress`) and a live one go through the same `parse_page`.
Money fields are integers in minor units (`PartnerOptions.minor_units`, 100 by default: `"paid_amount": 1113` is
11.13); ids are kept as strings; times without a zone are Pacific time, as the API writes them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from accrual.domain.models import LineStatus, OrderLine
from accrual.partners.http import FetchedPage, PagePosition, PartnerApiError, RetryPolicy, send, with_retries
from accrual.partners.report import (
    MAX_JSON_DEPTH,
    LineRejected,
    ParsedReport,
    PartnerOptions,
    ReportFormatError,
    build_line,
    currency_rate,
    flag,
    identifier,
    loads,
    local_time,
    minor_units_amount,
    nested_path,
    require,
    show,
)

PARTNER = "aliexpress"
PACIFIC = "America/Los_Angeles"
LISTBYINDEX = "aliexpress.affiliate.order.listbyindex"
LIST = "aliexpress.affiliate.order.list"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PAGE_SIZE = 50

# Orders are found by the time of the event that changed them: new paid orders, receipts and settlements each have
# their own time type, so reading all three over the overlap window also catches late status changes.
TIME_TYPES = ("Payment Completed Time", "Buyer Confirmed Receipt Time", "Completed Settlement Time")

STATUSES = {
    "Payment Completed": LineStatus.PAID,
    "Buyer Confirmed Receipt": LineStatus.RECEIVED,
    "Completed Settlement": LineStatus.SETTLED,
    "Invalid": LineStatus.INVALID,
}
_STATUS_BY_WORD = {word.lower(): status for word, status in STATUSES.items()}
# The time at which the partner set each status (`Invalid` carries none: see map_order).
STATUS_TIME = {
    LineStatus.PAID: "paid_time",
    LineStatus.RECEIVED: "finished_time",
    LineStatus.SETTLED: "completed_settlement_time",
}

FIELDS = ",".join(
    (
        "order_id",
        "sub_order_id",
        "order_status",
        "effect_detail_status",
        "paid_amount",
        "finished_amount",
        "estimated_paid_commission",
        "estimated_finished_commission",
        "commission_rate",
        "incentive_commission_rate",
        "new_buyer_bonus_commission",
        "settled_currency",
        "is_hot_product",
        "is_new_buyer",
        "is_affiliate_product",
        "category_id",
        "product_id",
        "product_count",
        "product_title",
        "tracking_id",
        "custom_parameters",
        "ship_to_country",
        "order_type",
        "created_time",
        "paid_time",
        "finished_time",
        "completed_settlement_time",
    )
)

# Error codes of the gateway that pass with time: call limits (the ban lasts seconds) and a busy service.
_TRANSIENT_CODE = re.compile(r"limit|busy|unavailable|timeout|isp\.|system", re.IGNORECASE)
_BAN_SECONDS = re.compile(r"(\d+)\s*(?:more\s*)?seconds?", re.IGNORECASE)

# Normalised field -> the AliExpress field it comes from, so a quarantine reason names what the partner sent.
_SOURCE_NAMES = {
    "line_id": "sub_order_id",
    "order_id": "order_id",
    "status": "order_status",
    "amount": "paid_amount",
    "commission": "estimated_paid_commission",
    "currency": "settled_currency",
    "ordered_at": "created_time",
    "paid_at": "paid_time",
    "settled_at": "completed_settlement_time",
    "ship_to_country": "ship_to_country",
    "category_id": "category_id",
    "product_id": "product_id",
    "sub_id": "custom_parameters",
    "status_detail": "effect_detail_status",
}


def sign(params: Mapping[str, Any], secret: str, sign_method: str) -> str:
    """The gateway's signature: every parameter but `sign`, sorted by key, concatenated as key+value; `sha256` is
    HMAC-SHA256 keyed by the app secret, `md5` is MD5 of secret+text+secret; both as upper-case hex."""
    text = "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign" and params[key] is not None)
    if sign_method == "sha256":
        return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest().upper()
    if sign_method == "md5":
        return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()
    raise ValueError(f"sign_method {sign_method!r} is not sha256 or md5")


def pacific(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(PACIFIC)).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class PageInfo:
    """The paging part of a response's `result`."""

    order_count: int
    current_page_no: int | None
    total_page_no: int | None
    total_record_count: int | None
    max_query_index_id: str | None
    min_query_index_id: str | None


def decode(data: bytes | str | Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Any]]:
    """The `result` and its orders from a response, raising PartnerApiError for the gateway's error answers and
    ReportFormatError when it is not a response of the order methods at all."""
    try:
        payload = loads(data) if isinstance(data, (bytes, str)) else data
    except ValueError as error:
        raise ReportFormatError(f"aliexpress page is not JSON: {error}") from None
    if not isinstance(payload, Mapping):
        raise ReportFormatError("aliexpress page is not a JSON object")
    if "error_response" in payload:
        raise gateway_error(payload["error_response"])
    envelope = next((value for key, value in payload.items() if key.endswith("_response")), payload)
    if not isinstance(envelope, Mapping) or "resp_result" not in envelope:
        if isinstance(envelope, Mapping) and "orders" in envelope:
            return envelope, _orders(envelope)  # a bare `result`, as some exports save it
        raise ReportFormatError("aliexpress page has no resp_result (expected <method>_response.resp_result)")
    resp_result = envelope["resp_result"]
    if not isinstance(resp_result, Mapping):
        raise ReportFormatError("aliexpress resp_result is not an object")
    found = resp_result.get("resp_code")
    if isinstance(found, bool) or not isinstance(found, (str, int)) or not str(found).strip():
        # no code at all is not an error answer the gateway documents: the page's shape is unexpected
        raise ReportFormatError(f"aliexpress resp_result.resp_code is not a code: {show(found)}")
    code = str(found).strip()
    if code == "405":
        return {}, []  # the programme's answer for "no orders in this window"
    if code != "200":
        raise PartnerApiError(
            PARTNER,
            f"resp_code {code[:40]}: {show(resp_result.get('resp_msg'))}",
            transient=code.startswith("5"),
            code=code,
        )
    result = resp_result.get("result") or {}
    if not isinstance(result, Mapping):
        raise ReportFormatError("aliexpress resp_result.result is not an object")
    return result, _orders(result)


def _orders(result: Mapping[str, Any]) -> list[Any]:
    """`orders.order[]`, `orders[]`, or the one-element case of XML turned into JSON: `orders.order` as one object."""
    orders = result.get("orders") or []
    if isinstance(orders, Mapping):
        orders = orders.get("order") or []
    if isinstance(orders, Mapping):
        orders = [orders]
    if not isinstance(orders, list):
        raise ReportFormatError(f"aliexpress result.orders.order is not a list or an order: {show(orders)}")
    return orders


def gateway_error(error: Any) -> PartnerApiError:
    if not isinstance(error, Mapping):
        return PartnerApiError(PARTNER, f"error response {error!r}")
    code = str(error.get("code", ""))
    message = f"{code}: {error.get('msg')}" + (f" ({error['sub_msg']})" if error.get("sub_msg") else "")
    transient = bool(_TRANSIENT_CODE.search(code))
    ban = _BAN_SECONDS.search(str(error.get("sub_msg", "")))
    return PartnerApiError(
        PARTNER, message, transient=transient, retry_after=float(ban.group(1)) if transient and ban else None, code=code
    )


def page_info(result: Mapping[str, Any], orders: list[Any]) -> PageInfo:
    # Paging numbers are the partner's too: one that is not a plain count reads as absent, never fails the page.
    def number(name: str) -> int | None:
        value = result.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = value.strip() if isinstance(value, str) else None
        return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 18 else None

    def text(name: str) -> str | None:
        value = result.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (str, int))
            or (isinstance(value, int) and value.bit_length() > 256)
        ):
            return None
        return str(value).strip()[:256] or None

    return PageInfo(
        order_count=len(orders),
        current_page_no=number("current_page_no"),
        total_page_no=number("total_page_no"),
        total_record_count=number("total_record_count"),
        max_query_index_id=text("max_query_index_id"),
        min_query_index_id=text("min_query_index_id"),
    )


def paging(raw: bytes | str) -> PageInfo | None:
    """The paging numbers of a page, also when its orders are of an unexpected shape (they then count as a full
    page, so that the cursor goes on while it moves); None when the page has no readable `result` at all."""
    try:
        result, orders = decode(raw)
        return page_info(result, orders)
    except ReportFormatError:
        pass
    try:
        payload = loads(raw)
    except ValueError:
        return None
    if not isinstance(payload, Mapping):
        return None
    envelope = next((value for key, value in payload.items() if key.endswith("_response")), payload)
    resp_result = envelope.get("resp_result") if isinstance(envelope, Mapping) else None
    found = resp_result.get("result") if isinstance(resp_result, Mapping) else envelope
    if not isinstance(found, Mapping):
        return None
    return replace(page_info(found, []), order_count=MAX_PAGE_SIZE)


def parse_page(
    data: bytes | str | Mapping[str, Any], *, source: str, options: PartnerOptions | None = None
) -> tuple[ParsedReport, PageInfo]:
    options = options or PartnerOptions()
    result, orders = decode(data)
    report = ParsedReport(partner=PARTNER, source=source)
    for order in orders:
        report.take(order, lambda: map_order(order, options))  # noqa: B023 - called at once, inside the loop
    return report, page_info(result, orders)


def map_order(order: Any, options: PartnerOptions) -> OrderLine:
    if not isinstance(order, Mapping):
        raise LineRejected(f"order={show(order)}: not a JSON object")
    status_text = require(order, "order_status")
    status = _STATUS_BY_WORD.get(" ".join(str(status_text).split()).lower())
    if status is None:
        raise LineRejected(f"order_status={show(status_text)}: unknown status (known: {', '.join(STATUSES)})")
    times = {
        name: local_time(order, name, PACIFIC, required=False)
        for name in ("created_time", "paid_time", "finished_time", "completed_settlement_time")
    }
    ordered_at = times["created_time"] or times["paid_time"]
    if ordered_at is None:
        raise LineRejected("created_time: missing")
    known = [moment for moment in times.values() if moment is not None]
    status_at = times.get(STATUS_TIME.get(status, ""), None) or max(known)
    if status is LineStatus.INVALID:
        # `Invalid` carries no time of its own: it is placed a second after the latest known event, so that it
        # orders after the status it replaced (a tie would leave the order to chance).
        status_at = max(known) + timedelta(seconds=1)

    units = options.minor_units
    paid_amount = minor_units_amount(order, "paid_amount", units)
    finished_amount = minor_units_amount(order, "finished_amount", units, required=False)
    paid_commission = minor_units_amount(order, "estimated_paid_commission", units, required=False)
    finished_commission = minor_units_amount(order, "estimated_finished_commission", units, required=False)
    amount_field, commission_field = _figure_fields(status, finished_amount, finished_commission)
    amount = finished_amount if amount_field == "finished_amount" else paid_amount
    commission = finished_commission if commission_field == "estimated_finished_commission" else paid_commission

    currency = str(order.get("settled_currency") or "USD").strip()
    values = {
        "partner": PARTNER,
        "line_id": identifier(order, "sub_order_id"),
        "order_id": identifier(order, "order_id"),
        "sub_id": sub_id(order),
        "status": status,
        "status_detail": (str(order["effect_detail_status"]).strip() or None)
        if order.get("effect_detail_status")
        else None,
        "status_at": status_at,
        "ordered_at": ordered_at,
        "paid_at": times["paid_time"],
        "settled_at": times["completed_settlement_time"] if status is LineStatus.SETTLED else None,
        "amount": amount,
        "shipping": "0",  # the programme's paid_amount is the items' price; shipping earns no commission
        "currency": currency,
        "usd_rate": currency_rate(currency, None, options),
        "commission": commission if commission is not None else "0",
        "category_id": identifier(order, "category_id", required=False),
        "product_id": identifier(order, "product_id", required=False),
        "is_affiliate": flag(order, "is_affiliate_product", True),
        "is_hot": flag(order, "is_hot_product", False),
        "ship_to_country": (str(order["ship_to_country"]).strip().upper() or None)
        if order.get("ship_to_country")
        else None,
    }
    # a reason names the field the amount came from and quotes it in the partner's minor units, as given
    return build_line(
        values,
        {**_SOURCE_NAMES, "amount": amount_field, "commission": commission_field},
        given={"amount": order.get(amount_field), "commission": order.get(commission_field)},
    )


def _figure_fields(status: LineStatus, finished_amount: Any, finished_commission: Any) -> tuple[str, str]:
    """Which figures a line earns from. A settled order's finished figures are the partner's last word: when given,
    they are used as they are, 0 included (a full refund after receipt; the rules then decline the line with
    PARTNER_SETTLED_AT_ZERO), never replaced by the earlier paid figures. A received order's finished figures are
    used once the partner has filled them in (not 0)."""
    if status is LineStatus.SETTLED:
        return (
            "finished_amount" if finished_amount is not None else "paid_amount",
            "estimated_finished_commission" if finished_commission is not None else "estimated_paid_commission",
        )
    if status is LineStatus.RECEIVED:
        return (
            "finished_amount" if finished_amount else "paid_amount",
            "estimated_finished_commission" if finished_commission else "estimated_paid_commission",
        )
    return "paid_amount", "estimated_paid_commission"


def sub_id(order: Mapping[str, Any]) -> str | None:
    """The service puts its sub-id under `sub_id` in `custom_parameters` (JSON text); without it, `tracking_id`."""
    custom = order.get("custom_parameters")
    if isinstance(custom, str) and custom.strip():
        try:
            custom = loads(custom)
        except ValueError:
            raise LineRejected(f"custom_parameters={show(custom)}: not valid JSON") from None
        deep = nested_path(custom)
        if deep is not None:
            raise LineRejected(f"custom_parameters ({deep}): nested deeper than {MAX_JSON_DEPTH}")
    if custom not in (None, "") and not isinstance(custom, Mapping):
        raise LineRejected(f"custom_parameters={show(custom)}: not a JSON object")
    if custom and custom.get("sub_id") not in (None, ""):
        return str(custom["sub_id"]).strip()
    tracking = order.get("tracking_id")
    return str(tracking).strip() if tracking not in (None, "") else None


class AliExpressClient:
    """Signed calls to the sync gateway. `pages(start, end)` walks every time type of a window with the
    `start_query_index_id` cursor (listbyindex) or `page_no` (order.list) and yields each raw response."""

    partner = PARTNER

    def __init__(
        self,
        *,
        endpoint: str,
        app_key: str,
        app_secret: str,
        sign_method: str = "sha256",
        method: str = LISTBYINDEX,
        page_size: int = MAX_PAGE_SIZE,
        time_types: tuple[str, ...] = TIME_TYPES,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ):
        if sign_method not in ("sha256", "md5"):
            raise ValueError(f"sign_method {sign_method!r} is not sha256 or md5")
        if method not in (LISTBYINDEX, LIST):
            raise ValueError(f"method {method!r} is not {LISTBYINDEX} or {LIST}")
        self.endpoint = endpoint
        self._app_key = app_key
        self._app_secret = app_secret
        self.sign_method = sign_method
        self.method = method
        self.page_size = max(1, min(MAX_PAGE_SIZE, page_size))
        self.time_types = time_types
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the secret
        return f"AliExpressClient(endpoint={self.endpoint!r}, method={self.method!r})"

    def call(self, method: str, business: Mapping[str, Any]) -> bytes:
        """One signed call, retried while it fails transiently; returns the raw body of a successful answer."""
        return with_retries(self.retry, lambda: self._call_once(method, business))

    def _call_once(self, method: str, business: Mapping[str, Any]) -> bytes:
        params = {key: str(value) for key, value in business.items() if value is not None}
        params.update(
            {
                "app_key": self._app_key,
                "method": method,
                "sign_method": self.sign_method,
                "timestamp": str(int(time.time() * 1000)),
                "format": "json",
                "v": "2.0",
            }
        )
        params["sign"] = sign(params, self._app_secret, self.sign_method)
        response = send(
            PARTNER,
            self.session,
            "POST",
            self.endpoint,
            timeout=self.timeout,
            data=params,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        )
        if response.status_code >= 400:
            raise PartnerApiError(
                PARTNER,
                f"HTTP {response.status_code} from {self.endpoint}: {response.text[:200]}",
                code=str(response.status_code),
            )
        try:
            decode(response.content)  # raises for error answers, so they are retried or reported here
        except ReportFormatError:
            pass  # a page of an unexpected shape is the pull's to archive and quarantine whole; paging goes on
        return response.content

    def pages(self, start: datetime, end: datetime, resume: PagePosition | None = None) -> Iterator[FetchedPage]:
        stages = list(self.time_types)
        first = stages.index(resume.stage) if resume and resume.stage in stages else 0
        for stage_index in range(first, len(stages)):
            time_type = stages[stage_index]
            resumed = resume if resume is not None and resume.stage == time_type else None
            position = resumed.position if resumed is not None else None
            page_no = resumed.page_no if resumed is not None else 1
            following = stages[stage_index + 1] if stage_index + 1 < len(stages) else None
            while True:
                business = {
                    "start_time": pacific(start),
                    "end_time": pacific(end),
                    "time_type": time_type,
                    "page_size": self.page_size,
                    "fields": FIELDS,
                }
                if self.method == LISTBYINDEX:
                    business["start_query_index_id"] = position
                else:
                    business["page_no"] = position or "1"
                raw = self.call(self.method, business)
                info = paging(raw)
                next_position = self._next_position(info, position) if info is not None else None
                done = next_position is None
                resume_after = PagePosition(following) if done else PagePosition(time_type, next_position, page_no + 1)
                yield FetchedPage(raw=raw, page_key=f"{_slug(time_type)}-{page_no:04d}", resume_after=resume_after)
                if done:
                    break
                position, page_no = next_position, page_no + 1

    def _next_position(self, info: PageInfo, position: str | None) -> str | None:
        if info.order_count < self.page_size:
            return None
        if self.method == LISTBYINDEX:
            if info.max_query_index_id is None or info.max_query_index_id == position:
                return None
            return info.max_query_index_id
        current = info.current_page_no or int(position or "1")
        if info.total_page_no is not None and current >= info.total_page_no:
            return None
        return str(current + 1)


def _slug(time_type: str) -> str:
    return time_type.lower().replace(" ", "-")
