"""Classes of partner input that once lost or invented money without a word: a final figure of 0 replaced by an
earlier one, thousands separators read as decimal commas, Admitad positions merged into one line, JSON Lines cut at
Unicode line separators, a page shape that stalled the feed, ids that carry control or format characters. Each class
is tested with a table of its members and, where the class is open, with hypothesis."""

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_partner_mapping import admitad_action, admitad_page, ali_order, ali_page

from accrual.domain.decision import Code
from accrual.domain.models import LineStatus
from accrual.domain.rules import decide_order
from accrual.partners import PartnerOptions, ReportFormatError, options_from_json, read_page, read_report
from accrual.partners.aliexpress import paging
from support.builders import NOW, click, config, line


def counted(report):
    assert report.read == len(report.lines) + len(report.quarantined)
    return report


# --- a settled line's final figure is final ------------------------------------------------------------------------
SETTLED = {"order_status": "Completed Settlement", "completed_settlement_time": "2026-11-20 10:00:00"}


@pytest.mark.parametrize("finished_amount", [0, "0", "00"])
def test_a_settlement_with_a_final_amount_of_zero_earns_nothing_with_its_own_reason(finished_amount):
    order = ali_order(**SETTLED, paid_amount=10000, finished_amount=finished_amount, estimated_finished_commission=0)
    (settled,) = counted(read_report(ali_page(order), "aliexpress", source="p")).lines
    assert (settled.status, settled.amount, settled.commission) == (LineStatus.SETTLED, Decimal("0"), Decimal("0"))
    decision = decide_order([settled], click(sub_id=settled.sub_id), config(), now=NOW)
    assert decision.cashback_usd == 0
    assert decision.lines[0].exclusion == Code.PARTNER_SETTLED_AT_ZERO
    assert Code.PARTNER_SETTLED_AT_ZERO in decision.reasons


@pytest.mark.parametrize(
    ("status", "finished_amount", "expected"),
    [
        ("Completed Settlement", 4000, "40"),  # a partial refund lowered the final figure
        ("Completed Settlement", None, "100"),  # no finished figure given: the paid one stands
        ("Buyer Confirmed Receipt", 0, "100"),  # not final yet: a 0 there is "not filled in"
        ("Buyer Confirmed Receipt", 4000, "40"),
        ("Payment Completed", 4000, "100"),
    ],
)
def test_which_figure_a_line_earns_from(status, finished_amount, expected):
    order = ali_order(
        order_status=status,
        paid_amount=10000,
        finished_amount=finished_amount,
        finished_time="2026-11-10 10:00:00",
        completed_settlement_time="2026-11-20 10:00:00",
    )
    assert counted(read_report(ali_page(order), "aliexpress", source="p")).lines[0].amount == Decimal(expected)


def test_a_settled_line_of_any_partner_at_zero_is_declined_with_the_reason():
    decision = decide_order([line(status="settled", amount="0")], click(), config(), now=NOW)
    assert decision.lines[0].exclusion == Code.PARTNER_SETTLED_AT_ZERO and decision.cashback_usd == 0
    paid = decide_order([line(status="paid", amount="0")], click(), config(), now=NOW)
    assert paid.lines[0].exclusion == Code.BELOW_MINIMUM


# --- numbers are read exactly or not at all ------------------------------------------------------------------------
CSV_HEADER = "line_id;order_id;sub_id;status;ordered_at;amount\n"


