"""The local stack brought up for `sam local invoke` holds the S3 objects the events in events/ name, so each event
works as written (the reconcile event's archived page, the drop event's file in the bucket it names)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import unquote_plus

import boto3

from accrual_dev.samlocal.check import upload_event_objects

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _keys(s3, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_every_object_an_event_names_is_in_the_bucket_it_is_read_from(aws_endpoint: str) -> None:
    s3 = boto3.client("s3")
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)

    upload_event_objects(s3, bucket, EVENTS)

    reconcile = json.loads((EVENTS / "reconcile.json").read_text())
    pages = [json.loads(record["body"])["key"] for record in reconcile["Records"]]
    assert [key for key in pages if key] and {key for key in pages if key} <= _keys(s3, bucket)
    drop = json.loads((EVENTS / "report_drop.json").read_text())["Records"][0]["s3"]
    dropped_in = drop["bucket"]["name"]
    assert unquote_plus(drop["object"]["key"]) in _keys(s3, dropped_in)
    # in the stack's own bucket a drop would be a new drop, handed on by the bucket's notification
    assert not {key for key in _keys(s3, bucket) if key.startswith("drops/")}
    assert s3.get_object(Bucket=bucket, Key=pages[0])["Body"].read() == (EVENTS / "objects" / pages[0]).read_bytes()
