"""A partner report dropped as a file under `drops/<partner>/...` in the reports bucket, ingested through the same
adapters as the API pages.

The file's format follows its name: `.jsonl` is the normalised format, `.json` under an API partner
(`drops/aliexpress/`, `drops/admitad/`) is a saved API response page, anything else is CSV. A CSV's column map is the
optional SSM parameter `<partner parameters prefix><partner>/columns` (JSON of PartnerOptions: `columns`, `statuses`,
`delimiter`, `timezone`, `usd_rates`); without it the headers are the normalised field names. The key is taken as
given (an S3 event's URL-encoded key is decoded by the handler).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accrual.adapters.report_archive import ReportArchive
from accrual.partners import API_PARTNERS
from accrual.service.ingest import Reconcile, ingest_report
from accrual.settings import Settings

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
    bucket: str,
    key: str,
    *,
    settings: Settings,
    now: datetime,
    reconcile: Reconcile | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Ingest one dropped object (already in the bucket: the drop is its own archive); its partner is the folder
    under `drops/`. `reconcile` defaults to the ledger's, as of `now`."""
    partner = drop_partner(key)
    archive = ReportArchive(settings)
    data = archive.get(key, bucket=bucket)
    result = ingest_report(
        data,
        drop_format(partner, key),
        partner=partner,
        source=key,
        settings=settings,
        now=now,
        reconcile=reconcile,
        run_id=run_id,
        archive=archive,
    )
    return {**result, "bucket": bucket}
