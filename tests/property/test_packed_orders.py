"""An order packed in its item reads back exactly as written: every line's JSON byte for byte (whatever its fields,
its texts, its order number or its tombstone), the decision as decided, every field of the order; on the golden
month's lines and decisions and on generated ones."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from accrual.adapters.ledger_packing import pack_order, unpack_order, written_line
from accrual.domain.models import OrderLine
from accrual.ports.ledger import OrderItem, StoredLine
from support.golden import GOLDEN

KEY = "aliexpress#O-1"
texts = st.text(min_size=1, max_size=40)
times = st.sampled_from(["2026-11-13T09:00:00Z", "2026-11-13T09:00:00.123456Z", "2026-11-18T00:00:00+03:00"])
money = st.decimals(min_value=0, max_value=10**6, places=2) | st.sampled_from(["0", "0.00", "0.0", "1", "12.5"])


@st.composite
def lines(draw: st.DrawFn, line_id: str) -> OrderLine:
    optional = {
        "partner_order_id": st.none() | st.sampled_from(["O-1", "P-7"]) | texts,
        "sub_id": st.none() | texts,
        "status_detail": st.none() | texts,
        "paid_at": st.none() | times,
        "settled_at": st.none() | times,
        "shipping": money,
        "tax": st.none() | st.sampled_from(["0", "0.00", "1.10"]),
        "currency": st.sampled_from(["USD", "EUR", "RUB"]),
        "usd_rate": st.none() | st.sampled_from(["0.9", "92.70", "1"]),
        "commission": money,
        "category_id": st.none() | texts,
        "product_id": st.none() | texts,
        "shop_id": st.none() | texts,
        "is_affiliate": st.booleans(),
        "is_hot": st.booleans(),
        "promo_section": st.none() | texts,
        "promo_code": st.none() | texts,
        "promo_code_kind": st.none() | st.sampled_from(["service", "seller_coupon", "other"]),
        "new_user_coupon": st.booleans(),
        "buyer_account": st.none() | texts,
        "added_to_cart_at": st.none() | times,
        "dispute": st.booleans(),
        "price_adjusted": st.booleans(),
        "ship_to_country": st.none() | st.sampled_from(["RU", "DE", "US"]),
    }
    values = {
        "partner": "aliexpress",
        "line_id": line_id,
        "order_id": draw(st.sampled_from(["O-1", "O-1", "O-2"])),  # a tombstone's version may name another order
        "status": draw(st.sampled_from(["paid", "settled", "received", "awaiting_payment", "invalid"])),
        "status_at": draw(times),
        "ordered_at": draw(times),
        "amount": draw(money),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            values[name] = draw(strategy)
    try:
        line = OrderLine.model_validate(values)
    except ValidationError:
        assume(False)
    return line


def order(**changes) -> OrderItem:
    values = {
        "partner": "aliexpress",
        "order_id": "O-1",
        "user_id": "user-1",
        "sub_id": "sub-1",
        "ordered_at": "2026-11-13T08:00:00.000000Z",
        "state": "pending",
        "decided_at": "2026-11-14T12:00:00.000000Z",
        "account_currency": "RUB",
        "fx_rate": Decimal("92.70"),
        "pending_usd": Decimal("1.23"),
        "pending": Decimal("114.02"),
        "entries": 2,
        "version": 3,
    }
    return OrderItem(KEY, **{**values, **changes})


def round_trip(item: OrderItem, decision: str | None, written: list) -> tuple[OrderItem, str | None, list[StoredLine]]:
    packed = pack_order(item, decision, written)
    plain = {name: getattr(item, name) for name in ("user_id", "sub_id", "ordered_at", "due_at", "version")}
    plain["partner_order_id"] = None if item.partner_order_id == item.order_id else item.partner_order_id
    read, text, stored = unpack_order(KEY, plain, packed)
    return read, text, [line.stored for line in stored]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data(), count=st.integers(min_value=1, max_value=4), moved=st.booleans())
def test_generated_lines_read_back_byte_for_byte(data, count, moved):
    generated = [data.draw(lines(f"O-1#{index}")) for index in range(count)]
    moved_to = ["aliexpress#O-2" if moved and index == 0 else None for index in range(count)]
    written = [written_line(KEY, line, target) for line, target in zip(generated, moved_to, strict=True)]
    item = order(partner_order_id=data.draw(st.sampled_from([None, "O-1", "P-7"])))
    read, text, stored = round_trip(item, '{"trail":[]}', written)
    assert read == item and text == '{"trail":[]}'
    expected = sorted(
        (StoredLine(line.model_dump_json(), target) for line, target in zip(generated, moved_to, strict=True)),
        key=lambda line: json.loads(line.body)["line_id"],
    )
    assert stored == expected


def test_the_golden_months_lines_and_decisions_read_back_byte_for_byte():
    for row in GOLDEN.read_text().splitlines():
        case = json.loads(row)
        decision = case["decision"]
        text = json.dumps(decision, sort_keys=True, separators=(",", ":")) if isinstance(decision, dict) else None
        cased = [OrderLine.model_validate({**line, "order_id": "O-1"}) for line in case["lines"]]
        read, stored_text, stored = round_trip(order(), text, [written_line(KEY, line, None) for line in cased])
        assert stored_text == text
        assert stored == sorted(
            (StoredLine(line.model_dump_json()) for line in cased), key=lambda line: json.loads(line.body)["line_id"]
        )
