"""PynamoDB plumbing shared by every DynamoDB adapter: exact Decimal money, and binding a model to the table of the
current stack (names are known only at run time: they carry the stack's name)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER
from pynamodb.models import Model

from accrual.settings import Settings


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read and written as Decimal. PynamoDB's NumberAttribute goes through float (its issue
    #551), which would lose cents; this keeps the exact text both ways, also in ADD/SET update expressions."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be Decimal, got {type(value).__name__}: {value!r}")
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


def bind_model(model: type[Model], table_name: str, settings: Settings) -> None:
    """Point a model at `table_name` on the configured DynamoDB endpoint (AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL
    locally, AWS when deployed)."""
    meta = model.Meta
    if (getattr(meta, "table_name", None), getattr(meta, "host", None), getattr(meta, "region", None)) == (
        table_name,
        settings.dynamodb_host,
        settings.region,
    ):
        return
    meta.table_name = table_name
    meta.host = settings.dynamodb_host
    meta.region = settings.region
    meta.max_retry_attempts = 8
    model._connection = None  # the cached connection belongs to the previous table


# A whole-table read goes as a segmented scan: DynamoDB reads the segments independently (its documented way to read a
# large table), and DynamoDB Local's cost per page grows with how far into its segment the page starts, so one
# segment costs the square of the table (a 200,000-item scan took 84 s serially, 10 s in 8 segments, 3 s in 32). The
# segments are read one after another: the items come in no particular order, as with any scan. The test suite,
# whose tables hold a few items, sets fewer (ACCRUAL_SCAN_SEGMENTS): each segment is a call even when empty.
SCAN_SEGMENTS = 16


def scan_segments() -> int:
    return int(os.environ.get("ACCRUAL_SCAN_SEGMENTS") or SCAN_SEGMENTS)


# The month's books scan the whole orders table (orders and journal entries, several items an order): more segments
# keep each segment's pages cheap on DynamoDB Local (above). The test suite's setting applies here too.
MONTH_SCAN_SEGMENTS = 64


def month_scan_segments() -> int:
    return int(os.environ.get("ACCRUAL_SCAN_SEGMENTS") or MONTH_SCAN_SEGMENTS)


def segmented_scan[M: Model](model: type[M], condition: Any = None, **kwargs: Any) -> Iterator[M]:
    """Every item of `model`'s table matching `condition`, a segment at a time (PynamoDB's `Model.scan`)."""
    total = scan_segments()
    for segment in range(total):
        yield from model.scan(condition, segment=segment, total_segments=total, **kwargs)


def segmented_pages(
    client: Any, *, segments: int | None = None, part: tuple[int, int] | None = None, **request: Any
) -> Iterator[dict[str, Any]]:
    """The pages of a low-level `Scan` request, a segment at a time (see `segmented_scan`): `segments` of them
    (`scan_segments()` unless given); `part` (k, n): only the k-th of n shares of the segments, for n readers that
    together read the table once. A partition's items all come in one segment, in sort-key order."""
    paginator = client.get_paginator("scan")
    total = segments or scan_segments()
    for segment in range(total) if part is None else range(part[0], total, part[1]):
        yield from paginator.paginate(**request, Segment=segment, TotalSegments=total)
