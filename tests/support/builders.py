"""Small builders for the accrual rules' tests: a configuration like the rules' worked example, a click, an order line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from accrual.domain.models import AccrualConfig, Click, OrderLine

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CLICKED_AT = "2026-11-11T10:00:00Z"  # inside the 11.11 promotion of the example configuration
ORDERED_AT = "2026-11-13T08:00:00Z"  # after the promotion ended
PAID_AT = "2026-11-13T09:00:00Z"


def config(**changes: Any) -> AccrualConfig:
    data: dict[str, Any] = {
        "version": "2026-11-01",
        "rate_cards": [
            {
                "partner": "aliexpress",
                "valid_from": "2026-01-01T00:00:00Z",
                "valid_to": None,
                "default_rate": "0.03",
                "non_affiliate_rate": "0.01",
                "hot_product_rate": "0.12",
                "categories": {"100001": "0.055", "200002": "0.15"},
            }
        ],
        "promotions": [
            {
                "partner": "aliexpress",
                "categories": ["100001"],
                "rate": "0.08",
                "starts_at": "2026-11-11T00:00:00Z",
                "ends_at": "2026-11-12T00:00:00Z",
            }
        ],
        "excluded_shops": ["plaza"],
        "virtual_categories": ["gift_cards", "software"],
        "vat_rates": {"RU": "0.20"},
        "fx_rates": {
            "2026-11-01": {"RUB": "92.50", "EUR": "0.93"},
            "2026-11-10": {"RUB": "95.00"},
            "2026-11-20": {"RUB": "99.00"},
        },
        "cap_usd": "40.00",
        "min_cashback_usd": "0.01",
        "awaiting_payment_days": 3,
    }
    data.update(changes)
    return AccrualConfig.model_validate(data)


def click(**changes: Any) -> Click:
    data: dict[str, Any] = {
        "sub_id": "sub-1",
        "user_id": "user-1",
        "clicked_at": CLICKED_AT,
        "partner": "aliexpress",
        "account_currency": "USD",
    }
    data.update(changes)
    return Click.model_validate(data)


def line(line_id: str = "L1", **changes: Any) -> OrderLine:
    data: dict[str, Any] = {
        "partner": "aliexpress",
        "line_id": line_id,
        "order_id": "O-1",
        "sub_id": "sub-1",
        "status": "paid",
        "status_at": PAID_AT,
        "ordered_at": ORDERED_AT,
        "paid_at": PAID_AT,
        "amount": "100.00",
        "shipping": "0",
        "currency": "USD",
        "category_id": "300003",  # not on the card: the default 3%
        "shop_id": "shop-1",
        "is_affiliate": True,
        "is_hot": False,
    }
    data.update(changes)
    return OrderLine.model_validate(data)
