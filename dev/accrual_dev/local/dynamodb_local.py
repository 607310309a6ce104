"""The third local AWS emulator: AWS's own DynamoDB Local for DynamoDB (and its streams), moto for every other service.

DynamoDB Local is a Java program (`make dynamodb-local` fetches it into `.tools/dynamodb-local` from a pinned,
checksummed package, with Java from Debian when missing). It runs in memory on a free loopback port beside a moto
server; boto3's per-service endpoint variables send DynamoDB and DynamoDB Streams there and everything else to moto:

    with DynamoDBLocalStack() as emulator:
        os.environ.update(emulator.endpoints)  # AWS_ENDPOINT_URL (moto), AWS_ENDPOINT_URL_DYNAMODB(_STREAMS)

The provisioner creates the template's tables on DynamoDB Local (`provision.py`).

Its tables live in memory by default (a test session's few items). DYNAMODB_LOCAL_STORAGE=disk keeps them in a SQLite
file in a temporary folder, removed when the server stops: `make local` and the day bench use it, because in memory
the tables grow the process by about 20 KB an order (a 100,000-order day would take about 2 GB), on disk its memory
stays flat. On disk it runs under libeatmydata when the machine has it (`make dynamodb-local` installs it from Debian,
as it does Java): SQLite's syncs to disk then return at once. The file is a temporary one removed when the server
stops, so nothing is lost that would have been kept, and the syncs were most of what disk cost (measured: 1.3 ms of
the server's CPU a conditional put with them, 0.75 without; a batch write of 25, 0.64 ms an item against 0.21).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO

from accrual_dev.local.server import ENDPOINT_VARIABLES, HOST, MotoServer, free_port, stop_logged_process

# the checkout this package is installed from (editable install): <root>/dev/accrual_dev/local/dynamodb_local.py
_CHECKOUT = Path(__file__).resolve().parents[3]
# A quick start matters more than peak speed for an emulator started per test session: the client compiler only and
# the serial collector halved its start on a busy 2-core machine (27 s to 11 s); the heap is capped so that the
# local AWS stays within its memory budget.
JAVA_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx1g")
# Tables on disk are for a long-lived stack (`make local`, the day bench): there the full compiler pays for itself
# after its first minute (measured over 25,000 writes each, after a warm-up: a conditional put 0.56 ms of the server's
# CPU against 0.76 with the client compiler only, a transaction of 25 puts 0.31 ms an item against 0.40).
JAVA_OPTIONS_LONG_LIVED = ("-XX:+UseSerialGC", "-Xmx512m")
STORAGES = ("memory", "disk")
NO_SYNC_LIBRARIES = ("/usr/lib/*/libeatmydata.so*", "/usr/lib/libeatmydata.so*", "/usr/local/lib/libeatmydata.so*")


def no_sync_library() -> str | None:
    """libeatmydata, whose fsync and friends return at once, when the machine has it."""
    for pattern in NO_SYNC_LIBRARIES:
        for found in sorted(glob.glob(pattern)):
            return found
    return None


def dynamodb_local_home() -> Path:
    """DYNAMODB_LOCAL_HOME, else the checkout's .tools/dynamodb-local; a clear error when the jar is not there."""
    home = Path(os.environ.get("DYNAMODB_LOCAL_HOME") or _CHECKOUT / ".tools" / "dynamodb-local")
    if not (home / "DynamoDBLocal.jar").is_file():
        raise FileNotFoundError(
            f"DynamoDB Local is not installed in {home}: run `make dynamodb-local` or set DYNAMODB_LOCAL_HOME"
        )
    return home


def available() -> bool:
    try:
        dynamodb_local_home()
    except FileNotFoundError:
        return False
    return shutil.which("java") is not None


