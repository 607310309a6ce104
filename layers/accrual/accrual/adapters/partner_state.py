"""Partner pull state on the control table: the cursor per partner and the quarantined lines.

- Cursor: pk `CURSOR`, sk `<partner>`. `last_window_end` is where the last completed pull ended (the next run starts
  an overlap before it); while a window is being read, `window_start`/`window_end` and the paging position after the
  last reconciled page are kept, so a failed run resumes there. A `VersionAttribute` makes two concurrent runs of one
  partner fail instead of overwriting each other's progress.
- Quarantine: pk `QUARANTINE#<partner>`, sk `<source>#<position>` (source = the archived page's key), with the
  reason, the run and the time, and the raw line bounded: its first RAW_PREFIX_CHARS characters, its length in bytes
  and its sha256. The whole raw line is in the S3 quarantine object the record names (`raw_key`), so a 450 KB line
  (over DynamoDB's 400 KB item limit) is quarantined like any other. A rerun of the same page overwrites the same
  records. A line replayed and accepted (`accrual quarantine replay`) keeps its record, marked `replayed_at`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute, VersionAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from accrual.adapters.pynamo import bind_model, segmented_scan
from accrual.domain.models import MAX_REASON_CHARS
from accrual.partners.http import PagePosition
from accrual.partners.report import QuarantinedLine
from accrual.ports.reports import Cursor, StoredQuarantine
from accrual.settings import Settings

CURSOR_PK = "CURSOR"
# What a quarantine record keeps of the raw line: enough to read it in the console; the rest is in S3.
RAW_PREFIX_CHARS = 2000
# A source (an S3 key, up to 1,024 bytes) longer than this is named in the sort key by its hash (keys: 1,024 bytes).
MAX_SOURCE_KEY_BYTES = 900


def quarantine_pk(partner: str) -> str:
    return f"QUARANTINE#{partner}"


class PartnerCursorRecord(Model):
    class Meta:
        table_name = "control"

    pk = UnicodeAttribute(hash_key=True, default=CURSOR_PK)
    sk = UnicodeAttribute(range_key=True)  # the partner
    last_window_end = UTCDateTimeAttribute(null=True)
    window_start = UTCDateTimeAttribute(null=True)
    window_end = UTCDateTimeAttribute(null=True)
    stage = UnicodeAttribute(null=True)
    position = UnicodeAttribute(null=True)
    page_no = NumberAttribute(null=True)
    last_index_id = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    version = VersionAttribute()


class QuarantineRecord(Model):
    class Meta:
        table_name = "control"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    partner = UnicodeAttribute()
    source = UnicodeAttribute()
    position = NumberAttribute()
    reason = UnicodeAttribute()
    raw = UnicodeAttribute()  # the first RAW_PREFIX_CHARS characters of the raw line
    raw_bytes = NumberAttribute(null=True)  # the whole raw line's length in bytes
    raw_sha256 = UnicodeAttribute(null=True)
    raw_key = UnicodeAttribute(null=True)  # the S3 quarantine object holding the whole raw line
    run_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    replayed_at = UTCDateTimeAttribute(null=True)  # replayed and accepted: no longer waiting
    replay_run = UnicodeAttribute(null=True)


class DynamoPartnerState:
    """Cursor and quarantine records of the stack's control table (the port `accrual.ports.PartnerState`)."""

    def __init__(self, settings: Settings):
        for model in (PartnerCursorRecord, QuarantineRecord):
            bind_model(model, settings.control_table, settings)
        self._records: dict[str, PartnerCursorRecord] = {}

    def cursor(self, partner: str) -> Cursor:
        try:
            record = PartnerCursorRecord.get(CURSOR_PK, partner, consistent_read=True)
        except DoesNotExist:
            record = PartnerCursorRecord(CURSOR_PK, partner)
        self._records[partner] = record
        resume = None
        if record.window_start is not None and record.stage is not None:
            resume = PagePosition(record.stage, record.position, int(record.page_no or 1))
        return Cursor(partner, record.last_window_end, record.window_start, record.window_end, resume)

    def page_done(
        self, partner: str, window_start: datetime, window_end: datetime, after: PagePosition, now: datetime
    ) -> None:
        """Record the position after a reconciled page; a finished window moves `last_window_end` instead."""
        record = self._record(partner)
        if after.stage is None:
            record.last_window_end = window_end
            record.window_start = record.window_end = None
            record.stage = record.position = record.last_index_id = None
            record.page_no = None
        else:
            record.window_start, record.window_end = window_start, window_end
            record.stage, record.position, record.page_no = after.stage, after.position, after.page_no
            record.last_index_id = after.position
        record.updated_at = now
        record.save()

    def _record(self, partner: str) -> PartnerCursorRecord:
        if partner not in self._records:
            self.cursor(partner)
        return self._records[partner]

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
        """One bounded record per quarantined line; `raw_key` names the S3 object with the whole raw lines."""
        written = 0
        with QuarantineRecord.batch_write() as batch:
            for line in lines:
                raw = raw_bytes(line.raw)
                batch.save(
                    QuarantineRecord(
                        quarantine_pk(partner),
                        f"{source_ref(source)}#{line.position:06d}",
                        partner=partner,
                        source=source,
                        position=line.position,
                        reason=valid_text(line.reason)[:MAX_REASON_CHARS],
                        raw=valid_text(line.raw[:RAW_PREFIX_CHARS]),
                        raw_bytes=len(raw),
                        raw_sha256=hashlib.sha256(raw).hexdigest(),
                        raw_key=raw_key,
                        run_id=run_id,
                        at=now,
                    )
                )
                written += 1
        return written

    def quarantined(self, partner: str) -> Iterator[StoredQuarantine]:
        return map(_stored, QuarantineRecord.query(quarantine_pk(partner)))

    def every_quarantined(self, partner: str | None = None) -> Iterator[StoredQuarantine]:
        if partner is not None:
            return self.quarantined(partner)
        return map(_stored, segmented_scan(QuarantineRecord, QuarantineRecord.pk.startswith(quarantine_pk(""))))

    def replayed(self, entry: StoredQuarantine, *, run_id: str, now: datetime) -> None:
        QuarantineRecord(quarantine_pk(entry.partner), entry.ref).update(
            actions=[QuarantineRecord.replayed_at.set(now), QuarantineRecord.replay_run.set(run_id)]
        )

    def still_quarantined(self, entry: StoredQuarantine, reason: str) -> None:
        QuarantineRecord(quarantine_pk(entry.partner), entry.ref).update(
            actions=[QuarantineRecord.reason.set(valid_text(reason)[:MAX_REASON_CHARS])]
        )


def _stored(record: QuarantineRecord) -> StoredQuarantine:
    return StoredQuarantine(
        record.partner,
        record.sk,
        record.source,
        int(record.position),
        record.reason,
        record.raw,
        None if record.raw_bytes is None else int(record.raw_bytes),
        record.raw_sha256,
        record.raw_key,
        record.run_id,
        record.at,
        record.replayed_at,
    )


def raw_bytes(raw: str) -> bytes:
    """The raw line's bytes: undecodable bytes, read as lone surrogates, turn back into the bytes the partner sent."""
    try:
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate written as a JSON escape: no bytes of its own to restore
        return raw.encode("utf-8", "backslashreplace")


def valid_text(text: str) -> str:
    """Text DynamoDB accepts (valid UTF-8): a lone surrogate is written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def source_ref(source: str) -> str:
    """The source as the sort key names it: itself, or its hash when it would not fit a key with the position."""
    if len(source.encode("utf-8", "backslashreplace")) <= MAX_SOURCE_KEY_BYTES:
        return source
    return "sha256:" + hashlib.sha256(source.encode("utf-8", "backslashreplace")).hexdigest()
