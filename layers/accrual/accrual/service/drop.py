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
from dataclasses import replace
from datetime import datetime
from typing import Any

from accrual.adapters.partner_config import drop_options, partner_options
from accrual.adapters.partner_state import PartnerState
from accrual.adapters.report_archive import ReportArchive
from accrual.partners import API_PARTNERS, read_report
from accrual.service.pull import Reconcile
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


def ingest_drop(bucket: str, key: str, *, settings: Settings, now: datetime, reconcile: Reconcile | None = None,
                run_id: str | None = None) -> dict[str, Any]:
    partner = drop_partner(key)
    run_id = run_id or uuid.uuid4().hex
    if reconcile is None:
        from accrual.service.ledger import Ledger

        ledger = Ledger(settings)

        def reconcile(lines):
            return ledger.reconcile(lines, now=now)

    archive = ReportArchive(settings)
    data = archive.get(key, bucket=bucket)
    report_format = drop_format(partner, key)
    if report_format == "csv":
        options = replace(drop_options(settings, partner), partner=partner)
    elif report_format == "normalized":
        options = None
    else:
        options = partner_options(settings, partner)
    report = read_report(data, report_format, source=key, options=options)
    if report.quarantined:
        PartnerState(settings).quarantine(partner, key, report.quarantined, run_id=run_id, now=now)
        archive.put_quarantine(key, report.quarantined, run_id=run_id)
    reconciled = dict(reconcile(report.lines)) if report.lines else {}
    return {"partner": partner, "source": f"s3://{bucket}/{key}", "format": report_format, "run_id": run_id,
            **report.counts, "reconciled": reconciled}
