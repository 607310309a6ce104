"""The second local AWS emulator: a ministack server in its own process on a free loopback port, waited for and
stopped; the same shape as `MotoServer`, so a test fixture or a bench can take either.

ministack pins its own botocore, so it is installed in its own virtual environment (`make ministack` builds
`.tools/ministack`); the project's boto3 only talks to it over HTTP. The executable is found through MINISTACK_BIN,
then `.tools/ministack/bin/ministack` of this checkout, then PATH.

    with MinistackServer() as server:
        os.environ["AWS_ENDPOINT_URL"] = server.url
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from accrual_dev.local.server import ENDPOINT_VARIABLES, HOST, LOCAL_ENVIRONMENT, free_port, stop_logged_process

HEALTH_PATH = "/_ministack/health"
RESET_PATH = "/_ministack/reset"
# the checkout this package is installed from (editable install): <root>/dev/accrual_dev/local/ministack.py
_CHECKOUT = Path(__file__).resolve().parents[3]


def ministack_executable() -> str:
    """MINISTACK_BIN, else the checkout's .tools/ministack, else `ministack` on PATH; a clear error otherwise."""
    candidates = [
        os.environ.get("MINISTACK_BIN"),
        str(_CHECKOUT / ".tools" / "ministack" / "bin" / "ministack"),
        shutil.which("ministack"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "ministack is not installed: run `make ministack` (it builds .tools/ministack) or set MINISTACK_BIN"
    )


def available() -> bool:
    try:
        ministack_executable()
    except FileNotFoundError:
        return False
    return True


class MinistackServer:
    """ministack as a child process; `with MinistackServer() as server:` starts it and stops it."""

    name = "ministack"

    def __init__(
        self,
        host: str = HOST,
        port: int | None = None,
        startup_timeout: float = 30.0,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.environment = environment or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._bound_port: int | None = None

    @property
    def url(self) -> str:
        if self._process is None or self._bound_port is None:
            raise RuntimeError("the ministack server is not started")
        return f"http://{self.host}:{self._bound_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pids(self) -> dict[str, int | None]:
        return {"ministack": self.pid}

    @property
    def endpoints(self) -> dict[str, str]:
        """The endpoint variables that point boto3 at this server (every service)."""
        return {"AWS_ENDPOINT_URL": self.url}

    def start(self) -> str:
        """Start the server and return its URL once its health endpoint answers."""
        if self._process is not None:
            return self.url
        executable = ministack_executable()
        # A probed port can be taken before ministack binds it: a few fresh ones are tried before giving up.
        attempts = 1 if self.port is not None else 5
        last_error = ""
        for _ in range(attempts):
            port = self.port if self.port is not None else free_port(self.host)
            if self._launch(executable, port):
                return self.url
            last_error = self._stop_process()
        raise RuntimeError(f"ministack did not start on {self.host}: {last_error.strip()[-2000:]}")

    def stop(self) -> None:
        self._stop_process()

    def reset(self) -> None:
        """Empty every service (POST /_ministack/reset)."""
        request = urllib.request.Request(f"{self.url}{RESET_PATH}", method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}{HEALTH_PATH}", timeout=5) as answer:
            return json.loads(answer.read() or b"{}")

    def __enter__(self) -> MinistackServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _launch(self, executable: str, port: int) -> bool:
        environment = {
            **os.environ,
            **LOCAL_ENVIRONMENT,
            "GATEWAY_PORT": str(port),
            "BIND_HOST": self.host,
            # nothing kept between runs, no Docker: every start is an empty emulator
            "PERSIST_STATE": "0",
            "LOG_LEVEL": "WARNING",
            **self.environment,
        }
        for name in (*ENDPOINT_VARIABLES, "VIRTUAL_ENV", "PYTHONPATH"):
            environment.pop(name, None)
        # its log goes to a file, never to a pipe nobody drains (a full pipe would block the server)
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [executable],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
            cwd=tempfile.gettempdir(),
        )
        self._bound_port = port
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self._bound_port}{HEALTH_PATH}", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False

    def _stop_process(self) -> str:
        """Stop the process (if any) and return what it logged."""
        process, self._process = self._process, None
        log, self._log = self._log, None
        return stop_logged_process(process, log)
