"""Partner report lines to normalised order lines: statuses, money units, sub-ids, and every quarantine reason."""

import json
from decimal import Decimal

import pytest

from accrual.domain.models import LineStatus
from accrual.partners import PartnerOptions, ReportFormatError, options_from_json, read_report
from accrual.partners.http import PartnerApiError


def ali_order(**overrides):
    order = {
        "order_id": 8000123456789,
        "sub_order_id": 8000123456790,
        "order_status": "Payment Completed",
        "paid_amount": 1113,
        "finished_amount": 0,
        "estimated_paid_commission": 77,
        "estimated_finished_commission": 0,
        "commission_rate": "7.00%",
        "settled_currency": "USD",
        "is_hot_product": "N",
        "is_affiliate_product": "Y",
        "category_id": 100001,
        "product_id": 1005001234,
        "product_count": 1,
        "tracking_id": "default",
        "custom_parameters": '{"sub_id":"click-1"}',
        "ship_to_country": "RU",
        "created_time": "2026-11-03 10:00:00",
        "paid_time": "2026-11-03 10:05:00",
    }
    order.update(overrides)
    return {key: value for key, value in order.items() if value is not None}


def ali_page(*orders, method="listbyindex"):
    return json.dumps(
        {
            f"aliexpress_affiliate_order_{method}_response": {
                "resp_result": {
                    "resp_code": 200,
                    "resp_msg": "call succeeds",
                    "result": {
                        "current_record_count": len(orders),
                        "max_query_index_id": "100",
                        "min_query_index_id": "1",
                        "orders": {"order": list(orders)},
                    },
                },
                "request_id": "abc",
            }
        }
    )


def admitad_action(positions=None, **overrides):
    action = {
        "id": 31,
        "action_id": 555001,
        "order_id": "A-1001",
        "status": "pending",
        "cart": 11.13,
        "payment": 0.77,
        "currency": "USD",
        "subid": "click-1",
        "promocode": "",
        "action_date": "2026-11-03 18:00:00",
        "click_date": "2026-11-03 17:50:00",
        "closing_date": "2026-12-03 18:00:00",
        "status_updated": "2026-11-03 18:05:00",
        "processed": 0,
        "paid": 0,
        "positions": positions
        if positions is not None
        else [
            {
                "id": 1,
                "amount": "11.13",
                "payment": "0.77",
                "rate": "7",
                "percentage": True,
                "product_id": "1005001234",
                "product_category_id": "100001",
                "datetime": "2026-11-03 18:00:00",
            }
        ],
    }
    action.update(overrides)
    return action


def admitad_page(*actions):
    return json.dumps({"results": list(actions), "_meta": {"count": len(actions), "limit": 100, "offset": 0}})


def one(report):
    assert report.read == len(report.lines) + len(report.quarantined)
    assert len(report.lines) == 1, report.quarantined
    return report.lines[0]


def reason_of(report):
    assert report.read == 1 and not report.lines and len(report.quarantined) == 1
    return report.quarantined[0].reason


# --- AliExpress ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order_status, status, time_field",
    [
        ("Payment Completed", LineStatus.PAID, "paid_time"),
        ("Buyer Confirmed Receipt", LineStatus.RECEIVED, "finished_time"),
        ("Completed Settlement", LineStatus.SETTLED, "completed_settlement_time"),
    ],
)
def test_aliexpress_statuses(order_status, status, time_field):
    order = ali_order(
        order_status=order_status, finished_time="2026-11-10 09:00:00", completed_settlement_time="2026-11-20 09:00:00"
    )
    line = one(read_report(ali_page(order), "aliexpress", source="page"))
    assert line.status is status
    assert (
        line.status_at
        == read_report(ali_page(ali_order(created_time=order[time_field])), "aliexpress", source="p")
        .lines[0]
        .ordered_at
    )


def test_aliexpress_invalid_keeps_the_sub_reason_and_orders_after_the_status_it_replaces():
    paid = one(read_report(ali_page(ali_order()), "aliexpress", source="page"))
    line = one(
        read_report(
            ali_page(ali_order(order_status="Invalid", effect_detail_status="FullRefund")), "aliexpress", source="page"
        )
    )
    assert line.status is LineStatus.INVALID and line.status_detail == "FullRefund"
    assert line.status_at > paid.status_at


def test_aliexpress_settled_line_carries_settlement_time_and_finished_figures():
    order = ali_order(
        order_status="Completed Settlement",
        finished_amount=1000,
        estimated_finished_commission=70,
        completed_settlement_time="2026-11-20 09:00:00",
        finished_time="2026-11-10 09:00:00",
    )
    line = one(read_report(ali_page(order), "aliexpress", source="page"))
    assert (line.amount, line.commission) == (Decimal("10.00"), Decimal("0.70"))
    assert line.settled_at is not None and line.settled_at.isoformat() == "2026-11-20T17:00:00+00:00"


