"""Fixtures shared by every test suite.

`moto_endpoint` (session) starts one moto server process on a free loopback port and points boto3 at it;
`stack` (per test) provisions a fresh stack from template.yaml on that server under a unique name and yields its
Settings. Both are lazy: a unit test that asks for neither never starts the server.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from accrual import settings as settings_module
from accrual_dev.local.provision import provision
from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer
from accrual.settings import Settings

# Names Settings.from_env reads before the stack's outputs: a developer's shell must not redirect a test's stack.
_RESOURCE_VARIABLES = ("ORDERS_TABLE", "BALANCES_TABLE", "OUTBOX_TABLE", "CLICKS_TABLE", "CONTROL_TABLE",
                       "IDEMPOTENCY_TABLE", "NOTIFICATIONS_TOPIC_ARN", "REPORTS_BUCKET",
                       "LOCAL_NOTIFICATIONS_QUEUE_URL", "PARTNER_SECRETS_PREFIX", "PARTNER_PARAMETERS_PREFIX")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of this session's moto server; AWS_ENDPOINT_URL, region and dummy credentials point boto3 at it."""
    with MotoServer() as server:
        overrides = {**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": server.url}
        saved = {name: os.environ.get(name) for name in (*overrides, "AWS_PROFILE", "AWS_SESSION_TOKEN")}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(overrides)
        try:
            yield server.url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _clear_settings_caches() -> None:
    for value in vars(settings_module).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A fresh stack provisioned from template.yaml under a unique name; yields its Settings."""
    name = f"t{uuid.uuid4().hex[:10]}"
    for variable in _RESOURCE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ACCRUAL_STACK", name)
    provision(name)
    _clear_settings_caches()
    yield Settings.from_env()
    _clear_settings_caches()
