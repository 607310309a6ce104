"""Fixtures shared by every test suite.

`aws_endpoint` (session) starts one local AWS emulator process on a free loopback port and points boto3 at it;
`stack` (per test) provisions a fresh stack from template.yaml on that server under a unique name and yields its
Settings. Both are lazy: a unit test that asks for neither never starts the server.

The emulator is chosen by one setting, ACCRUAL_EMULATOR: `moto` (the default, moto's server), `ministack` (built by
`make ministack`) or `dynamodb-local` (AWS's DynamoDB Local for DynamoDB, moto for the rest; built by
`make dynamodb-local`); `make test-conformance` runs the integration and end-to-end suites on all three. A test that an
emulator gets wrong is marked `only_on("moto", reason=...)` (or several names: `only_on("moto", "ministack",
reason=...)`): it is skipped on the others with the reason, and docs/emulators.md lists them.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

# Whole-table reads scan in segments; the tests' tables hold a few items, so four segments (each a call) are enough
# to exercise it (the CLI processes the tests start inherit it).
os.environ.setdefault("ACCRUAL_SCAN_SEGMENTS", "4")

from accrual import settings as settings_module  # noqa: E402
from accrual.settings import RESOURCE_VARIABLES, Settings
from accrual_dev.local.emulators import EMULATORS
from accrual_dev.local.provision import provision
from accrual_dev.local.server import LOCAL_ENVIRONMENT


def emulator_name() -> str:
    """ACCRUAL_EMULATOR (moto unless set); an unknown name stops the run rather than testing the wrong thing."""
    name = os.environ.get("ACCRUAL_EMULATOR", "moto").strip().lower() or "moto"
    if name not in EMULATORS:
        raise pytest.UsageError(f"ACCRUAL_EMULATOR={name!r}: expected one of {', '.join(EMULATORS)}")
    return name


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "only_on(*emulators, reason): the emulators this test is right on; skipped on "
        "the others with the reason (the emulator is wrong there, not the ledger)",
    )
    emulator_name()
    # A shell without job control starts a background job with Ctrl-C ignored, and the tests' processes and the CLIs
    # they start would inherit it: the tests of Ctrl-C need it to mean what it means at a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config: pytest.Config) -> str:
    return f"local AWS emulator: {emulator_name()} (ACCRUAL_EMULATOR)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    current = emulator_name()
    for item in items:
        for marker in item.iter_markers("only_on"):
            if "reason" in marker.kwargs:
                wanted, reason = list(marker.args), marker.kwargs["reason"]
            else:
                wanted, reason = list(marker.args[:1]), (marker.args[1] if len(marker.args) > 1 else "")
            unknown = [name for name in wanted if name not in EMULATORS]
            if not wanted or unknown:
                raise pytest.UsageError(f"{item.nodeid}: only_on({wanted!r}) names no known emulator")
            if current not in wanted:
                item.add_marker(pytest.mark.skip(reason=f"{' and '.join(wanted)} only: {reason}"))


@pytest.fixture(scope="session")
def emulator() -> str:
    """The name of the local AWS emulator this run uses (moto, ministack or dynamodb-local)."""
    return emulator_name()


@pytest.fixture(scope="session")
def aws_endpoint(emulator: str) -> Iterator[str]:
    """The URL of this session's emulator (moto's beside DynamoDB Local); boto3's endpoint variables, region and dummy
    credentials point boto3 at it (DynamoDB at DynamoDB Local under `dynamodb-local`)."""
    with EMULATORS[emulator]() as server:
        overrides = {**LOCAL_ENVIRONMENT, **server.endpoints}
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


@pytest.fixture(scope="session")
def moto_endpoint(aws_endpoint: str) -> str:
    """The older name of `aws_endpoint` (whichever emulator ACCRUAL_EMULATOR chose, not necessarily moto)."""
    return aws_endpoint


@pytest.fixture(scope="session")
def dynamodb_endpoint(aws_endpoint: str) -> str:
    """The URL this session's DynamoDB answers at (DynamoDB Local's under `dynamodb-local`, else the emulator's)."""
    return os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or aws_endpoint


def _clear_settings_caches() -> None:
    for value in vars(settings_module).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@pytest.fixture
def stack(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A fresh stack provisioned from template.yaml under a unique name; yields its Settings."""
    name = f"t{uuid.uuid4().hex[:10]}"
    for variable in RESOURCE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ACCRUAL_STACK", name)
    provision(name)
    _clear_settings_caches()
    yield Settings.from_env()
    _clear_settings_caches()
