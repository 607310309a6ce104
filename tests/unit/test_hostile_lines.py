"""One hostile line never stops a report (docs/rules.md: "Nothing a partner sends can stop a feed"). Each case below
once failed the whole page or file: a 450 KB field, ids over DynamoDB's key limits, dates that overflow date
arithmetic, decimals that overflow, deep nesting, a huge CSV cell, superscript and 5,000-digit amounts. Now the bad
line is quarantined with a bounded reason naming the field, and the good line beside it is accepted."""

import json
from decimal import Decimal

import pytest
from test_partner_mapping import admitad_action, admitad_page, ali_order, ali_page

from accrual.domain.models import MAX_REASON_CHARS
from accrual.partners import PartnerOptions, read_report

BIG = "x" * 450_000
DEEP = "[" * 100_000 + "]" * 100_000
LONG_LINE_ID = "L" * 1_100
LONG_ORDER_ID = "O" * 2_100
EARLY = "0001-01-01T00:00:00+14:00"
LATE = "9999-12-31T23:59:59-12:00"


def normalized_line(**overrides):
    line = {
        "partner": "aliexpress",
        "line_id": "good-1",
        "order_id": "9",
        "sub_id": "c",
        "status": "paid",
        "status_at": "2026-11-03T18:00:00Z",
        "ordered_at": "2026-11-03T18:00:00Z",
        "amount": "11.13",
        "shipping": "0",
        "currency": "USD",
        "commission": "0.77",
    }
    line.update(overrides)
    return line


def jsonl(*lines):
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)


def with_raw(text, field, raw_json):
    """A JSON document where the string value "@@" of `field` is replaced by raw JSON text (deep nesting, NaN)."""
    marker = json.dumps({field: "@@"})[1:-1]
    assert marker in text
    return text.replace(marker, f"{json.dumps(field)}: {raw_json}")


CSV_HEADER = "line_id,order_id,sub_id,status,ordered_at,amount,currency,usd_rate,commission\n"
CSV_GOOD = "good-1,O1,click-1,paid,2026-11-03T18:00:00Z,11.13,USD,,0.77\n"


def csv_row(
    line_id="bad-1", order_id="O2", ordered_at="2026-11-03T18:00:00Z", amount="5.00", currency="USD", usd_rate=""
):
    return f"{line_id},{order_id},click-2,paid,{ordered_at},{amount},{currency},{usd_rate},0.10\n"


def ali(**bad):
    return ali_page(ali_order(sub_order_id="good-1"), ali_order(**{"sub_order_id": "bad-1", **bad}))


def admitad(**bad):
    return admitad_page(admitad_action(action_id="good-1"), admitad_action(**{"action_id": "bad-1", **bad}))


