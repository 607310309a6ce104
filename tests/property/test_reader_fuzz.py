"""A fuzzer for every partner reader: hostile report pages (wrong types, huge sizes, deep nesting, undecodable bytes,
weird numbers, bad and extreme dates, duplicated ids with other content) mixed with well-formed lines.

Whatever the page holds, the reader returns (it raises nothing but ReportFormatError, and only for a page that is not
the partner's shape at all, which these pages always are), `read == accepted + quarantined`, every quarantine reason
is non-empty and bounded, every accepted line is within the order line's limits and fits a ledger item, and every
well-formed line mixed in is accepted.

Profiles: a quick one by default (the file runs in seconds); `ACCRUAL_FUZZ=long` (`make test-fuzz`) runs 2,600
pages per reader, 10,400 in all.
"""

from __future__ import annotations

import csv
import io
import json
import os
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accrual.adapters.partner_state import raw_bytes, valid_text
from accrual.domain.currencies import ISO_4217_ACTIVE
from accrual.domain.models import (
    EARLIEST_YEAR,
    ID_FIELDS,
    LATEST_YEAR,
    MAX_AMOUNT_PLACES,
    MAX_ID_BYTES,
    MAX_LINE_AMOUNT,
    MAX_REASON_CHARS,
    MAX_TEXT_CHARS,
    MAX_USD_RATE,
    MIN_USD_RATE,
    PARTNER_SLUG,
    TEXT_FIELDS,
    OrderLine,
)
from accrual.partners import PartnerOptions, read_report

