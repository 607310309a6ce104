"""The simulator's HTTP side: a WSGI app speaking the AliExpress sync gateway (`/sync`) and Admitad (`/token/`,
`/statistics/actions/`), plus a small control API (`/_simulator/...`) for demos driving it from another process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from accrual_dev.simulator.generator import World

PACIFIC = ZoneInfo("America/Los_Angeles")
MAX_WINDOW = timedelta(days=31)  # the gateway refuses longer windows, as the real one refuses months


@dataclass(frozen=True)
class Credentials:
    """Fixed test credentials the local setup writes into the stack's secrets."""

    app_key: str = "sim-app-key"
    app_secret: str = "sim-app-secret"
    client_id: str = "sim-client-id"
    client_secret: str = "sim-client-secret"
    token_lifetime: int = 3600


@dataclass
class Faults:
    """Faults on the data endpoints (`/sync` order methods and `/statistics/actions/`), by count so tests are exact:

    - `rate_limit`: the next N data requests are refused with the partner's rate-limit answer;
    - `server_error`: the next N data requests answer HTTP 503;
    - `malformed_line`: every page carries one extra line that cannot be normalised;
    - `slow_seconds` / `slow_requests`: the next N data requests wait that long before answering;
    - `fail_after_pages`: after N more pages are served, every data request answers HTTP 500 until cleared;
    - `odd_pages`: the next N pages are of a shape the partner does not document (AliExpress: `orders.order` a
      text; Admitad: `results` an object), their paging numbers intact.
    """

    rate_limit: int = 0
    server_error: int = 0
    malformed_line: bool = False
    slow_seconds: float = 0.0
    slow_requests: int = 0
    fail_after_pages: int | None = None
    odd_pages: int = 0


@dataclass
class Stats:
    requests: int = 0
    pages: int = 0
    refused_signatures: int = 0
    tokens_issued: int = 0
    faults_served: dict[str, int] = field(default_factory=dict)


