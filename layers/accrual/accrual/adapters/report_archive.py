"""The audit trail of what the partners said: every raw API page is written to the reports bucket before it is
parsed, under `raw/<partner>/<window start>/<page key>.json`. The key depends only on the window and the page's place
in it, so a rerun of the same window overwrites the same objects instead of piling up copies. Quarantined lines of a
page go to `quarantine/<partner>/<window start>/<page key>.json`, a drop's to `quarantine/<partner>/drops/<file>.json`
and those of any other source to `quarantine/<partner>/files/<name>.json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from accrual.partners.report import QuarantinedLine
from accrual.settings import Settings


def window_label(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def raw_key(partner: str, window_start: datetime, page_key: str) -> str:
    return f"raw/{partner}/{window_label(window_start)}/{page_key}.json"


def quarantine_key(source_key: str, partner: str = "other") -> str:
    """The quarantine object that belongs to a raw page, a dropped file or a file ingested from disk."""
    parts = source_key.strip("/").split("/")
    if parts[0] == "raw":
        return "/".join(["quarantine", *parts[1:]])
    if parts[0] == "drops" and len(parts) >= 3:
        return f"quarantine/{parts[1]}/drops/{'/'.join(parts[2:])}.json"
    return f"quarantine/{partner}/files/{parts[-1]}.json"


class S3ReportArchive:
    """The reports bucket (the port `accrual.ports.ReportArchive`)."""

    def __init__(self, settings: Settings):
        if not settings.reports_bucket:
            raise RuntimeError("no reports bucket configured (REPORTS_BUCKET or the stack output ReportsBucketName)")
        self.bucket = settings.reports_bucket
        self._s3 = settings.client("s3")

    def put_raw(self, partner: str, window_start: datetime, page_key: str, raw: bytes) -> str:
        key = raw_key(partner, window_start, page_key)
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=raw, ContentType="application/json")
        return key

    def put_file(self, partner: str, window_start: datetime, page_key: str, path: Path, content_type: str) -> str:
        """A file of any size, uploaded from disk (a multipart upload for a large one) under `put_raw`'s key."""
        key = raw_key(partner, window_start, page_key)
        self._s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})
        return key

    def put_quarantine(
        self, source_key: str, lines: Sequence[QuarantinedLine], *, run_id: str, partner: str = "other"
    ) -> str:
        """Every quarantined line of a source with its whole raw text (the quarantine records keep only a prefix and
        name this object). Undecodable bytes, read as lone surrogates, are written as their JSON escapes."""
        key = quarantine_key(source_key, partner)
        body = json.dumps(
            {"source": source_key, "run_id": run_id, "lines": [asdict(line) for line in lines]},
            ensure_ascii=False,
            indent=1,
        )
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=body.encode("utf-8", "backslashreplace"), ContentType="application/json"
        )
        return key

    def put_object(self, key: str, data: bytes) -> str:
        """A part of a dropped file, archived beside the pulled pages (raw/<partner>/drops/...)."""
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def head(self, key: str, size: int) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}")["Body"].read()

    def content_type(self, key: str) -> str:
        return str(self._s3.head_object(Bucket=self.bucket, Key=key).get("ContentType", ""))

    def get(self, key: str, bucket: str | None = None) -> bytes:
        return self._s3.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()
