"""The embedded local AWS: a moto server in its own process on a free loopback port, waited for and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import IO

HOST = "127.0.0.1"
LOCAL_REGION = "us-east-1"
# moto accepts any credentials; fixed dummy ones keep a developer's real profile out of the local stack.
LOCAL_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# boto3's endpoint variables the local stacks set (DynamoDB's only with DynamoDB Local): an emulator's own process
# never inherits them
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS")


def free_port(host: str = HOST) -> int:
    """A port the kernel has just handed out on host, so that parallel runs never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class MotoServer:
    """moto's server as a child process; `with MotoServer() as server:` starts it and stops it."""

    name = "moto"

    def __init__(self, host: str = HOST, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._bound_port: int | None = None

    @property
    def url(self) -> str:
        if self._process is None or self._bound_port is None:
            raise RuntimeError("the moto server is not started")
        return f"http://{self.host}:{self._bound_port}"

    @property
    def endpoints(self) -> dict[str, str]:
        """The endpoint variables that point boto3 at this server (every service)."""
        return {"AWS_ENDPOINT_URL": self.url}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def pids(self) -> dict[str, int | None]:
        return {"moto": self.pid}

    def start(self) -> str:
        """Start the server and return its URL once GET /moto-api/ answers."""
        if self._process is not None:
            return self.url
        # A probed port can be taken before moto binds it: a few fresh ones are tried before giving up.
        attempts = 1 if self.port is not None else 5
        last_error = ""
        for _ in range(attempts):
            port = self.port if self.port is not None else free_port(self.host)
            if self._launch(port):
                return self.url
            last_error = self._stop_process()
        raise RuntimeError(f"moto server did not start on {self.host}: {last_error.strip()[-2000:]}")

    def stop(self) -> None:
        self._stop_process()

    def reset(self) -> None:
        """Empty every service (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _launch(self, port: int) -> bool:
        environment = {name: value for name, value in os.environ.items() if name not in ENDPOINT_VARIABLES}
        environment.update(LOCAL_ENVIRONMENT)
        # moto logs every request: to a file, never to a pipe nobody drains (a full pipe would block the server).
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            # moto's own server, one request at a time (moto_serial.py says why)
            [sys.executable, "-m", "accrual_dev.local.moto_serial", "-H", self.host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        self._bound_port = port
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self._bound_port}/moto-api/", timeout=2) as answer:
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


def stop_logged_process(process: subprocess.Popen[bytes] | None, log: IO[bytes] | None) -> str:
    """Stop an emulator's process (terminate, then kill after 10 s) and return what it logged; each emulator's server
    class hands over its process and log file, so a stop is written once for the three emulators."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if log is None:
        return ""
    log.seek(0)
    output = log.read().decode(errors="replace")
    log.close()
    return output