def test_aliexpress_money_is_cents_by_default_and_the_unit_is_one_setting():
    page = ali_page(ali_order())
    cents = one(read_report(page, "aliexpress", source="page"))
    assert (cents.amount, cents.commission, cents.shipping) == (Decimal("11.13"), Decimal("0.77"), Decimal("0"))
    units = one(read_report(page, "aliexpress", source="page", options=options_from_json('{"minor_units": 1}')))
    assert (units.amount, units.commission) == (Decimal("1113"), Decimal("77"))


def test_aliexpress_times_are_pacific_and_ids_are_strings():
    line = one(
        read_report(
            ali_page(ali_order(order_id="8000123456789", sub_order_id=8000123456790)), "aliexpress", source="page"
        )
    )
    assert (line.line_id, line.order_id) == ("8000123456790", "8000123456789")
    assert line.ordered_at.isoformat() == "2026-11-03T18:00:00+00:00"  # 10:00 PST (UTC-8 after Nov 1)
    assert (line.category_id, line.product_id, line.ship_to_country) == ("100001", "1005001234", "RU")


@pytest.mark.parametrize(
    "custom, tracking, expected",
    [
        ('{"sub_id":"click-1"}', "default", "click-1"),
        ('{"other":"x"}', "click-2", "click-2"),
        ("", "click-3", "click-3"),
        (None, "click-4", "click-4"),
    ],
)
def test_aliexpress_sub_id_from_custom_parameters_else_tracking_id(custom, tracking, expected):
    line = one(
        read_report(ali_page(ali_order(custom_parameters=custom, tracking_id=tracking)), "aliexpress", source="page")
    )
    assert line.sub_id == expected


def test_aliexpress_flags():
    line = one(
        read_report(ali_page(ali_order(is_hot_product="Y", is_affiliate_product="N")), "aliexpress", source="page")
    )
    assert line.is_hot and not line.is_affiliate


@pytest.mark.parametrize(
    "overrides, field, value",
    [
        ({"sub_order_id": None}, "sub_order_id", "missing"),
        ({"order_id": None}, "order_id", "missing"),
        ({"paid_amount": None}, "paid_amount", "missing"),
        ({"paid_amount": "11.13"}, "paid_amount", "'11.13'"),
        ({"paid_amount": "abc"}, "paid_amount", "'abc'"),
        ({"paid_amount": True}, "paid_amount", "True"),
        ({"paid_amount": -1113}, "paid_amount", "-1113"),
        ({"paid_amount": 10**12}, "paid_amount", "10000000000"),
        ({"order_status": "Shipped"}, "order_status", "'Shipped'"),
        ({"settled_currency": "US"}, "settled_currency", "'US'"),
        ({"settled_currency": "XYZ"}, "settled_currency", "'XYZ'"),
        ({"created_time": "yesterday"}, "created_time", "'yesterday'"),
        ({"created_time": None, "paid_time": None}, "created_time", "missing"),
        ({"custom_parameters": "{sub_id: broken"}, "custom_parameters", "'{sub_id: broken'"),
        ({"is_hot_product": "maybe"}, "is_hot_product", "'maybe'"),
        ({"sub_order_id": {"id": 1}}, "sub_order_id", "{'id': 1}"),
        ({"ship_to_country": "Russia"}, "ship_to_country", "'RUSSIA'"),
    ],
)
def test_aliexpress_quarantine_reason_names_the_field_and_the_value(overrides, field, value):
    order = ali_order(**overrides)
    for name, given in overrides.items():
        if given is None:
            order.pop(name, None)
    report = read_report(ali_page(order), "aliexpress", source="page")
    reason = reason_of(report)
    assert reason.startswith(field) and value in reason, reason
    assert json.loads(report.quarantined[0].raw).get("sub_order_id") == order.get("sub_order_id")


def test_aliexpress_non_usd_line_takes_the_configured_rate():
    options = PartnerOptions(usd_rates={"RUB": Decimal("92.50")})
    line = one(read_report(ali_page(ali_order(settled_currency="RUB")), "aliexpress", source="p", options=options))
    assert (line.currency, line.usd_rate) == ("RUB", Decimal("92.50"))


def test_a_non_usd_line_without_any_rate_is_accepted_for_the_ledger_to_convert():
    # The ledger converts it at the configuration's fx rate of the line's day (docs/rules.md, "Rates are checked").
    ali = one(read_report(ali_page(ali_order(settled_currency="RUB")), "aliexpress", source="p"))
    adm = one(read_report(admitad_page(admitad_action(currency="EUR")), "admitad", source="p"))
    assert (ali.currency, ali.usd_rate, adm.currency, adm.usd_rate) == ("RUB", None, "EUR", None)