def csv_amount(text, **options):
    document = {"delimiter": ";", **options}
    data = CSV_HEADER + f'L1;O1;c1;paid;2026-11-03T18:00:00Z;"{text}"\n'
    return counted(read_report(data, "csv", source="f.csv", options=options_from_json(json.dumps(document))))


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("1234.56", {}, "1234.56"),
        ("1,234", {}, None),  # never 1.234 by guess
        ("1,234.50", {}, None),
        ("12,5", {}, None),
        ("1 234", {}, None),
        ("1_234", {}, None),
        ("\u0661\u0662", {}, None),
        ("1,234", {"thousands_separator": ","}, "1234"),
        ("1,234.50", {"thousands_separator": ","}, "1234.50"),
        ("1234.50", {"thousands_separator": ","}, "1234.50"),  # grouping is optional
        ("1,23", {"thousands_separator": ","}, None),  # but when used, in threes
        ("12,34,567", {"thousands_separator": ","}, None),
        ("234,567.5", {"thousands_separator": ","}, "234567.5"),
        ("1.234,5", {"thousands_separator": ","}, None),
        ("12,50", {"decimal_separator": ","}, "12.50"),
        ("12.50", {"decimal_separator": ","}, None),
        ("1.234,50", {"decimal_separator": ",", "thousands_separator": "."}, "1234.50"),
        ("1.234", {"decimal_separator": ",", "thousands_separator": "."}, "1234"),
        ("1 234,50", {"decimal_separator": ",", "thousands_separator": " "}, "1234.50"),
        ("1\u00a0234,50", {"decimal_separator": ",", "thousands_separator": "\u00a0"}, "1234.50"),
        ("1'234.50", {"thousands_separator": "'"}, "1234.50"),
        ("1e3", {"decimal_separator": ","}, None),
        (",5", {"decimal_separator": ","}, "0.5"),
        ("1,2,3", {"decimal_separator": ","}, None),
    ],
)
def test_an_amount_reads_exactly_under_its_separators_or_is_quarantined_naming_field_and_value(text, options, expected):
    report = csv_amount(text, **options)
    if expected is None:
        (refused,) = report.quarantined
        assert refused.reason.startswith(f"amount={text!r}: not an amount written with decimal separator")
    else:
        (read,) = report.lines
        assert read.amount == Decimal(expected)


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(min_value=0, max_value=999_999, places=2, allow_nan=False),
    st.sampled_from([(".", None), (".", ","), (",", None), (",", "."), (",", " "), (".", "'")]),
    st.booleans(),
)
def test_any_amount_written_in_the_partner_format_reads_back_exactly(amount, separators, grouped):
    decimal, thousands = separators
    whole, fraction = f"{amount:.2f}".split(".")
    if grouped and thousands:
        whole = f"{int(whole):,}".replace(",", thousands)
    options = {"decimal_separator": decimal, **({"thousands_separator": thousands} if thousands else {})}
    (read,) = csv_amount(f"{whole}{decimal}{fraction}", **options).lines
    assert read.amount == amount


@pytest.mark.parametrize(
    ("amount", "read"),
    [("1,234", None), ("1.234", Decimal("1.234")), (1234, Decimal("1234")), ("12,50", None), ("1_000", None)],
)
def test_admitad_string_amounts_read_exactly(amount, read):
    page = admitad_page(admitad_action(positions=[{"id": 1, "amount": amount, "payment": "0.1"}]))
    report = counted(read_report(page, "admitad", source="p"))
    if read is None:
        assert report.quarantined[0].reason.startswith(f"positions[0].amount={amount!r}: not an amount written with")
    else:
        assert report.lines[0].amount == read


@pytest.mark.parametrize("amount", ["1,234", "1_234", "\uff11\uff12", "\u0661\u0662", "NaN", "12,50"])
def test_a_normalised_amount_is_ascii_decimal_text(amount):
    record = {
        "partner": "aliexpress",
        "line_id": "L",
        "order_id": "O",
        "status": "paid",
        "status_at": "2026-11-03T18:00:00Z",
        "ordered_at": "2026-11-03T18:00:00Z",
        "amount": amount,
    }
    report = counted(read_report(json.dumps(record), "normalized", source="x"))
    assert report.quarantined and report.quarantined[0].reason.startswith(f"amount={amount!r}")


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"decimal_separator": ",", "thousands_separator": ","}, "also the decimal_separator"),
        ({"decimal_separator": ";"}, "decimal_separator"),
        ({"thousands_separator": "x"}, "thousands_separator"),
        ({"date_format": "%d.%m.%Y %I:%M"}, "needs %p"),
        ({"date_format": "%H:%M"}, "needs %d, %m, %Y"),
        ({"encoding": "utf-16"}, "not an ASCII-compatible encoding"),
        ({"encoding": "klingon"}, "not an encoding"),
    ],
)
def test_a_map_that_cannot_read_numbers_or_dates_exactly_is_refused(document, words):
    with pytest.raises(ValueError, match=words):
        options_from_json(json.dumps(document))


