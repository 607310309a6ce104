"""`sam local invoke` for real on this machine: a Docker daemon, the Lambda base image for python3.12 and this
machine's architecture (the official one, or a stand-in built from Debian packages where it cannot be pulled), the
functions built for that architecture in a build of their own, and an `--env-vars` file that points them at the local
stack. `python -m accrual_dev.samlocal --help` lists the commands (`make sam-local`, `make test-sam-local`).
"""

from __future__ import annotations

from pathlib import Path


def repository_root() -> Path:
    """The checkout this package is installed from (dev/accrual_dev/samlocal -> the repository)."""
    return Path(__file__).resolve().parents[3]


def local_dir() -> Path:
    """Where the local build, the env-vars file and the daemon's log go (ignored by git, with .aws-sam)."""
    return repository_root() / ".aws-sam" / "local"


class SetupError(Exception):
    """A step that cannot be done here; its message is the one line that says why."""
