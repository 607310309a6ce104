"""A quarantine reason names the partner's own field and quotes the value as the partner wrote it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_partner_mapping import admitad_action, admitad_page, ali_order, ali_page

from accrual.partners import read_report


def reason(text, report_format):
    report = read_report(text, report_format, source="page.json")
    assert report.read == 1 and not report.lines, report.lines
    return report.quarantined[0].reason


def test_an_aliexpress_amount_out_of_range_is_quoted_as_written():
    text = ali_page(ali_order()).replace('"paid_amount": 1113', '"paid_amount": 1e400')
    assert "paid_amount=1e400" in reason(text, "aliexpress")
    assert "E+" not in reason(text, "aliexpress")


def test_an_aliexpress_amount_above_the_line_limit_is_quoted_in_minor_units():
    # 150,000,000,000 cents pass the minor-units check and fail the order line's limit as 1,500,000,000.00 USD
    text = ali_page(ali_order(paid_amount=150000000000))
    assert "paid_amount (amount)=150000000000" in reason(text, "aliexpress")


def test_a_finished_aliexpress_order_names_the_finished_amount():
    text = ali_page(
        ali_order(
            order_status="Buyer Confirmed Receipt", finished_amount=200000000000, finished_time="2026-11-10 10:00:00"
        )
    )
    assert "finished_amount (amount)=200000000000" in reason(text, "aliexpress")


def test_an_admitad_action_without_positions_names_cart():
    text = admitad_page(admitad_action(positions=[], cart="12,5,0"))
    assert reason(text, "admitad").startswith("cart=")
    text = admitad_page(admitad_action(positions=[], cart=5000000))
    assert reason(text, "admitad").startswith("cart (amount)=5000000")


def test_an_admitad_position_names_its_index():
    positions = [{"id": 1, "amount": "1.00", "payment": "0.1"}, {"id": 2, "amount": "9000000", "payment": "0.1"}]
    report = read_report(admitad_page(admitad_action(positions=positions)), "admitad", source="page.json")
    assert len(report.lines) == 1
    assert report.quarantined[0].reason.startswith("positions[1].amount (amount)=9000000")


def test_an_unreadable_position_amount_names_the_position():
    positions = [{"id": 1, "amount": "1.00", "payment": "0.1"}, {"id": 2, "amount": "12,5,0", "payment": "0.1"}]
    report = read_report(admitad_page(admitad_action(positions=positions)), "admitad", source="page.json")
    assert report.quarantined[0].reason == (
        "positions[1].amount='12,5,0': not an amount written with decimal separator '.' and no thousands separator"
    )


def test_an_admitad_action_without_a_date_names_action_date():
    assert reason(admitad_page(admitad_action(positions=[], action_date=None)), "admitad") == "action_date: missing"


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=10**7, max_value=10**30, places=2))
def test_a_normalised_amount_is_quoted_exactly_as_its_json_text(amount):
    text = (
        f'{{"partner": "aliexpress", "line_id": "1", "order_id": "1", "status": "paid", "currency": "USD", '
        f'"status_at": "2026-11-01T00:00:00Z", "ordered_at": "2026-11-01T00:00:00Z", "amount": {amount}}}'
    )
    assert reason(text, "normalized").startswith(f"amount={amount}:")
