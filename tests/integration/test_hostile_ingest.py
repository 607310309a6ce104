"""Hostile lines through the ingest service and the scheduled pull on the local stack: the good lines beside them
are reconciled by the real ledger, the bad ones are quarantined with bounded records (the whole raw line in S3), the
counts hold, and the pull's cursor moves past the page."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from accrual.adapters.partner_state import RAW_PREFIX_CHARS
from accrual.adapters.partner_state import DynamoPartnerState as PartnerState
from accrual.partners import PartnerOptions
from accrual.partners.http import FetchedPage, PagePosition
from support.ledger import T0, balance_of, load_reference_data
from support.services import ingest_report, pull_partner

BIG = "x" * 450_000
DEEP = "[" * 100_000 + "]" * 100_000


def normalized(line_id: str, **changes) -> dict:
    line = {
        "partner": "aliexpress",
        "line_id": line_id,
        "order_id": f"order-{line_id}",
        "sub_id": "c-alice",
        "status": "paid",
        "status_at": T0.isoformat(),
        "ordered_at": T0.isoformat(),
        "amount": "100.00",
        "shipping": "0",
        "currency": "USD",
        "commission": "1.00",
        "category_id": "tools",
    }
    line.update(changes)
    return line


def test_good_lines_beside_hostile_ones_are_reconciled_and_the_bad_ones_quarantined(stack):
    load_reference_data(stack)
    lines = [
        json.dumps(normalized("good-1")),
        json.dumps(normalized("big", status_detail=BIG)),
        json.dumps(normalized("long", order_id="O" * 2_100)),
        json.dumps(normalized("early", ordered_at="0001-01-01T00:00:00+14:00")),
        json.dumps(normalized("nan", currency="EUR", usd_rate="NaN")),
        json.dumps(normalized("deep", sub_id="@@")).replace('"@@"', DEEP),
        json.dumps(normalized("good-2", amount="50.00")),
    ]
    data = "\n".join(lines).encode("utf-8")
    result = ingest_report(
        data,
        "normalized",
        partner="normalized",
        source="files/hostile.jsonl",
        settings=stack,
        now=T0 + timedelta(minutes=10),
    )
    # The counts of the command hold, and the two good lines were reconciled by the ledger
    assert (result["read"], result["accepted"], result["quarantined"]) == (7, 2, 5)
    assert result["reconciled"]["lines_applied"] == 2 and result["reconciled"]["orders_changed"] == 2
    assert balance_of("alice")[0] > 0  # pending USD from the good lines' cashback
    assert all(len(reason) <= 520 for reason in result["quarantine_reasons"])
    # Every bad line has a bounded record naming the S3 object that holds its whole raw text
    records = sorted(PartnerState(stack).quarantined("normalized"), key=lambda record: record.position)
    assert [record.position for record in records] == [2, 3, 4, 5, 6]
    big = records[0]
    assert big.reason.startswith("status_detail=") and "450000" in big.reason and len(big.reason) <= 500
    assert len(big.raw) == RAW_PREFIX_CHARS and big.raw_bytes == len(lines[1].encode())
    assert big.raw_sha256 == hashlib.sha256(lines[1].encode()).hexdigest()
    assert "nested deeper than 64" in records[4].reason
    body = json.loads(stack.client("s3").get_object(Bucket=stack.reports_bucket, Key=big.raw_key)["Body"].read())
    assert [line["raw"] for line in body["lines"]] == lines[1:6]


class OnePage:
    """A partner client that answers one page: the scheduled pull's way in, without the simulator."""

    partner = "aliexpress"

    def __init__(self, raw: bytes):
        self.raw = raw

    def pages(self, start, end, resume=None):
        yield FetchedPage(raw=self.raw, page_key="hostile-0001", resume_after=PagePosition(None))


def test_the_pull_moves_its_cursor_past_a_page_with_hostile_lines(stack):
    def order(sub_order_id, **changes):
        return {
            "order_id": 8000 + sub_order_id,
            "sub_order_id": sub_order_id,
            "order_status": "Payment Completed",
            "paid_amount": 1113,
            "estimated_paid_commission": 77,
            "settled_currency": "USD",
            "custom_parameters": '{"sub_id":"c-1"}',
            "created_time": "2026-10-19 10:00:00",
            "paid_time": "2026-10-19 10:05:00",
            **changes,
        }

    orders = [
        order(1),
        order(2, paid_amount="12²"),
        order(3, paid_amount="@@"),
        order(4, product_title="@@"),
        order(5, created_time="9999-12-31 23:59:59"),
        order(6, order_id="O" * 2_100),
        order(7),
    ]
    page = json.dumps(
        {
            "aliexpress_affiliate_order_listbyindex_response": {
                "resp_result": {"resp_code": 200, "result": {"orders": {"order": orders}}}
            }
        }
    )
    page = page.replace('"paid_amount": "@@"', '"paid_amount": ' + "9" * 5_000, 1).replace('"@@"', DEEP, 1)
    received = []
    now = datetime(2026, 10, 20, tzinfo=UTC)
    counts = pull_partner(
        "aliexpress",
        now=now,
        settings=stack,
        overlap=timedelta(days=1),
        window=timedelta(days=2),
        client=OnePage(page.encode()),
        options=PartnerOptions(),
        reconcile=lambda lines: received.extend(lines) or {"lines_received": len(lines)},
    )
    assert (counts["read"], counts["accepted"], counts["quarantined"]) == (7, 2, 5)
    assert [line.line_id for line in received] == ["1", "7"]
    assert PartnerState(stack).cursor("aliexpress").last_window_end == now
    records = list(PartnerState(stack).quarantined("aliexpress"))
    assert len(records) == 5 and all(record.raw_key and record.reason for record in records)
