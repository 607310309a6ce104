"""What the partner API clients share: a page as fetched (raw bytes, a stable key, where to resume after it), the
error a partner call ends with, and retries with backoff for the failures that pass (rate limits, 5xx, timeouts).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import requests

T = TypeVar("T")


class PartnerApiError(RuntimeError):
    """A partner call that failed. `transient` failures (rate limit, 5xx, timeout) are retried; the others (bad
    signature, refused credentials, a refused window) fail the run at once with this message."""

    def __init__(
        self,
        partner: str,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ):
        super().__init__(f"{partner}: {message}")
        self.partner = partner
        self.transient = transient
        self.retry_after = retry_after
        self.code = code


@dataclass(frozen=True)
class PagePosition:
    """Where a window's paging stands: `stage` (the AliExpress time type, or Admitad's `actions`), the partner's
    cursor within it (start_query_index_id, page number or offset) and the page's number in the window. A position
    with `stage=None` means the window is done."""

    stage: str | None
    position: str | None = None
    page_no: int = 1


@dataclass(frozen=True)
class FetchedPage:
    """One API response exactly as the partner sent it, with a key that is the same when the same window is read
    again (so its archive object is overwritten, not duplicated) and the position to resume from after it."""

    raw: bytes
    page_key: str
    resume_after: PagePosition


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, error: PartnerApiError) -> float:
        if error.retry_after is not None:
            return min(self.max_delay, max(0.0, error.retry_after))
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * random.uniform(0.5, 1.0)  # jitter: parallel runs do not retry in lockstep


def with_retries[T](policy: RetryPolicy, call: Callable[[], T]) -> T:
    attempt = 1
    while True:
        try:
            return call()
        except PartnerApiError as error:
            if not error.transient:
                raise
            if attempt >= policy.attempts:
                raise PartnerApiError(
                    error.partner, f"gave up after {attempt} attempts: {error}", transient=True, code=error.code
                ) from error
            policy.sleep(policy.delay(attempt, error))
            attempt += 1


def send(
    partner: str, session: requests.Session, method: str, url: str, *, timeout: float, **kwargs
) -> requests.Response:
    """One HTTP exchange; a network failure or a timeout is transient, an HTTP error is classified by status."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise PartnerApiError(partner, f"{method} {url} failed: {type(error).__name__}", transient=True) from None
    if response.status_code == 429:
        raise PartnerApiError(
            partner, f"rate limited (HTTP 429) on {url}", transient=True, retry_after=_retry_after(response), code="429"
        )
    if response.status_code >= 500:
        raise PartnerApiError(
            partner,
            f"HTTP {response.status_code} on {url}",
            transient=True,
            retry_after=_retry_after(response),
            code=str(response.status_code),
        )
    return response


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