class SimulatorApp:
    def __init__(
        self,
        world: World,
        *,
        credentials: Credentials | None = None,
        faults: Faults | None = None,
        now: datetime | None = None,
    ):
        self.world = world
        self.credentials = credentials or Credentials()
        self.faults = faults or Faults()
        self.now = (now or world.end).astimezone(UTC)
        self.stats = Stats()
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        with self._lock:
            self.stats.requests += 1
        routes = {
            "/sync": self.sync,
            "/token/": self.token,
            "/statistics/actions/": self.actions,
            "/_simulator/now": self.control_now,
            "/_simulator/faults": self.control_faults,
            "/_simulator/clicks": self.control_clicks,
            "/_simulator/stats": self.control_stats,
        }
        handler = routes.get(request.path)
        response = handler(request) if handler else _json({"error": "not_found", "path": request.path}, 404)
        return response(environ, start_response)

    def _fault(self) -> Response | str | None:
        """The fault, if any, that this data request meets (counted down under the lock): an HTTP error answer,
        "rate_limit" (each partner refuses in its own words), or None."""
        with self._lock:
            faults = self.faults
            if faults.slow_requests > 0:
                faults.slow_requests -= 1
                delay = faults.slow_seconds
                self._count("slow")
            else:
                delay = 0.0
            if faults.fail_after_pages is not None and faults.fail_after_pages <= 0:
                self._count("fail")
                return _json({"error": "internal error"}, 500)
            if faults.server_error > 0:
                faults.server_error -= 1
                self._count("server_error")
                return _json({"error": "service unavailable"}, 503)
            if faults.rate_limit > 0:
                faults.rate_limit -= 1
                self._count("rate_limit")
                return "rate_limit"
        if delay:
            time.sleep(delay)
        return None

    def _page_served(self) -> None:
        with self._lock:
            self.stats.pages += 1
            if self.faults.fail_after_pages is not None:
                self.faults.fail_after_pages -= 1

    def _odd_page(self) -> bool:
        with self._lock:
            if self.faults.odd_pages <= 0:
                return False
            self.faults.odd_pages -= 1
            self._count("odd_pages")
            return True

    def _count(self, name: str) -> None:
        self.stats.faults_served[name] = self.stats.faults_served.get(name, 0) + 1

    # --- AliExpress sync gateway ----------------------------------------------------------------------------------

    def sync(self, request: Request) -> Response:
        params = {key: request.values.get(key) for key in request.values.keys()}
        refusal = self._check_signature(params)
        if refusal:
            return refusal
        method = params.get("method")
        if method not in ("aliexpress.affiliate.order.listbyindex", "aliexpress.affiliate.order.list"):
            return _ali_error("InvalidApiName", f"Invalid API name {method}")
        fault = self._fault()
        if fault == "rate_limit":
            return _ali_error("ApiCallLimit", "App Call Limited", "This ban will last for 0 more seconds")
        if fault is not None:
            return fault
        try:
            start = _pacific(params["start_time"])
            end = _pacific(params["end_time"])
            page_size = int(params.get("page_size") or 20)
        except (KeyError, TypeError, ValueError):
            return _ali_error("InvalidParameter", "start_time, end_time (yyyy-MM-dd HH:mm:ss) and page_size required")
        if end - start > MAX_WINDOW or end < start:
            return _ali_error("InvalidParameter", "the time window must be positive and at most 31 days")
        if not 1 <= page_size <= 50:
            return _ali_error("InvalidParameter", "page_size must be between 1 and 50")
        time_type = params.get("time_type") or "Payment Completed Time"
        status = params.get("status")
        matching = []
        for order in sorted(self.world.aliexpress, key=lambda item: item.index_id):
            at = order.event_time(time_type, self.now)
            record = order.as_of(self.now)
            if at is None or record is None or not start <= at <= end:
                continue
            if status and record["order_status"] != status:
                continue
            matching.append((order, record))
        if method.endswith("listbyindex"):
            after = int(params.get("start_query_index_id") or 0)
            page = [(order, record) for order, record in matching if order.index_id > after][:page_size]
            page_no, total_pages = None, None
        else:
            page_no = max(1, int(params.get("page_no") or 1))
            page = matching[(page_no - 1) * page_size : page_no * page_size]
            total_pages = max(1, -(-len(matching) // page_size))
        orders = []
        for order, record in page:
            orders.append(record)
            if order.listed_twice:
                orders.append(record)
        if self.faults.malformed_line and page:
            orders.insert(
                len(orders) // 2,
                {
                    "order_id": "broken",
                    "order_status": "Payment Completed",
                    "paid_amount": "12.x",
                    "created_time": "2026-13-45 99:00:00",
                },
            )
        result: dict[str, Any] = {
            "current_record_count": len(orders),
            "total_record_count": len(matching),
            "orders": {"order": "unexpected" if self._odd_page() else orders},
        }
        if page_no is None:
            if page:
                result["min_query_index_id"] = str(page[0][0].index_id)
                result["max_query_index_id"] = str(page[-1][0].index_id)
        else:
            result.update(current_page_no=page_no, total_page_no=total_pages)
        self._page_served()
        envelope = method.replace(".", "_") + "_response"
        return _json(
            {
                envelope: {
                    "resp_result": {"resp_code": 200, "resp_msg": "call succeeds", "result": result},
                    "request_id": secrets.token_hex(6),
                }
            }
        )

    def _check_signature(self, params: dict[str, str]) -> Response | None:
        if params.get("app_key") != self.credentials.app_key:
            return _ali_error("InvalidAppKey", "The specified App Key is invalid")
        sign_method = params.get("sign_method")
        if sign_method not in ("sha256", "md5"):
            return _ali_error("InvalidSignatureMethod", f"sign_method {sign_method} is not supported")
        text = "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign")
        secret = self.credentials.app_secret
        if sign_method == "sha256":
            expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
        else:
            expected = hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()
        if not hmac.compare_digest(expected, str(params.get("sign", ""))):
            with self._lock:
                self.stats.refused_signatures += 1
            return _ali_error("IncompleteSignature", "The request signature does not conform to platform standards")
        return None

    # --- Admitad --------------------------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.credentials.client_id}:{self.credentials.client_secret}".encode()).decode()
        if request.method != "POST" or header != f"Basic {expected}":
            return _json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if request.form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.credentials.token_lifetime
            self.stats.tokens_issued += 1
        return _json(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.credentials.token_lifetime,
                "refresh_token": secrets.token_hex(16),
                "scope": request.form.get("scope", "statistics"),
                "username": "cashback",
                "id": 1,
                "group": "webmaster",
                "language": "en",
            }
        )

    def actions(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None or expires < time.monotonic():
            return _json({"error": "invalid_token", "error_description": "The access token is invalid or expired"}, 401)
        fault = self._fault()
        if fault == "rate_limit":
            return _json(
                {"error": "rate_limit", "error_description": "Too many requests"}, 429, headers={"Retry-After": "0"}
            )
        if fault is not None:
            return fault
        try:
            start = _admitad_time(request.args["status_updated_start"])
            end = _admitad_time(request.args["status_updated_end"])
            limit = int(request.args.get("limit", 20))
            offset = int(request.args.get("offset", 0))
        except (KeyError, ValueError):
            return _json(
                {"error": "invalid_request", "error_description": "status_updated_start/_end as dd.mm.YYYY HH:MM:SS"},
                400,
            )
        if not 1 <= limit <= 500 or offset < 0:
            return _json({"error": "invalid_request", "error_description": "limit 1..500, offset >= 0"}, 400)
        rows = []
        for action in self.world.admitad:
            updated = action.status_updated(self.now)
            if updated is not None and start <= updated <= end:
                rows.append((updated, action))
                if action.listed_twice:
                    rows.append((updated, action))
        rows.sort(key=lambda row: (row[0], row[1].fields["action_id"]))
        results = [action.as_of(self.now) for _, action in rows[offset : offset + limit]]
        if self.faults.malformed_line and results:
            results.insert(
                len(results) // 2,
                {"action_id": 1, "status": "on_hold", "currency": "USD", "positions": [{"id": 1, "amount": "-3"}]},
            )
        self._page_served()
        shaped: Any = {"unexpected": results} if self._odd_page() else results
        return _json({"results": shaped, "_meta": {"count": len(rows), "limit": limit, "offset": offset}})

    # --- control --------------------------------------------------------------------------------------------------

    def control_now(self, request: Request) -> Response:
        if request.method == "POST":
            self.now = datetime.fromisoformat(json.loads(request.get_data())["now"].replace("Z", "+00:00"))
        return _json({"now": self.now.isoformat()})

    def control_faults(self, request: Request) -> Response:
        if request.method == "POST":
            with self._lock:
                self.faults = Faults(**json.loads(request.get_data()))
        return _json(asdict(self.faults))

    def control_clicks(self, request: Request) -> Response:
        return Response(self.world.clicks_jsonl(), mimetype="application/x-ndjson")

    def control_stats(self, request: Request) -> Response:
        return _json(asdict(self.stats))


def _pacific(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=PACIFIC).astimezone(UTC)


def _admitad_time(text: str) -> datetime:
    return datetime.strptime(text, "%d.%m.%Y %H:%M:%S").replace(tzinfo=UTC)


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # Admitad writes amounts as JSON numbers; two-decimal values print back exactly
    raise TypeError(f"cannot encode {type(value).__name__}")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, default=_encode), status=status, headers=headers, mimetype="application/json")


def _ali_error(code: str, message: str, sub_message: str | None = None) -> Response:
    error = {"type": "ISV", "code": code, "msg": message, "request_id": secrets.token_hex(6)}
    if sub_message:
        error["sub_msg"] = sub_message
    return _json({"error_response": error})
