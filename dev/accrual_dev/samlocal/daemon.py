"""A Docker daemon for `sam local invoke`: the one already running, or `dockerd` started here (as root), installed
from Debian's `docker.io` package when the machine has none. Anything that cannot be done here is one line saying
why (SetupError)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from accrual_dev.samlocal import SetupError, local_dir

# dockerd's own pid file: one that outlived its process (a killed daemon) stops the next dockerd from starting.
DOCKERD_PIDFILE = Path("/var/run/docker.pid")
START_TIMEOUT = 60.0
# dockerd processes started by this process, so that stopping one also reaps it (no zombie left to wait for).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class Daemon:
    version: str
    started_pid: int | None = None  # set when this module started dockerd (and so may stop it)

    @property
    def started_here(self) -> bool:
        return self.started_pid is not None


def _pidfile() -> Path:
    """Where the pid of a dockerd this module started is kept, so a later command can stop that one only."""
    return local_dir() / "dockerd.pid"


def server_version(timeout: float = 15.0) -> str | None:
    """The daemon's version when one answers on the default socket (DOCKER_HOST honoured), else None."""
    if not shutil.which("docker"):
        return None
    try:
        answer = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None
    return answer.stdout.strip() or None if answer.returncode == 0 else None


def _is_root() -> bool:
    return os.geteuid() == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages as root (apt-get update first only when the plain install fails: a stale list)."""
    if not shutil.which("apt-get"):
        raise SetupError(f"{' '.join(packages)} missing and this machine has no apt-get: install it and run again")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    print(f"sam-local: installing {' '.join(packages)} (Debian packages)", flush=True)
    if subprocess.run(command, env=environment, stdin=subprocess.DEVNULL, capture_output=True).returncode:
        subprocess.run(
            ["apt-get", "update", "-q"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            check=False,
        )
        done = subprocess.run(command, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SetupError(f"apt-get install {' '.join(packages)} failed: {last}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_dockerd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except OSError:
        return False


def ensure_daemon() -> Daemon:
    """A Docker daemon that answers: the running one, else dockerd started here (installed first when missing)."""
    version = server_version()
    if version:
        return Daemon(version=version)
    if not shutil.which("dockerd"):
        if not _is_root():
            raise SetupError(
                "no Docker daemon answers and dockerd is not installed: install Docker "
                "(as root, `apt-get install docker.io` on Debian) and run again"
            )
        apt_install("docker.io")
    if not _is_root():
        raise SetupError(
            "no Docker daemon answers and starting dockerd needs root: start it (`sudo dockerd &` or "
            "`sudo systemctl start docker`), or add yourself to the docker group, and run again"
        )
    return _start_dockerd()


def _start_dockerd() -> Daemon:
    if DOCKERD_PIDFILE.exists():
        try:
            stale = int(DOCKERD_PIDFILE.read_text().strip() or 0)
        except ValueError:
            stale = 0
        if stale and _alive(stale) and _is_dockerd(stale):
            raise SetupError(
                f"dockerd (pid {stale}) is running but does not answer on its socket: stop it and run again"
            )
        DOCKERD_PIDFILE.unlink(missing_ok=True)
    log_path = local_dir() / "dockerd.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"sam-local: starting dockerd (log {log_path})", flush=True)
    with open(log_path, "ab") as log:
        # A session of its own: the daemon outlives this command (make sam-local leaves it for the user's invokes).
        process = subprocess.Popen(
            ["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SetupError(f"dockerd exited with {process.returncode}: {tail[0][-300:]}")
        version = server_version(timeout=5)
        if version:
            _pidfile().write_text(str(process.pid))
            _children[process.pid] = process
            return Daemon(version=version, started_pid=process.pid)
        time.sleep(0.5)
    process.terminate()
    raise SetupError(f"dockerd did not answer within {START_TIMEOUT:.0f} s (log {log_path})")


def stop_started_daemon(pid: int | None = None, timeout: float = 30.0) -> bool:
    """Stop the dockerd this module started (its pid, or the one recorded); True when one was stopped."""
    recorded = _pidfile()
    if pid is None and recorded.exists():
        try:
            pid = int(recorded.read_text().strip())
        except ValueError:
            pid = None
    recorded.unlink(missing_ok=True)
    if pid is None or not _alive(pid) or not _is_dockerd(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    child = _children.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