CASES = {
    # a field of 450 KB: above DynamoDB's item limit, its quarantine record once failed too
    "aliexpress 450 KB field": ("aliexpress", ali(effect_detail_status=BIG), "effect_detail_status"),
    "admitad 450 KB field": ("admitad", admitad(subid=BIG), "subid"),
    "csv 450 KB field": ("csv", CSV_HEADER + CSV_GOOD + csv_row(line_id=BIG), "line_id"),
    "normalized 450 KB field": ("normalized", jsonl(normalized_line(), normalized_line(sub_id=BIG)), "sub_id"),
    # ids over DynamoDB's key limits (sk LINE#<line_id> at most 1,024 bytes, pk partner#order_id at most 2,048)
    "aliexpress long line_id": ("aliexpress", ali(sub_order_id=LONG_LINE_ID), "sub_order_id"),
    "aliexpress long order_id": ("aliexpress", ali(order_id=LONG_ORDER_ID), "order_id"),
    "admitad long order_id": ("admitad", admitad(order_id=LONG_ORDER_ID), "order_id"),
    "csv long line_id": ("csv", CSV_HEADER + CSV_GOOD + csv_row(line_id=LONG_LINE_ID), "line_id"),
    "normalized long order_id": (
        "normalized",
        jsonl(normalized_line(), normalized_line(line_id="bad-1", order_id=LONG_ORDER_ID)),
        "order_id",
    ),
    # dates whose arithmetic overflows (ordered_at + 3 days, a UTC conversion)
    "aliexpress year 1": ("aliexpress", ali(created_time=EARLY), "created_time"),
    "aliexpress year 9999": ("aliexpress", ali(created_time=LATE, order_status="Invalid"), "created_time"),
    "admitad year 1": ("admitad", admitad(action_date=EARLY), "action_date"),
    "admitad year 9999": ("admitad", admitad(action_date=LATE), "action_date"),
    "csv year 1": ("csv", CSV_HEADER + CSV_GOOD + csv_row(ordered_at=EARLY), "ordered_at"),
    "csv year 9999": ("csv", CSV_HEADER + CSV_GOOD + csv_row(ordered_at=LATE), "ordered_at"),
    "normalized year 1": (
        "normalized",
        jsonl(normalized_line(), normalized_line(line_id="bad-1", ordered_at=EARLY, status_at=EARLY)),
        "ordered_at",
    ),
    "normalized year 9999": (
        "normalized",
        jsonl(normalized_line(), normalized_line(line_id="bad-1", ordered_at=LATE)),
        "ordered_at",
    ),
    # a usd_rate that overflows decimal arithmetic, or is not a number at all
    "normalized tiny usd_rate": (
        "normalized",
        jsonl(normalized_line(), normalized_line(line_id="bad-1", currency="RUB", usd_rate="1E-999999")),
        "usd_rate",
    ),
    "normalized NaN usd_rate": (
        "normalized",
        jsonl(normalized_line(), normalized_line(line_id="bad-1", currency="RUB", usd_rate="NaN")),
        "usd_rate",
    ),
    "normalized NaN number usd_rate": (
        "normalized",
        jsonl(
            normalized_line(),
            with_raw(json.dumps(normalized_line(line_id="bad-1", currency="RUB", usd_rate="@@")), "usd_rate", "NaN"),
        ),
        "usd_rate",
    ),
    "admitad tiny usd_rate": (
        "admitad",
        with_raw(admitad(currency="RUB", usd_rate="@@"), "usd_rate", "1E-999999"),
        "usd_rate",
    ),
    "csv tiny usd_rate": ("csv", CSV_HEADER + CSV_GOOD + csv_row(currency="RUB", usd_rate="1E-999999"), "usd_rate"),
    "csv NaN usd_rate": ("csv", CSV_HEADER + CSV_GOOD + csv_row(currency="RUB", usd_rate="NaN"), "usd_rate"),
    "csv tiny amount": ("csv", CSV_HEADER + CSV_GOOD + csv_row(amount="1E-999999"), "amount"),
    # one value nested 100,000 deep: RecursionError in every JSON reader
    "aliexpress deep order field": (
        "aliexpress",
        with_raw(ali(product_title="@@"), "product_title", DEEP),
        "product_title",
    ),
    "aliexpress deep custom_parameters": (
        "aliexpress",
        ali(custom_parameters=json.dumps({"sub_id": "@@"}).replace('"@@"', DEEP)),
        "custom_parameters",
    ),
    "admitad deep position": (
        "admitad",
        with_raw(admitad(positions=[{"id": 1, "amount": "1.00", "x": "@@"}]), "x", DEEP),
        "positions",
    ),
    "normalized deep line": (
        "normalized",
        jsonl(normalized_line(), with_raw(json.dumps(normalized_line(line_id="bad-1", sub_id="@@")), "sub_id", DEEP)),
        "sub_id",
    ),
    # a CSV cell above the csv module's field size limit
    "csv 200 KB cell": ("csv", CSV_HEADER + csv_row(order_id="O" * 200_000) + CSV_GOOD, "order_id"),
    # minor-unit amounts int() refuses: superscript digits pass str.isdigit; over 4,300 digits
    "aliexpress superscript amount": ("aliexpress", ali(paid_amount="12²"), "paid_amount"),
    "aliexpress 5,000-digit string amount": ("aliexpress", ali(paid_amount="9" * 5_000), "paid_amount"),
    "aliexpress 5,000-digit number amount": (
        "aliexpress",
        with_raw(ali(paid_amount="@@"), "paid_amount", "9" * 5_000),
        "paid_amount",
    ),
    "aliexpress 5,000-digit number id": (
        "aliexpress",
        with_raw(ali(product_id="@@"), "product_id", "9" * 5_000),
        "product_id",
    ),
}


