"""The ports of the way in: where reports are archived, where a partner's pull stands and its quarantined lines are
kept, and where a partner's options, credentials and endpoint are configured."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from accrual.partners.http import PagePosition
from accrual.partners.options import PartnerOptions
from accrual.partners.report import QuarantinedLine


class ReportArchive(Protocol):
    """The reports bucket: every raw page or file as the partner sent it, and the quarantined lines whole."""

    def put_raw(self, partner: str, window_start: datetime, page_key: str, raw: bytes) -> str:
        """Archive a pulled page (or a file read from disk) under a key of its window; returns the key."""

    def put_file(self, partner: str, window_start: datetime, page_key: str, path: Path, content_type: str) -> str:
        """Archive a file from disk as `put_raw` would, without reading it whole into memory; returns the key."""

    def put_quarantine(
        self, source_key: str, lines: Sequence[QuarantinedLine], *, run_id: str, partner: str = "other"
    ) -> str:
        """Every quarantined line of a source with its whole raw text; returns the object's key."""

    def put_object(self, key: str, data: bytes) -> str: ...
    def get(self, key: str, bucket: str | None = None) -> bytes: ...
    def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes of an archived object (a CSV's header row)."""

    def content_type(self, key: str) -> str: ...


@dataclass(frozen=True)
class Cursor:
    """A partner's pull state: where the last completed pull ended, and the window being read with the position
    after its last reconciled page (a failed run resumes there)."""

    partner: str
    last_window_end: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    resume: PagePosition | None = None


@dataclass(frozen=True)
class StoredQuarantine:
    """A quarantined line as kept: the raw line bounded (a prefix, its length and hash; the whole is in `raw_key`)."""

    partner: str
    ref: str  # names the line among the partner's: its source and position
    source: str
    position: int
    reason: str
    raw: str
    raw_bytes: int | None
    raw_sha256: str | None
    raw_key: str | None
    run_id: str
    at: datetime
    replayed_at: datetime | None = None  # replayed and accepted: no longer waiting


class PartnerState(Protocol):
    """The partners' cursors and quarantined lines."""

    def cursor(self, partner: str) -> Cursor: ...
    def page_done(
        self, partner: str, window_start: datetime, window_end: datetime, after: PagePosition, now: datetime
    ) -> None:
        """Record the position after a reconciled page; a finished window (`after.stage is None`) moves
        `last_window_end` instead."""

    def quarantine(
        self,
        partner: str,
        source: str,
        lines: Iterable[QuarantinedLine],
        *,
        run_id: str,
        now: datetime,
        raw_key: str | None = None,
    ) -> int:
        """One record per quarantined line (the same source and position again overwrites it); returns how many."""

    def quarantined(self, partner: str) -> Iterator[StoredQuarantine]: ...
    def every_quarantined(self, partner: str | None = None) -> Iterator[StoredQuarantine]:
        """One partner's quarantined lines, or every partner's."""

    def replayed(self, entry: StoredQuarantine, *, run_id: str, now: datetime) -> None:
        """A replayed line the ledger accepted: it stays, marked, and leaves the lines waiting."""

    def still_quarantined(self, entry: StoredQuarantine, reason: str) -> None:
        """A replayed line refused again: it says why now."""


class PartnerDirectory(Protocol):
    """What the stack's configuration says of a partner: its parsing options, API credentials and endpoint."""

    def options(self, partner: str) -> PartnerOptions:
        """An API partner's options (money units, rates, time zone); the defaults when none are configured."""

    def drop_options(self, partner: str) -> PartnerOptions:
        """A partner's CSV column map and parsing options; the defaults (normalised headers) when none."""

    def credentials(self, partner: str) -> dict[str, Any]:
        """The API credentials; raises RuntimeError naming what is missing."""

    def endpoint(self, partner: str) -> str:
        """The API's base URL; raises RuntimeError naming what is missing."""

    def column_map_name(self, partner: str) -> str:
        """Where a partner's CSV column map lives (what an operator sets to fix a misread file)."""