class DynamoDBLocalServer:
    """DynamoDB Local as a child process; `with DynamoDBLocalServer() as server:` starts it and stops it."""

    name = "dynamodb-local"

    def __init__(
        self,
        host: str = HOST,
        port: int | None = None,
        startup_timeout: float = 120.0,
        java_options: tuple[str, ...] | None = None,
        storage: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        # DYNAMODB_LOCAL_JAVA_OPTIONS (space-separated) replaces the defaults, e.g. for a long benchmark
        configured = os.environ.get("DYNAMODB_LOCAL_JAVA_OPTIONS")
        self.storage = (storage or os.environ.get("DYNAMODB_LOCAL_STORAGE") or "memory").strip().lower()
        if self.storage not in STORAGES:
            raise ValueError(f"DYNAMODB_LOCAL_STORAGE={self.storage!r}: expected one of {', '.join(STORAGES)}")
        default = JAVA_OPTIONS_LONG_LIVED if self.storage == "disk" else JAVA_OPTIONS
        self.java_options = java_options or (tuple(configured.split()) if configured else default)
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._bound_port: int | None = None

    @property
    def url(self) -> str:
        if self._process is None or self._bound_port is None:
            raise RuntimeError("DynamoDB Local is not started")
        return f"http://{self.host}:{self._bound_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> str:
        """Start DynamoDB Local and return its URL once it answers HTTP."""
        if self._process is not None:
            return self.url
        home = dynamodb_local_home()
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("java is not on PATH: run `make dynamodb-local` (it installs Java when missing)")
        attempts = 1 if self.port is not None else 5
        last_error = ""
        for _ in range(attempts):
            port = self.port if self.port is not None else free_port(self.host)
            if self._launch(java, home, port):
                return self.url
            last_error = self._stop_process()
        raise RuntimeError(f"DynamoDB Local did not start on {self.host}: {last_error.strip()[-2000:]}")

    def stop(self) -> None:
        self._stop_process()

    def __enter__(self) -> DynamoDBLocalServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _launch(self, java: str, home: Path, port: int) -> bool:
        environment = {name: value for name, value in os.environ.items() if name not in ENDPOINT_VARIABLES}
        self._log = tempfile.TemporaryFile()
        if self.storage == "disk":
            self._folder = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
            storage = ["-dbPath", self._folder.name]
            if (library := no_sync_library()) is not None:
                environment["LD_PRELOAD"] = " ".join(filter(None, (environment.get("LD_PRELOAD"), library)))
        else:
            storage = ["-inMemory"]
        self._process = subprocess.Popen(
            [
                java,
                *self.java_options,
                f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
                "-jar",
                str(home / "DynamoDBLocal.jar"),
                *storage,
                # one database whatever the credentials and region of a request (SAM's containers, a test's shell)
                "-sharedDb",
                # DynamoDB Local has no option to choose its interface: it listens on every one, on a fresh port
                "-port",
                str(port),
                "-disableTelemetry",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
            cwd=home,
        )
        self._bound_port = port
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                urllib.request.urlopen(f"http://{self.host}:{self._bound_port}/", timeout=2).close()
                return True
            except urllib.error.HTTPError:
                return True  # an unsigned request is refused (400): the server is answering
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False

    def _stop_process(self) -> str:
        """Stop the process (if any) and return what it logged."""
        process, self._process = self._process, None
        log, self._log = self._log, None
        folder, self._folder = self._folder, None
        try:
            return stop_logged_process(process, log)
        finally:
            if folder is not None:
                folder.cleanup()


class DynamoDBLocalStack:
    """DynamoDB Local for DynamoDB and its streams, a moto server for the rest; the same shape as `MotoServer`
    (`url` is moto's, the endpoint of every service but DynamoDB), plus `dynamodb_url` and both processes' ids."""

    name = "dynamodb-local"

    def __init__(self, host: str = HOST) -> None:
        self.moto = MotoServer(host=host)
        self.dynamodb = DynamoDBLocalServer(host=host)

    @property
    def url(self) -> str:
        return self.moto.url

    @property
    def dynamodb_url(self) -> str:
        return self.dynamodb.url

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.url,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.dynamodb.url,
        }

    @property
    def pids(self) -> dict[str, int | None]:
        return {"moto": self.moto.pid, "dynamodb-local": self.dynamodb.pid}

    def start(self) -> str:
        """Start both, side by side (the JVM's start is the longer), and return moto's URL."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            dynamodb = pool.submit(self.dynamodb.start)
            try:
                self.moto.start()
                dynamodb.result()
            except BaseException:
                self.stop()
                raise
        return self.url

    def stop(self) -> None:
        try:
            self.moto.stop()
        finally:
            self.dynamodb.stop()

    def __enter__(self) -> DynamoDBLocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
