"""In-memory fakes of the ports the way in and the fan-out use (the report archive, the partner state and directory,
the work queue, the unit failure log, the notifications topic), held to their adapters' behaviour by
tests/integration/test_store_agreement.py."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from accrual.adapters.partner_state import RAW_PREFIX_CHARS, raw_bytes, source_ref
from accrual.adapters.report_archive import quarantine_key, raw_key
from accrual.domain.models import MAX_REASON_CHARS
from accrual.partners import PartnerOptions, QuarantinedLine
from accrual.partners.http import PagePosition
from accrual.ports import Cursor, QueueDepth, QueuedMessage, StoredQuarantine, UnitFailure, UnitOutcome
from accrual.ports.notify import PUBLISH_BATCH


class FakeArchive:
    def __init__(self, bucket: str = "reports") -> None:
        self.bucket = bucket
        self.objects: dict[tuple[str, str], bytes] = {}
        self.content_types: dict[str, str] = {}

    def put_raw(self, partner: str, window_start: datetime, page_key: str, raw: bytes) -> str:
        return self.put_object(raw_key(partner, window_start, page_key), raw)

    def put_file(self, partner: str, window_start: datetime, page_key: str, path: Path, content_type: str) -> str:
        key = self.put_raw(partner, window_start, page_key, path.read_bytes())
        self.content_types[key] = content_type
        return key

    def put_quarantine(
        self, source_key: str, lines: Sequence[QuarantinedLine], *, run_id: str, partner: str = "other"
    ) -> str:
        body = {"source": source_key, "run_id": run_id, "lines": [asdict(line) for line in lines]}
        return self.put_object(
            quarantine_key(source_key, partner), json.dumps(body).encode("utf-8", "backslashreplace")
        )

    def put_object(self, key: str, data: bytes) -> str:
        self.objects[(self.bucket, key)] = data
        return key

    def get(self, key: str, bucket: str | None = None) -> bytes:
        return self.objects[(bucket or self.bucket, key)]

    def head(self, key: str, size: int) -> bytes:
        return self.get(key)[:size]

    def content_type(self, key: str) -> str:
        # as archived: a CSV is put as text/csv by the streamed ingest, every other object as JSON
        return self.content_types.get(key, "application/json")


class FakePartnerState:
    def __init__(self) -> None:
        self.cursors: dict[str, Cursor] = {}
        self.records: dict[tuple[str, str], StoredQuarantine] = {}

    def cursor(self, partner: str) -> Cursor:
        return self.cursors.get(partner, Cursor(partner))

    def page_done(
        self, partner: str, window_start: datetime, window_end: datetime, after: PagePosition, now: datetime
    ) -> None:
        if after.stage is None:
            self.cursors[partner] = Cursor(partner, last_window_end=window_end)
        else:
            last = self.cursor(partner).last_window_end
            self.cursors[partner] = Cursor(partner, last, window_start, window_end, after)

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
        written = 0
        for line in lines:
            raw = raw_bytes(line.raw)
            ref = f"{source_ref(source)}#{line.position:06d}"
            self.records[(partner, ref)] = StoredQuarantine(
                partner,
                ref,
                source,
                line.position,
                line.reason[:MAX_REASON_CHARS],
                line.raw[:RAW_PREFIX_CHARS],
                len(raw),
                hashlib.sha256(raw).hexdigest(),
                raw_key,
                run_id,
                now,
            )
            written += 1
        return written

    def quarantined(self, partner: str) -> Iterator[StoredQuarantine]:
        for (owner, _), record in sorted(self.records.items()):
            if owner == partner:
                yield record

    def every_quarantined(self, partner: str | None = None) -> Iterator[StoredQuarantine]:
        return iter([record for (owner, _), record in sorted(self.records.items()) if partner in (None, owner)])

    def replayed(self, entry: StoredQuarantine, *, run_id: str, now: datetime) -> None:
        self.records[(entry.partner, entry.ref)] = replace(self.records[(entry.partner, entry.ref)], replayed_at=now)

    def still_quarantined(self, entry: StoredQuarantine, reason: str) -> None:
        stored = self.records[(entry.partner, entry.ref)]
        self.records[(entry.partner, entry.ref)] = replace(stored, reason=reason[:MAX_REASON_CHARS])


@dataclass
class FakePartnerDirectory:
    options_by_partner: dict[str, PartnerOptions] = field(default_factory=dict)
    columns_by_partner: dict[str, PartnerOptions] = field(default_factory=dict)
    credentials_by_partner: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    parameters_prefix: str = "/accrual/partners/"

    def options(self, partner: str) -> PartnerOptions:
        return self.options_by_partner.get(partner, PartnerOptions())

    def drop_options(self, partner: str) -> PartnerOptions:
        return self.columns_by_partner.get(partner, PartnerOptions())

    def credentials(self, partner: str) -> dict[str, Any]:
        if partner not in self.credentials_by_partner:
            raise RuntimeError(f"partner credentials secret {partner!r} is missing or unreadable")
        return self.credentials_by_partner[partner]

    def endpoint(self, partner: str) -> str:
        if partner not in self.endpoints:
            raise RuntimeError(f"partner endpoint parameter {partner!r} is missing")
        return self.endpoints[partner]

    def column_map_name(self, partner: str) -> str:
        return f"{self.parameters_prefix}{partner}/columns"


class FakeWorkQueue:
    """A queue whose received messages stay invisible until deleted or released (no timeout passes here)."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}  # id -> body, in sending order
        self.receives: dict[str, int] = {}
        self.in_flight: dict[str, str] = {}  # receipt handle -> id
        self._ids = itertools.count(1)

    def send(self, bodies: Iterable[str]) -> int:
        sent = 0
        for body in bodies:
            self.messages[f"m{next(self._ids)}"] = body
            sent += 1
        return sent

    def receive(
        self, *, limit: int = 10, wait_seconds: int = 0, visibility_timeout: int | None = None
    ) -> list[QueuedMessage]:
        taken = set(self.in_flight.values())
        received = []
        for message_id, body in self.messages.items():
            if message_id in taken or len(received) >= min(limit, 10):
                continue
            self.receives[message_id] = self.receives.get(message_id, 0) + 1
            handle = f"{message_id}-{self.receives[message_id]}"
            self.in_flight[handle] = message_id
            received.append(QueuedMessage(message_id, body, handle, self.receives[message_id]))
        return received

    def delete(self, receipt_handles: Iterable[str]) -> None:
        for handle in receipt_handles:
            self.messages.pop(self.in_flight.pop(handle), None)

    def release(self, receipt_handles: Iterable[str]) -> None:
        for handle in receipt_handles:
            self.in_flight.pop(handle, None)

    def depth(self) -> QueueDepth:
        return QueueDepth(len(self.messages) - len(self.in_flight), len(self.in_flight))

    def hide(self, receipt_handles: Iterable[str], seconds: int) -> None:
        pass  # received messages stay invisible here until deleted or released