@pytest.mark.parametrize("report_format, text, field", list(CASES.values()), ids=list(CASES))
def test_a_hostile_line_is_quarantined_and_the_good_line_beside_it_is_accepted(report_format, text, field):
    report = read_report(text.encode("utf-8"), report_format, source="hostile", options=PartnerOptions(partner="shop"))
    assert report.read == len(report.lines) + len(report.quarantined) == 2
    assert [line.line_id.split("#")[0] for line in report.lines] == ["good-1"], report.quarantined
    [bad] = report.quarantined
    assert bad.reason.startswith(field) or f" {field}" in bad.reason or f"({field})" in bad.reason, bad.reason
    assert 0 < len(bad.reason) <= MAX_REASON_CHARS
    assert "bad-1" in bad.raw or "O" * 1000 in bad.raw or BIG in bad.raw or "LLLL" in bad.raw


def test_the_reason_shortens_a_huge_value_and_states_its_length():
    report = read_report(jsonl(normalized_line(sub_id=BIG)), "normalized", source="f")
    [bad] = report.quarantined
    assert bad.reason.startswith("sub_id=") and "450000" in bad.reason and len(bad.reason) <= MAX_REASON_CHARS
    assert bad.raw == json.dumps(normalized_line(sub_id=BIG))  # the whole line is kept for the archive


def test_a_deep_value_is_named_as_nested():
    text = jsonl(with_raw(json.dumps(normalized_line(sub_id="@@")), "sub_id", DEEP))
    [bad] = read_report(text, "normalized", source="f").quarantined
    assert bad.reason.startswith("sub_id") and "nested deeper than 64" in bad.reason


@pytest.mark.parametrize("currency", ["XYZ", "ABC"])
def test_an_unknown_currency_is_refused_naming_it(currency):
    [bad] = read_report(jsonl(normalized_line(currency=currency, usd_rate="2")), "normalized", source="f").quarantined
    assert bad.reason.startswith(f"currency='{currency}'") and "ISO 4217" in bad.reason


def test_a_non_usd_line_without_a_rate_is_accepted_for_the_ledger_to_convert():
    line = read_report(jsonl(normalized_line(currency="RUB")), "normalized", source="f").lines[0]
    assert (line.currency, line.usd_rate) == ("RUB", None)
    rate = read_report(jsonl(normalized_line(currency="RUB", usd_rate="92.5")), "normalized", source="f").lines[0]
    assert rate.usd_rate == Decimal("92.5")


@pytest.mark.parametrize("usd_rate", ["0", "-1", "0.0000001", "20000000", "Infinity", "1E+999999"])
def test_an_implausible_usd_rate_is_refused(usd_rate):
    [bad] = read_report(jsonl(normalized_line(currency="RUB", usd_rate=usd_rate)), "normalized", source="f").quarantined
    assert bad.reason.startswith("usd_rate=")


@pytest.mark.parametrize("partner", ["AliExpress", "a b", "x" * 33, ""])
def test_the_partner_is_a_short_lowercase_slug(partner):
    [bad] = read_report(jsonl(normalized_line(partner=partner)), "normalized", source="f").quarantined
    assert bad.reason.startswith("partner")


def test_invalid_utf8_spoils_only_its_own_line():
    good = json.dumps(normalized_line()).encode()
    bad = json.dumps(normalized_line(line_id="bad-1", sub_id="@@")).encode().replace(b"@@", b"\xff\xfe")
    report = read_report(good + b"\n" + bad + b"\n", "normalized", source="f")
    assert report.counts == {"read": 2, "accepted": 1, "quarantined": 1}
    csv_bytes = (CSV_HEADER + CSV_GOOD).encode() + csv_row(line_id="bad-1").encode().replace(b"click-2", b"\xff")
    report = read_report(csv_bytes, "csv", source="f")
    assert report.counts == {"read": 2, "accepted": 1, "quarantined": 1}


def test_a_page_that_is_not_json_at_all_is_still_refused_as_a_whole():
    from accrual.partners import ReportFormatError

    for partner in ("aliexpress", "admitad"):
        with pytest.raises(ReportFormatError):
            read_report(DEEP[:50_000], partner, source="p")
        with pytest.raises(ReportFormatError):
            read_report(b"\xff\xfe\x00garbage", partner, source="p")
