"""A partner report dropped as a file under `drops/<partner>/...` in the reports bucket, ingested through the same
adapters as the API pages.

The file's format follows its name: `.jsonl` is the normalised format, `.json` under an API partner
(`drops/aliexpress/`, `drops/admitad/`) is a saved API response page, anything else is CSV. A CSV's column map is the
optional SSM parameter `<partner parameters prefix><partner>/columns` (JSON of PartnerOptions: `columns`, `statuses`,
`delimiter`, `timezone`, `usd_rates`); without it the headers are the normalised field names. The key is taken as
given (an S3 event's URL-encoded key is decoded by the handler).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from accrual.partners import API_PARTNERS
from accrual.service.ingest import IngestStep, LedgerSink, PageResult

DROPS_PREFIX = "drops/"


def drop_partner(key: str) -> str:
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != DROPS_PREFIX.rstrip("/") or not parts[1] or not parts[-1]:
        raise ValueError(f"{key!r} is not a drop: expected drops/<partner>/<file>")
    return parts[1]


def drop_format(partner: str, key: str) -> str:
    name = key.lower()
    if name.endswith(".jsonl"):
        return "normalized"
    if name.endswith(".json") and partner in API_PARTNERS:
        return partner
    return "csv"


def ingest_drop(
    bucket: str, key: str, *, ingest: IngestStep, sink: LedgerSink, now: datetime, run_id: str | None = None
) -> PageResult:
    """Ingest one dropped object in one go (already in the bucket: the drop is its own archive); its partner is the
    folder under `drops/`."""
    partner = drop_partner(key)
    data = ingest.archive.get(key, bucket=bucket)
    return ingest.page(
        data,
        drop_format(partner, key),
        partner=partner,
        source=key,
        sink=sink,
        now=now,
        run_id=run_id or uuid.uuid4().hex,
    )