# --- CSV maps that describe real files -----------------------------------------------------------------------------
def test_a_csv_in_its_own_date_format_decimal_comma_time_zone_and_encoding_reads_through_its_map():
    options = options_from_json(
        {
            "columns": {"line_id": "Номер", "order_id": "Заказ", "amount": "Сумма", "ordered_at": "Дата"},
            "statuses": {"Оплачен": "paid"},
            "delimiter": ";",
            "decimal_separator": ",",
            "thousands_separator": " ",
            "date_format": "%d.%m.%Y %H:%M",
            "timezone": "Europe/Moscow",
            "encoding": "cp1251",
        }
    )
    text = "Номер;Заказ;Сумма;Дата;status;sub_id\nT-1;999;1 234,50;28.11.2026 12:00;Оплачен;c-1\n"
    (read,) = counted(read_report(text.encode("cp1251"), "csv", source="f.csv", options=options)).lines
    assert (read.amount, read.ordered_at.isoformat()) == (Decimal("1234.50"), "2026-11-28T09:00:00+00:00")


def test_with_a_date_format_no_other_format_is_guessed():
    options = options_from_json({"date_format": "%d.%m.%Y %H:%M"})
    data = (
        "line_id,order_id,status,ordered_at,amount\nL1,O1,paid,2026-11-28T12:00:00Z,1\nL2,O2,paid,11/28/2026 12:00,1\n"
    )
    report = counted(read_report(data, "csv", source="f.csv", options=options))
    assert [q.reason for q in report.quarantined] == [
        "ordered_at='2026-11-28T12:00:00Z': not a time in the format %d.%m.%Y %H:%M",
        "ordered_at='11/28/2026 12:00': not a time in the format %d.%m.%Y %H:%M",
    ]


def test_a_csv_without_its_map_says_where_the_map_is_set():
    with pytest.raises(ReportFormatError, match="column map"):
        read_report("Transaction ID,Sale Amount\nT1,5\n", "csv", source="f.csv")


# --- no line collapses silently ------------------------------------------------------------------------------------
def positions(*ids):
    return [
        {"amount": str(100 + 10 * index), "payment": "1", **({"id": given} if given is not None else {})}
        for index, given in enumerate(ids)
    ]


@pytest.mark.parametrize(
    ("ids", "line_ids"),
    [
        ((1, 2), ["555001#1", "555001#2"]),
        ((7, 7), ["555001#7", "555001#7#2"]),
        ((7, 7, 7), ["555001#7", "555001#7#2", "555001#7#3"]),
        ((None, None), ["555001#1", "555001#2"]),
        ((2, None), ["555001#2", "555001#2#position"]),
        ((None, 1), ["555001#1#position", "555001#1"]),
        ((1, None, 1), ["555001#1", "555001#2", "555001#1#2"]),
        (("1", 1), ["555001#1", "555001#1#2"]),  # the same id as text and as a number
    ],
)
def test_every_admitad_position_is_a_line_of_its_own(ids, line_ids):
    report = counted(read_report(admitad_page(admitad_action(positions=positions(*ids))), "admitad", source="p"))
    assert [read.line_id for read in report.lines] == line_ids
    assert sum(read.amount for read in report.lines) == sum(100 + 10 * index for index in range(len(ids)))


def test_a_position_whose_line_id_cannot_be_unique_is_quarantined_not_merged():
    report = counted(read_report(admitad_page(admitad_action(positions=positions(7, 7, "7#2"))), "admitad", source="p"))
    assert [read.line_id for read in report.lines] == ["555001#7"]
    assert len(report.quarantined) == 2
    assert all("would have the same line id" in refused.reason for refused in report.quarantined)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(1, 4), st.sampled_from(["1", "2", "1#2", "2#position"])), max_size=8))
def test_admitad_positions_never_collapse(ids):
    report = counted(
        read_report(admitad_page(admitad_action(positions=positions(*ids) or None)), "admitad", source="p")
    )
    line_ids = [read.line_id for read in report.lines]
    assert len(line_ids) == len(set(line_ids))
    assert report.read == max(len(ids), 1)
    again = read_report(admitad_page(admitad_action(positions=positions(*ids) or None)), "admitad", source="p")
    assert [read.line_id for read in again.lines] == line_ids  # stable


# --- JSON Lines end at \n only -------------------------------------------------------------------------------------
def normalised(ident, **fields):
    return {
        "partner": "aliexpress",
        "line_id": ident,
        "order_id": "O1",
        "status": "paid",
        "status_at": "2026-11-03T18:00:00Z",
        "ordered_at": "2026-11-03T18:00:00Z",
        "amount": "1.00",
        **fields,
    }


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"])
def test_a_string_holding_a_unicode_line_break_does_not_split_its_line(separator):
    first = json.dumps(normalised("L1", promo_section=f"a{separator}b"), ensure_ascii=False)
    text = first + "\r\n" + json.dumps(normalised("L2")) + "\n"
    report = counted(read_report(text.encode(), "normalized", source="x"))
    assert report.read == 2 and report.lines[-1].line_id == "L2"
    if report.quarantined:  # a raw control character inside a JSON string: that one line is quarantined, whole
        assert report.quarantined[0].position == 1 and report.quarantined[0].raw == first
    else:
        assert report.lines[0].promo_section == f"a{separator}b"
    if separator in "\u2028\u2029\u0085":
        assert [read.line_id for read in report.lines] == ["L1", "L2"]