LONG = os.environ.get("ACCRUAL_FUZZ") == "long"
FUZZ = settings(
    max_examples=2_600 if LONG else 30,
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
DYNAMODB_ITEM_BYTES = 400 * 1024


class Raw:
    """JSON text put into a page as is (NaN, 1E-999999, a 5,000-digit number, nesting thousands deep)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:20]!r}...)"


BAD_BYTES = "@@BAD-BYTES@@"  # replaced by undecodable bytes once the page is bytes


def to_json(value) -> str:
    raws: list[str] = []

    def mark(item):
        if isinstance(item, Raw):
            raws.append(item.text)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(item, dict):
            return {key: mark(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [mark(inner) for inner in item]
        return item

    text = json.dumps(mark(value))
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{index}@@"', raw, 1)
    return text


def to_bytes(text: str) -> bytes:
    # lone surrogates \udc80..\udcff (from the strategies) become the undecodable bytes they stand for
    return text.encode("utf-8", "surrogateescape").replace(BAD_BYTES.encode(), b"\xff\xfe\x80")


HOSTILE_TEXT = (
    st.sampled_from(
        [
            "",
            " ",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "12\u00b2",
            "\u0661\u0662",
            "-5",
            "-0",
            "1E-999999",
            "1E+999999",
            "0E+999999",
            "1e400",
            "0.1234567890123456789012345",
            "1,5",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59",
            "2026-13-45 99:99:99",
            "2026-11-03T10:00:00",
            "31.12.1999 23:00:00",
            "\x00",
            "\udc80\udcff",
            BAD_BYTES,
            "Completed Settlement",
            "approved",
            "settled",
            "XYZ",
            "rub",
            '{"sub_id": 1}',
            "{broken",
            "[",
            '"',
            "\\",
            "a,b;c\r\nd",
            "Y",
            "maybe",
            "AliExpress",
        ]
    )
    | st.text(max_size=30)
    | st.sampled_from(
        [
            # huge values, built when drawn (a 450 KB string in the strategy's repr would be shown in every report)
            ("x", 450_000),
            ("L", 1_100),
            ("O", 2_100),
            ("9", 5_000),
            ("\u00e9", 300),
            ("[", 200_000),
        ]
    ).map(lambda pair: pair[0] * pair[1])
)
RAW_JSON = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1E-999999",
        "1E+999999",
        "-0",
        "1e400",
        "1E+99999999999999999999",
        "-1113",
        "0.0000001",
        "5000 digits",
    ]
).map(lambda text: Raw("9" * 5_000 if text == "5000 digits" else text))


@st.composite
def deep(draw) -> Raw:
    depth = draw(st.integers(min_value=60, max_value=3_000))
    kind = draw(st.sampled_from(["list", "object", "mixed"]))
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    if kind == "object":
        return Raw('{"a":' * depth + "1" + "}" * depth)
    return Raw('[{"a":' * (depth // 2) + '"[{"' + "}]" * (depth // 2))


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | HOSTILE_TEXT
    | RAW_JSON
)
HOSTILE = SCALARS | deep() | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=5), SCALARS, max_size=3)
HOSTILE_CELL = HOSTILE_TEXT | st.integers(min_value=-(10**30), max_value=10**30).map(str)


@st.composite
def mutate(draw, record: dict, extra_fields: tuple[str, ...], values=HOSTILE) -> dict:
    """The record with one to four fields (its own or others the partner may send) set to hostile values."""
    names = sorted(set(record) | set(extra_fields))
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True)):
        record[name] = draw(values)
    return record


def check_report(report, good_positions: list[int] | None = None, good_ids: set[str] | None = None) -> None:
    assert report.read == len(report.lines) + len(report.quarantined)
    for bad in report.quarantined:
        assert bad.reason and len(bad.reason) <= MAX_REASON_CHARS, bad.reason[:200]
        valid_text(bad.reason).encode("utf-8")
        raw_bytes(bad.raw)
    for line in report.lines:
        check_line(line)
    quarantined = {bad.position: bad.reason for bad in report.quarantined}
    for position in good_positions or []:
        assert position not in quarantined, quarantined[position]
    if good_ids:
        missing = good_ids - {line.line_id for line in report.lines}
        assert not missing, (missing, [bad.reason for bad in report.quarantined])


def check_line(line: OrderLine) -> None:
    assert PARTNER_SLUG.fullmatch(line.partner)
    for name in ID_FIELDS:
        value = getattr(line, name)
        assert value is None or len(value.encode("utf-8")) <= MAX_ID_BYTES
    for name in TEXT_FIELDS:
        value = getattr(line, name)
        assert value is None or len(value) <= MAX_TEXT_CHARS
        if value is not None:
            value.encode("utf-8")  # raises for undecodable bytes
    for name in ("status_at", "ordered_at", "paid_at", "settled_at", "added_to_cart_at"):
        moment = getattr(line, name)
        assert moment is None or EARLIEST_YEAR <= moment.year <= LATEST_YEAR
    for name in ("amount", "shipping", "tax", "commission"):
        amount = getattr(line, name)
        assert amount is None or (
            amount.is_finite() and 0 <= amount <= MAX_LINE_AMOUNT and amount.as_tuple().exponent >= -MAX_AMOUNT_PLACES
        )
    assert line.usd_rate is None or MIN_USD_RATE <= line.usd_rate <= MAX_USD_RATE
    assert line.currency in ISO_4217_ACTIVE
    # The ledger's keys and its line item (the line as JSON) fit DynamoDB
    assert len(f"{line.partner}#{line.order_id}".encode()) <= 2_048
    assert len(f"LINE#{line.line_id}".encode()) <= 1_024
    assert len(line.model_dump_json().encode("utf-8")) < DYNAMODB_ITEM_BYTES


# --- AliExpress ---------------------------------------------------------------------------------------------------

ALI_EXTRA = (
    "effect_detail_status",
    "finished_amount",
    "estimated_finished_commission",
    "finished_time",
    "completed_settlement_time",
    "tracking_id",
    "product_title",
    "is_hot_product",
    "commission_rate",
)


@st.composite
def ali_good(draw, index: int) -> dict:
    return {
        "order_id": draw(st.sampled_from([8000 + index, f"8000{index}"])),
        "sub_order_id": f"s{index}",
        "order_status": draw(
            st.sampled_from(["Payment Completed", "Buyer Confirmed Receipt", "Completed Settlement", "Invalid"])
        ),
        "paid_amount": draw(st.integers(min_value=0, max_value=10**7)),
        "estimated_paid_commission": draw(st.integers(min_value=0, max_value=10**5)),
        "settled_currency": draw(st.sampled_from(["USD", "RUB", "EUR"])),
        "custom_parameters": json.dumps({"sub_id": f"c{index}"}),
        "created_time": "2026-11-03 10:00:00",
        "paid_time": "2026-11-03 10:05:00",
        "finished_time": "2026-11-10 10:00:00",
        "completed_settlement_time": "2026-11-20 10:00:00",
        "category_id": 100001,
        "product_id": 1005001234,
        "is_affiliate_product": "Y",
        "ship_to_country": "RU",
    }


@st.composite
def ali_pages(draw):
    orders, good = [], []
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        order = draw(ali_good(index))
        kind = draw(st.sampled_from(["good", "good", "mutated", "mutated", "duplicate", "not an object"]))
        if kind == "good":
            good.append(index + 1)
        elif kind == "not an object":
            order = draw(HOSTILE)
        else:
            order = draw(mutate(order, ALI_EXTRA))
            if kind == "duplicate":
                order["sub_order_id"] = "s0"
        orders.append(order)
    page = to_json(
        {
            "aliexpress_affiliate_order_listbyindex_response": {
                "resp_result": {
                    "resp_code": 200,
                    "resp_msg": "call succeeds",
                    "result": {"current_record_count": len(orders), "orders": {"order": orders}},
                }
            }
        }
    )
    return to_bytes(page), good


@FUZZ
@given(ali_pages())
def test_aliexpress_reader_is_total(page):
    data, good = page
    check_report(read_report(data, "aliexpress", source="fuzz"), good_positions=good)


# --- Admitad ------------------------------------------------------------------------------------------------------

ADMITAD_EXTRA = ("id", "cart", "payment", "usd_rate", "datetime", "promocode", "status_updated", "positions")


@st.composite
def admitad_good(draw, index: int) -> dict:
    positions = [
        {
            "id": number,
            "amount": draw(st.sampled_from(["11.13", "0", "999999.99", 5])),
            "payment": "0.77",
            "product_id": "1005001234",
            "product_category_id": "100001",
        }
        for number in range(1, draw(st.integers(min_value=0, max_value=2)) + 1)
    ]
    return {
        "id": index,
        "action_id": f"a{index}",
        "order_id": f"A-{index}",
        "status": draw(st.sampled_from(["pending", "approved", "declined", "approved_but_stalled"])),
        "cart": "11.13",
        "payment": "0.77",
        "currency": draw(st.sampled_from(["USD", "RUB", "KZT"])),
        "subid": f"c{index}",
        "action_date": "2026-11-03 18:00:00",
        "status_updated": "2026-11-03 18:05:00",
        "positions": positions,
    }


@st.composite
def admitad_pages(draw):
    actions, good = [], set()
    for index in range(draw(st.integers(min_value=1, max_value=5))):
        action = draw(admitad_good(index))
        kind = draw(st.sampled_from(["good", "good", "mutated", "position", "duplicate", "not an object"]))
        if kind == "good":
            good |= {f"a{index}#{position['id']}" for position in action["positions"]} or {f"a{index}"}
        elif kind == "not an object":
            action = draw(HOSTILE)
        elif kind == "position":
            action["positions"].append(draw(HOSTILE | mutate({"id": 9, "amount": "1.00"}, ("payment", "product_id"))))
        else:
            action = draw(mutate(action, ADMITAD_EXTRA))
            if kind == "duplicate":
                action["action_id"] = "a0"
        actions.append(action)
    page = to_json({"results": actions, "_meta": {"count": len(actions), "limit": 100, "offset": 0}})
    return to_bytes(page), good


@FUZZ
@given(admitad_pages())
def test_admitad_reader_is_total(page):
    data, good = page
    check_report(read_report(data, "admitad", source="fuzz"), good_ids=good)


# --- CSV ----------------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "line_id",
    "order_id",
    "sub_id",
    "status",
    "ordered_at",
    "paid_at",
    "amount",
    "currency",
    "usd_rate",
    "commission",
    "category_id",
    "is_hot",
    "status_detail",
    "promo_code",
    "shop_id",
)


@st.composite
def csv_good(draw, index: int) -> dict:
    return {
        "line_id": f"L{index}",
        "order_id": f"O{index}",
        "sub_id": f"c{index}",
        "status": draw(st.sampled_from(["paid", "settled", "invalid", "received", "awaiting_payment"])),
        "ordered_at": draw(st.sampled_from(["2026-11-03T18:00:00Z", "2026-11-03 18:00:00"])),
        "paid_at": "",
        "amount": draw(st.sampled_from(["11.13", "0", "1000000", "12.50"])),
        "currency": draw(st.sampled_from(["USD", "EUR"])),
        "usd_rate": draw(st.sampled_from(["", "0.93"])),
        "commission": "0.77",
        "category_id": "100001",
        "is_hot": "false",
        "status_detail": "",
        "promo_code": "",
        "shop_id": "",
    }


@st.composite
def csv_files(draw):
    # Good rows are known by id: a hostile cell may hold a line break, which splits its row in two.
    rows, good = [], set()
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        record = draw(csv_good(index))
        kind = draw(st.sampled_from(["good", "good", "mutated", "mutated", "duplicate", "cells"]))
        if kind == "good":
            good.add(record["line_id"])
            row = [record[name] for name in CSV_COLUMNS]
        elif kind == "cells":  # a row with too few or too many cells
            row = [record[name] for name in CSV_COLUMNS][: draw(st.integers(min_value=1, max_value=5))]
            row += [] if draw(st.booleans()) else ["extra"] * 20
        else:
            record = draw(mutate(record, (), HOSTILE_CELL))
            if kind == "duplicate":
                record["line_id"] = "L0"
            row = [record[name] for name in CSV_COLUMNS]
        rows.append(row)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return to_bytes(buffer.getvalue()), good


@FUZZ
@given(csv_files())
def test_csv_reader_is_total(file):
    data, good = file
    check_report(read_report(data, "csv", source="fuzz", options=PartnerOptions(partner="shop")), good_ids=good)


# --- Normalised JSON Lines ----------------------------------------------------------------------------------------

NORMALIZED_EXTRA = (
    "partner_order_id",
    "status_detail",
    "paid_at",
    "settled_at",
    "tax",
    "usd_rate",
    "shop_id",
    "is_affiliate",
    "promo_section",
    "promo_code",
    "promo_code_kind",
    "buyer_account",
    "added_to_cart_at",
    "ship_to_country",
    "partner",
)


@st.composite
def normalized_good(draw, index: int) -> dict:
    return {
        "partner": draw(st.sampled_from(["aliexpress", "admitad", "awin_2"])),
        "line_id": f"n{index}",
        "order_id": f"o{index}",
        "sub_id": f"c{index}",
        "status": draw(st.sampled_from(["paid", "settled", "invalid"])),
        "status_at": "2026-11-03T18:00:00Z",
        "ordered_at": "2026-11-03T18:00:00+03:00",
        "amount": draw(st.sampled_from(["11.13", "0", "1000000"])),
        "shipping": "0",
        "currency": draw(st.sampled_from(["USD", "EUR", "KZT"])),
        "commission": "0.77",
        "category_id": "100001",
        "ship_to_country": "KZ",
    }


@st.composite
def jsonl_files(draw):
    lines, good = [], []
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        record = draw(normalized_good(index))
        kind = draw(st.sampled_from(["good", "good", "mutated", "mutated", "duplicate", "not an object"]))
        if kind == "good":
            good.append(index + 1)
            lines.append(to_json(record))
        elif kind == "not an object":
            hostile = draw(HOSTILE | st.sampled_from(["{broken", "[1]", "null", '"text"', BAD_BYTES]).map(Raw))
            text = to_json(hostile)
            lines.append(text if text.strip() else "null")
        else:
            record = draw(mutate(record, NORMALIZED_EXTRA))
            if kind == "duplicate":
                record["line_id"] = "n0"
            lines.append(to_json(record))
    return to_bytes("\n".join(lines)), good


@FUZZ
@given(jsonl_files())
def test_normalized_reader_is_total(file):
    data, good = file
    check_report(read_report(data, "normalized", source="fuzz"), good_positions=good)


def test_a_deep_raw_value_is_read_by_the_fuzzers_own_serialiser():
    # the fuzzer's Raw values really reach the page as JSON text
    assert to_json({"a": Raw("NaN")}) == '{"a": NaN}'
    assert json.loads(to_json([Raw("1E-999999")]), parse_float=Decimal) == [Decimal("1E-999999")]