def test_aliexpress_one_bad_line_does_not_stop_the_page_and_counts_hold():
    page = ali_page(
        ali_order(sub_order_id=1),
        ali_order(sub_order_id=2, paid_amount=-5),
        "not an order",
        ali_order(sub_order_id=4, order_status="Invalid"),
    )
    report = read_report(page, "aliexpress", source="page")
    assert (report.read, len(report.lines), len(report.quarantined)) == (4, 2, 2)
    assert [q.position for q in report.quarantined] == [2, 3]
    assert report.quarantined[1].reason.startswith("order='not an order'")


def test_aliexpress_error_answers_and_unreadable_pages():
    with pytest.raises(PartnerApiError, match="ApiCallLimit"):
        read_report(
            json.dumps({"error_response": {"code": "ApiCallLimit", "msg": "App Call Limited"}}),
            "aliexpress",
            source="p",
        )
    with pytest.raises(ReportFormatError):
        read_report("{not json", "aliexpress", source="p")
    with pytest.raises(ReportFormatError):
        read_report(json.dumps({"something": 1}), "aliexpress", source="p")


def test_aliexpress_empty_window_answer_is_an_empty_page():
    page = json.dumps(
        {
            "aliexpress_affiliate_order_listbyindex_response": {
                "resp_result": {"resp_code": 405, "resp_msg": "The result is empty"}
            }
        }
    )
    report = read_report(page, "aliexpress", source="p")
    assert (report.read, report.lines, report.quarantined) == (0, [], [])


# --- Admitad ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "admitad_status, status",
    [
        ("pending", LineStatus.PAID),
        ("approved", LineStatus.SETTLED),
        ("approved_but_stalled", LineStatus.RECEIVED),
        ("declined", LineStatus.INVALID),
    ],
)
def test_admitad_statuses(admitad_status, status):
    line = one(read_report(admitad_page(admitad_action(status=admitad_status)), "admitad", source="p"))
    assert line.status is status
    assert (line.settled_at is not None) == (status is LineStatus.SETTLED)


def test_admitad_positions_become_lines_and_read_counts_positions():
    positions = [
        {"id": 1, "amount": "10.00", "payment": "0.70", "product_category_id": "100001"},
        {"id": 2, "amount": "5.00", "payment": "0.05", "product_category_id": "200002"},
        {"id": 3, "amount": "-1", "payment": "0"},
    ]
    report = read_report(
        admitad_page(admitad_action(positions=positions), admitad_action(action_id=555002, positions=[])),
        "admitad",
        source="p",
    )
    assert (report.read, len(report.lines), len(report.quarantined)) == (4, 3, 1)
    assert [line.line_id for line in report.lines] == ["555001#1", "555001#2", "555002"]
    assert all(line.order_id in ("A-1001",) and line.partner_order_id in ("555001", "555002") for line in report.lines)
    assert report.lines[2].amount == Decimal("11.13")  # no positions: the action's cart
    assert report.quarantined[0].reason.startswith("positions[2].amount=-1")
    assert json.loads(report.quarantined[0].raw)["positions"] == [positions[2]]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"status": "on_hold"}, "status='on_hold'"),
        ({"status": None}, "status: missing"),
        ({"currency": "rub"}, "currency='rub': currency 'rub' is not an ISO 4217 code"),
        ({"currency": "EUR", "usd_rate": "NaN"}, "usd_rate='NaN'"),
        ({"action_date": "03/11/2026", "datetime": None}, "action_date='03/11/2026'"),
        ({"action_id": None, "id": None}, "id: missing"),
    ],
)
def test_admitad_quarantine_reasons(overrides, field):
    action = admitad_action(**overrides)
    for name, value in overrides.items():
        if value is None:
            action.pop(name)
    reason = reason_of(read_report(admitad_page(action), "admitad", source="p"))
    assert reason.startswith(field), reason


def test_admitad_amounts_stay_exact():
    positions = [{"id": 1, "amount": 0.1, "payment": 0.2}]
    page = admitad_page(admitad_action(positions=positions)).replace('"amount": 0.1', '"amount": 0.10000000000000001')
    line = one(read_report(page, "admitad", source="p"))
    assert line.amount == Decimal("0.10000000000000001") and line.commission == Decimal("0.2")


def test_admitad_timezone_is_an_option():
    line = one(
        read_report(
            admitad_page(admitad_action()), "admitad", source="p", options=PartnerOptions(timezone="Europe/Moscow")
        )
    )
    assert line.ordered_at.isoformat() == "2026-11-03T15:00:00+00:00"