class FakeUnitLog:
    def __init__(self) -> None:
        self.failures: dict[str, UnitFailure] = {}
        self.runs: dict[str, dict[str, UnitOutcome]] = {}

    def record_outcome(self, run_id: str, outcome: UnitOutcome) -> None:
        self.runs.setdefault(run_id, {})[outcome.unit] = outcome

    def outcomes(self, run_id: str) -> list[UnitOutcome]:
        return [outcome for _, outcome in sorted(self.runs.get(run_id, {}).items())]

    def record(self, message_id: str, unit_text: str, reason: str, *, receives: int) -> None:
        self.failures[message_id] = UnitFailure(reason[:1000], f"receive {receives}")

    def reason(self, message_id: str) -> UnitFailure | None:
        return self.failures.get(message_id)


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, dict[str, str]]] = []
        self.batches = 0

    def publish(self, event_id: str, body: str, attributes: dict[str, str], *, lambda_context: Any = None) -> str:
        self.published.append((event_id, body, attributes))
        return f"msg-{len(self.published)}"

    def publish_batch(self, events: Sequence[dict[str, Any]]) -> dict[str, str]:
        assert len(events) <= PUBLISH_BATCH, "SNS refuses a batch of more than ten"
        self.batches += 1
        return {
            event["event_id"]: self.publish(event["event_id"], event["body"], event["attributes"]) for event in events
        }


@dataclass
class FixedClock:
    """The clock a test sets: "now" is what the test says, until it moves it."""

    at: datetime

    def now(self) -> datetime:
        return self.at