# --- a feed never stalls on a page's shape -------------------------------------------------------------------------
def test_an_aliexpress_page_with_one_order_as_an_object_is_read():
    page = json.loads(ali_page(ali_order()))
    result = page["aliexpress_affiliate_order_listbyindex_response"]["resp_result"]["result"]
    result["orders"]["order"] = ali_order(sub_order_id=42)
    (read,) = counted(read_report(json.dumps(page), "aliexpress", source="p")).lines
    assert read.line_id == "42"


@pytest.mark.parametrize(
    "orders",
    [{"order": "text"}, {"order": 7}, "orders", 12, {"order": True}],
)
def test_a_page_of_an_unexpected_shape_is_quarantined_whole_and_its_paging_still_read(orders):
    page = json.loads(ali_page(ali_order()))
    page["aliexpress_affiliate_order_listbyindex_response"]["resp_result"]["result"]["orders"] = orders
    raw = json.dumps(page)
    with pytest.raises(ReportFormatError):
        read_report(raw, "aliexpress", source="p")
    report = counted(read_page(raw, "aliexpress", source="p"))
    assert report.page_refused and report.read == 1 and report.quarantined[0].raw == raw
    assert report.quarantined[0].reason.startswith("page of an unexpected shape, quarantined whole")
    assert paging(raw).max_query_index_id == "100"


@pytest.mark.parametrize(
    ("partner", "raw"),
    [
        ("aliexpress", "<html>busy</html>"),
        ("aliexpress", "[1, 2]"),
        ("aliexpress", '{"resp_result": 5}'),
        ("aliexpress", '{"x_response": {"resp_result": {"result": {"orders": []}}}}'),
        ("aliexpress", '{"x_response": {"resp_result": {"resp_code": null, "result": {}}}}'),
        ("aliexpress", '{"x_response": {"resp_result": {"resp_code": 200, "result": [1]}}}'),
        ("admitad", '{"results": {"id": 1}}'),
        ("admitad", "null"),
        ("admitad", b"\xff\xfe garbage"),
    ],
)
def test_any_page_a_partner_serves_is_read_or_quarantined_whole(partner, raw):
    report = counted(read_page(raw, partner, source="p", options=PartnerOptions()))
    assert report.page_refused and report.read == 1


