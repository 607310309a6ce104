"""Opt-in client-side latency for DynamoDB calls, for benchmarks and throughput checks on a local emulator.

A local emulator answers in well under a millisecond; DynamoDB answers in roughly 5-20 ms. With
`ACCRUAL_DYNAMODB_LATENCY_MS=20` in the environment every DynamoDB request (each attempt, retries included) waits that
long before it is sent, whether it comes from boto3 or from PynamoDB (both go through botocore). Unset or 0: nothing
is installed. It lives with the benches, not in the package Lambda runs: a bench installs it in its own process
(`install`) or, for a child process such as the `accrual` CLI, puts bench/_hook on PYTHONPATH (sitecustomize.py).

botocore has no process-wide event hook: the handler is registered on every botocore session, the ones that exist
(boto3's default session) and the ones created later (PynamoDB creates its own per connection).
"""

from __future__ import annotations

import os
import time
from typing import Any

ENVIRONMENT_VARIABLE = "ACCRUAL_DYNAMODB_LATENCY_MS"
EVENT = "before-send.dynamodb"
_state: dict[str, float] = {"seconds": 0.0}
_installed: list[bool] = []


def _wait(**_: Any) -> None:
    # returning None lets botocore send the request as usual; time.sleep releases the GIL like a network wait
    if _state["seconds"] > 0:
        time.sleep(_state["seconds"])


def latency_ms() -> float:
    return _state["seconds"] * 1000


def install(milliseconds: float) -> None:
    """Add `milliseconds` before every DynamoDB request of this process (0 turns it off again)."""
    _state["seconds"] = max(0.0, float(milliseconds)) / 1000
    if _installed or _state["seconds"] == 0:
        return
    import boto3
    from botocore import session as botocore_session

    original_init = botocore_session.Session.__init__

    def init_with_latency(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.register(EVENT, _wait, unique_id="accrual-dynamodb-latency")

    botocore_session.Session.__init__ = init_with_latency
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION._session.register(EVENT, _wait, unique_id="accrual-dynamodb-latency")
    _installed.append(True)


def install_from_environment() -> None:
    milliseconds = float(os.environ.get(ENVIRONMENT_VARIABLE) or 0)
    if milliseconds < 0:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be 0 or more, got {milliseconds}")
    if milliseconds:
        install(milliseconds)