def test_the_same_order_from_both_partners_normalises_to_the_same_line():
    # Given the same paid order (11.13 USD, commission 0.77, category 100001, same product, same sub-id and times)
    ali = one(
        read_report(
            ali_page(ali_order(ship_to_country=None, custom_parameters='{"sub_id":"click-1"}')),
            "aliexpress",
            source="p",
        )
    )
    adm = one(
        read_report(
            admitad_page(admitad_action(status_updated="2026-11-03 18:05:00", action_date="2026-11-03 18:00:00")),
            "admitad",
            source="p",
        )
    )
    # Then everything but the partner and its ids is equal
    ids = {"partner", "line_id", "order_id", "partner_order_id", "paid_at"}
    assert ali.model_dump(exclude=ids) == adm.model_dump(exclude=ids)
    for status_pair in (
        ("Completed Settlement", "approved"),
        ("Invalid", "declined"),
        ("Buyer Confirmed Receipt", "approved_but_stalled"),
    ):
        a = one(read_report(ali_page(ali_order(order_status=status_pair[0])), "aliexpress", source="p"))
        b = one(read_report(admitad_page(admitad_action(status=status_pair[1])), "admitad", source="p"))
        assert a.status == b.status


# --- CSV and normalised -------------------------------------------------------------------------------------------

CSV_DEFAULT = (
    "line_id,order_id,sub_id,status,ordered_at,amount,currency,commission,category_id,is_hot\n"
    "L1,O1,click-1,paid,2026-11-03T18:00:00Z,11.13,USD,0.77,100001,false\n"
    "L2,O1,click-1,shipped,2026-11-03T18:00:00Z,5.00,USD,0.10,100001,false\n"
    "L3,O2,click-2,settled,2026-11-03T18:00:00Z,-3,USD,0.10,100001,false\n"
    "L4,O3,click-3,paid,2026-11-03T18:00:00Z,7.00,XX,0.10,100001,false\n"
)


def test_csv_with_the_default_column_map():
    report = read_report(CSV_DEFAULT, "csv", source="drop.csv", options=PartnerOptions(partner="shop"))
    assert (report.read, len(report.lines), len(report.quarantined)) == (4, 1, 3)
    line = report.lines[0]
    assert (line.partner, line.line_id, line.amount, line.status) == ("shop", "L1", Decimal("11.13"), "paid")
    reasons = [q.reason for q in report.quarantined]
    assert reasons[0].startswith("status='shipped'") and reasons[1].startswith("amount=-3")
    assert reasons[2].startswith("currency='XX'")
    assert report.quarantined[0].raw.startswith("L2,O1")


def test_csv_column_map_is_configuration():
    options = options_from_json(
        json.dumps(
            {
                "columns": {
                    "line_id": "Transaction ID",
                    "order_id": "Order No",
                    "amount": "Sale Amount",
                    "status": "State",
                    "ordered_at": "Date",
                    "sub_id": "SubID",
                },
                "statuses": {"Approved": "settled"},
                "delimiter": ";",
                "decimal_separator": ",",
                "timezone": "Europe/Moscow",
                "partner": "awin",
            }
        )
    )
    text = "Transaction ID;Order No;Sale Amount;State;Date;SubID\nT-9;999;12,50;Approved;2026-11-03 21:00:00;c-9\n"
    line = one(read_report(text.encode(), "csv", source="drop.csv", options=options))
    assert (line.partner, line.line_id, line.order_id, line.amount, line.status) == (
        "awin",
        "T-9",
        "999",
        Decimal("12.50"),
        LineStatus.SETTLED,
    )
    assert line.ordered_at.isoformat() == "2026-11-03T18:00:00+00:00"


def test_csv_without_a_required_column_is_refused_as_a_whole():
    with pytest.raises(ReportFormatError, match="amount"):
        read_report("line_id,order_id,status,ordered_at\nL1,O1,paid,2026-11-03T18:00:00Z\n", "csv", source="x")
    with pytest.raises(ValueError, match="not a normalised field"):
        read_report(CSV_DEFAULT, "csv", source="x", options=PartnerOptions(columns={"price": "Price"}))


def test_normalized_lines_and_bad_json():
    good = {
        "partner": "aliexpress",
        "line_id": "1",
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
    text = "\n".join([json.dumps(good), "{broken", "", json.dumps({**good, "amount": "-1"}), "[1]"])
    report = read_report(text, "normalized", source="f.jsonl")
    assert (report.read, len(report.lines), len(report.quarantined)) == (4, 1, 3)
    assert report.lines[0].amount == Decimal("11.13")
    assert "not valid JSON" in report.quarantined[0].reason and report.quarantined[0].raw == "{broken"
    assert report.quarantined[1].reason.startswith("amount='-1'")


def test_unknown_partner_format():
    with pytest.raises(ValueError, match="unknown partner"):
        read_report("", "awin", source="x")
