"""The ports of the fan-out: the queue that carries units of work to the reconcile workers, and the log of what
became of each unit: why one failed (for the operator reading the dead-letter queue) and, per run, which units are
done and what they did (for the command that handed them on and waits for its own)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class QueuedMessage:
    """A message as received: its id, its body, the handle to delete or release it with, and how often it was
    received (the dead-letter queue takes it after a few)."""

    message_id: str
    body: str
    receipt_handle: str
    receives: int = 1
    sent_at_ms: int = 0


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int


class WorkQueue(Protocol):
    def send(self, bodies: Iterable[str]) -> int:
        """Send message bodies; returns when the queue holds them all (a refused one raises)."""

    def receive(
        self, *, limit: int = 10, wait_seconds: int = 0, visibility_timeout: int | None = None
    ) -> list[QueuedMessage]: ...
    def delete(self, receipt_handles: Iterable[str]) -> None: ...
    def release(self, receipt_handles: Iterable[str]) -> None:
        """Make received messages visible again at once."""

    def depth(self) -> QueueDepth: ...
    def hide(self, receipt_handles: Iterable[str], seconds: int) -> None:
        """Keep received messages invisible this long (a unit another command owns, left for it)."""


@dataclass(frozen=True)
class UnitFailure:
    reason: str
    at: str  # when, and on which receive


@dataclass(frozen=True)
class UnitOutcome:
    """What became of one unit of a run: done, with what it did (JSON), or failed on a receive, with why."""

    unit: str  # the unit's name within its run
    done: bool
    detail: str
    receives: int = 1


class UnitLog(Protocol):
    def record(self, message_id: str, unit_text: str, reason: str, *, receives: int) -> None:
        """Keep the last reason a message failed, under its id (the dead-letter queue keeps the message)."""

    def reason(self, message_id: str) -> UnitFailure | None: ...
    def record_outcome(self, run_id: str, outcome: UnitOutcome) -> None:
        """What became of a unit of the run (the last word on it: a repeated unit overwrites its outcome)."""

    def outcomes(self, run_id: str) -> list[UnitOutcome]: ...