# --- identifiers with control or format characters are refused at reading -----------------------------------------
HOSTILE_IDS = [
    "123\n\nYour cashback account is frozen",
    "12\r3",
    "12\x073",
    "123\u202egnp.exe",  # right-to-left override
    "123\u2066x\u2069",  # bidi isolates
    "12\u200b3",  # zero-width space
    "\ufeff123",  # byte order mark
    "123\u00ad",  # soft hyphen
    "123\u2028more",
    "123\u2029more",
    "123\u0085more",
    "123\x00",
    "123\x7f",
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
@pytest.mark.parametrize("field", ["line_id", "order_id", "sub_id", "promo_code", "shop_id", "category_id"])
def test_an_id_with_a_control_or_format_character_is_quarantined(hostile, field):
    report = counted(read_report(json.dumps(normalised("L1", **{field: hostile})), "normalized", source="x"))
    (refused,) = report.quarantined
    assert refused.reason.startswith(f"{field}=") and "control or format characters" in refused.reason


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_partner_ids_in_every_format_refuse_them(hostile):
    ali = counted(read_report(ali_page(ali_order(order_id=hostile)), "aliexpress", source="p"))
    admitad = counted(read_report(admitad_page(admitad_action(order_id=hostile)), "admitad", source="p"))
    assert not ali.lines and not admitad.lines


def test_spaces_and_line_ends_around_an_id_are_trimmed_never_kept():
    (read,) = counted(read_report(json.dumps(normalised(" 123\r\n")), "normalized", source="x")).lines
    assert read.line_id == "123"


def test_plain_ids_of_every_script_are_kept():
    for plain in ("8000123456789", "STORE-9", "A#1", "заказ-7", "订单12", "ORDER 12"):
        assert counted(read_report(json.dumps(normalised(plain)), "normalized", source="x")).lines


def test_the_streamed_splitter_cuts_and_numbers_at_newlines_only(tmp_path):
    from accrual.partners.normalized import parse_jsonl
    from accrual.service.ingest_stream import _parts

    records = [
        normalised(f"L{number}", order_id=f"O{number}", promo_section="a\u2028b\u2029c\u0085d")
        for number in range(1, 8)
    ]
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    lines[5] = lines[5][:-1]  # file line 6 is not JSON: quarantined, named by its line number
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parts = list(_parts(path, "normalized", 2))
    assert [first for first, _ in parts] == [1, 3, 5, 7]
    reports = [parse_jsonl(data, source="x", first_line=first) for first, data in parts]
    assert sum(report.read for report in reports) == 7
    assert [line.line_id for report in reports for line in report.lines] == ["L1", "L2", "L3", "L4", "L5", "L7"]
    assert [q.reason for report in reports for q in report.quarantined][0].startswith("line 6: not valid JSON")


# --- a file that is mostly quarantined says why, and where its map is ----------------------------------------------
def test_the_top_reasons_count_reasons_by_kind_not_by_value():
    from accrual.partners.report import top_reasons

    data = "line_id,order_id,status,ordered_at,amount\n" + "".join(
        f"L{n},O{n},paid,{n:02d}.11.2026 12:00,{'1,5' if n % 3 == 0 else '1'}\n" for n in range(1, 10)
    )
    report = counted(read_report(data, "csv", source="f.csv"))
    assert report.quarantined and not report.lines
    first, second = top_reasons(report.quarantined)
    assert first == {
        "reason": "ordered_at=…: not a time",
        "lines": 6,
        "example": "ordered_at='01.11.2026 12:00': not a time",
    }
    assert (second["reason"], second["lines"]) == ("row has 6 cells, the header has 5", 3)  # 1,5 is two cells


@pytest.mark.parametrize(
    ("read", "quarantined", "mostly"), [(0, 0, False), (10, 5, False), (10, 6, True), (1, 1, True), (3, 1, False)]
)
def test_mostly_quarantined_is_more_than_the_share(read, quarantined, mostly):
    from accrual.service.ingest import mostly_quarantined

    assert mostly_quarantined(read, quarantined) is mostly
    assert mostly_quarantined(read, quarantined, share=0.0) is (quarantined > 0)


def test_a_csv_its_map_does_not_describe_names_the_map_and_how_to_set_it():
    from support.fakes.world import FakeWorld

    ingest = FakeWorld().ingest
    with pytest.raises(ReportFormatError) as refused:
        read_report("Transaction ID,Sale Amount\nT1,5\n", "csv", source="f.csv")
    message = str(ingest.map_hint(refused.value, "csv", "awin"))
    assert "column map" in message and "/accrual/partners/awin/columns" in message
    assert "aws ssm put-parameter --name /accrual/partners/awin/columns" in message
    assert ingest.map_hint(refused.value, "admitad", "admitad") is refused.value


@pytest.mark.parametrize("hostile", [*HOSTILE_IDS, "x" * 257, ""])
def test_a_claims_user_id_is_refused_exactly_when_a_clicks_is(hostile):
    from pydantic import ValidationError

    from accrual.domain.claims import ClaimRequest
    from accrual.domain.models import Click

    def refused(model, **fields):
        try:
            model.model_validate(fields)
        except ValidationError as error:
            return {problem["loc"][0] for problem in error.errors()}
        return set()

    click = {"sub_id": "s-1", "clicked_at": "2026-11-03T18:00:00Z", "partner": "aliexpress"}
    assert refused(Click, user_id=hostile, **click) == {"user_id"}
    assert refused(ClaimRequest, user_id=hostile, order_number="123") == {"user_id"}
    assert refused(ClaimRequest, user_id="u-1", order_number=hostile) == {"order_number"}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"columns": {"price": "Price"}}, "columns names 'price', not a normalised field"),
        ({"columns": {"partner": "Network"}}, "columns names 'partner'"),
        ({"statuses": {"Approved": "approved"}}, "statuses maps 'Approved' to 'approved', which is not a status"),
    ],
)
def test_a_map_naming_what_is_not_a_field_or_a_status_is_refused_on_reading(document, words):
    with pytest.raises(ValueError, match=words):
        options_from_json(json.dumps(document))
