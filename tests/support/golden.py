"""Golden decisions: a seeded month of orders and the decision the rules stored for each, kept under
`tests/golden/month.jsonl` and compared byte for byte by `tests/property/test_golden_decisions.py`.

The file holds each order's inputs (lines, click, configuration, times) beside its stored decision, so the check does
not depend on this generator staying the same. When the rules change on purpose, `make golden` writes the file again
and the change is reviewed in its diff: every order whose money, codes or trail moved shows as a changed line.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from accrual.domain.decision import MissingFxRate
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.domain.rules import decide_order
from support.builders import config

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "month.jsonl"
SEED = 20261101
ORDERS = 240

CONFIGS: dict[str, AccrualConfig] = {
    "example": config(),
    "tight": config(
        cap_usd="5.00", max_rate="0.10", min_cashback_usd="0.50", awaiting_payment_days=1, own_promo_codes=["OURS"]
    ),
    "tiny-cap-vat": config(cap_usd="0.05", vat_rates={"RU": "0.20", "DE": "0.19"}),
}
TIMES = ["2025-06-01T00:00:00Z", "2026-11-10T12:00:00Z", "2026-11-11T10:00:00Z", "2026-11-13T08:30:00Z"]


def canonical(value: object) -> str:
    """The ledger's stored form of a decision: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _line(rng: random.Random, line_id: str) -> dict[str, Any]:
    places = rng.choice([0, 2, 4])
    amount = (Decimal(rng.randint(0, 2000 * 10**places)) / Decimal(10**places)).quantize(Decimal(1).scaleb(-places))
    currency, usd_rate = rng.choice([("USD", None), ("EUR", "0.9"), ("RUB", "92.7"), ("RUB", None)])
    return {
        "partner": "aliexpress",
        "line_id": line_id,
        "order_id": "O-1",
        "sub_id": "sub-1",
        "status": rng.choice(["paid"] * 3 + ["settled"] * 4 + ["received", "awaiting_payment", "invalid"]),
        "status_detail": rng.choice([None] * 5 + ["FullRefund", "x" * 120]),
        "status_at": "2026-11-13T09:00:00Z",
        "ordered_at": rng.choice(TIMES[1:]),
        "paid_at": rng.choice([None] + ["2026-11-13T09:00:00Z"] * 5 + ["2026-11-19T00:00:00Z"] * 2),
        "amount": str(amount),
        "shipping": rng.choice(["0", "3.50"]),
        "tax": rng.choice([None, "0", str((amount / 6).quantize(Decimal("0.01")))]),
        "currency": currency,
        "usd_rate": usd_rate,
        "category_id": rng.choice(["100001", "100001", "200002", "300003", "300003", "software", None]),
        "shop_id": rng.choice(["shop-1", "shop-2", "shop-3", "shop-4", "plaza", None]),
        "is_affiliate": rng.random() < 0.8,
        "is_hot": rng.random() < 0.2,
        "promo_section": rng.choice([None] * 9 + ["3_for_5_99"]),
        "promo_code": rng.choice([None, None, "CODE", " ours "]),
        "promo_code_kind": rng.choice([None, None, "service", "seller_coupon", "other"]),
        "added_to_cart_at": rng.choice([None] * 9 + ["2026-11-01T00:00:00Z"]),
        "dispute": rng.random() < 0.03,
        "price_adjusted": rng.random() < 0.03,
        "ship_to_country": rng.choice([None, "RU", "DE"]),
        "new_user_coupon": rng.random() < 0.1,
        "buyer_account": rng.choice([None, "acc-1", "acc-2"]),
        # the partner's commission, from the amount alone (no draw, so the other choices stay as they were)
        "commission": str((amount * Decimal("0.021")).quantize(Decimal("0.01"))),
    }


def _order(rng: random.Random, number: int) -> dict[str, Any]:
    ids = rng.sample("abcdef", rng.choice([1, 1, 1, 2, 2, 3, 5]))
    click = None
    if rng.random() < 0.85:
        click = {
            "sub_id": "sub-1",
            "user_id": "user-1",
            "clicked_at": rng.choice(TIMES),
            "partner": "aliexpress",
            "account_currency": rng.choice(["USD", "USD", "RUB", "RUB", "EUR", "GBP"]),
        }
    return {
        "case": f"order-{number:04d}",
        "config": rng.choice(sorted(CONFIGS)),
        "lines": [_line(rng, line_id) for line_id in ids],
        "click": click,
        "now": f"2026-11-{rng.choice([14, 20])}T12:00:00Z",
        "credited_on": rng.choice([None, "2026-11-25"]),
        "other_new_user_coupon_accounts": rng.choice([[], [], ["acc-1"]]),
        "conflict": rng.choice([[]] * 9 + [["user-1", "user-2"]]),
    }


def decide(case: dict[str, Any]) -> str:
    """The stored form of the case's decision, or the refusal the rules raise for it."""
    try:
        decision = decide_order(
            [OrderLine.model_validate(line) for line in case["lines"]],
            Click.model_validate(case["click"]) if case["click"] else None,
            CONFIGS[case["config"]],
            now=datetime.fromisoformat(case["now"]).astimezone(UTC),
            credited_on=date.fromisoformat(case["credited_on"]) if case["credited_on"] else None,
            other_new_user_coupon_accounts=frozenset(case["other_new_user_coupon_accounts"]),
            conflict=tuple(case["conflict"]),
        )
    except MissingFxRate as error:
        return f"MissingFxRate: {error}"
    return canonical(decision.to_dict())


def month() -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    return [_order(rng, number) for number in range(ORDERS)]


def read() -> list[dict[str, Any]]:
    return [json.loads(text) for text in GOLDEN.read_text(encoding="utf-8").splitlines() if text]


def write() -> int:
    rows = []
    for case in month():
        outcome = decide(case)
        stored = outcome if outcome.startswith("MissingFxRate") else json.loads(outcome)
        rows.append(canonical({**case, "decision": stored}))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/support/golden.py --write   (make golden)")
    print(f"{write()} golden decisions written to {GOLDEN}")
