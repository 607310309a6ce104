"""A deterministic world of shoppers, clicks and partner orders for the simulator to serve.

The same seed gives the same world: AliExpress sub-orders (several sharing one order_id, hot and non-affiliate
products, statuses that move from paid to receipt to settlement days or weeks later, some invalidated, a few listed
twice) and Admitad actions (positions, pending -> approved or declined weeks later, some in RUB or EUR, a few declined
after approval). Each order is tied to a click whose `sub_id` the partner echoes back, except a few (unattributed).
Every record knows its history, so the simulator answers "as of" its clock.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

# category id -> (name, commission rate of the programme). The ids are what the reports carry; "200001" is the
# gift-card category a demo configuration lists as virtual.
CATEGORIES = {
    "100001": ("garden tools", "7.00%"),
    "44": ("consumer electronics", "3.00%"),
    "66": ("beauty and health", "8.00%"),
    "3": ("apparel", "9.00%"),
    "7": ("computer and office", "3.00%"),
    "200001": ("gift cards", "1.00%"),
}
COUNTRIES = (("RU", "RUB"), ("UA", "UAH"), ("KZ", "KZT"), ("US", "USD"), ("DE", "EUR"))
USD_RATES = {"RUB": Decimal("92.50"), "EUR": Decimal("0.93")}
TRACKING_ID = "cashback_site"


@dataclass
class Change:
    at: datetime
    status: str
    detail: str | None = None


def changes_until(history: list[Change], now: datetime) -> list[Change]:
    """The status changes a partner has published by `now` (its report shows the last one)."""
    return [change for change in history if change.at <= now]


@dataclass
class AliOrder:
    """One AliExpress sub-order with its status history."""

    index_id: int
    fields: dict[str, Any]
    history: list[Change]
    listed_twice: bool = False

    def as_of(self, now: datetime) -> dict[str, Any] | None:
        seen = changes_until(self.history, now)
        if not seen:
            return None
        record = dict(self.fields)
        current = seen[-1]
        record["order_status"] = current.status
        if current.detail:
            record["effect_detail_status"] = current.detail
        for change in seen:
            name = {
                "Payment Completed": "paid_time",
                "Buyer Confirmed Receipt": "finished_time",
                "Completed Settlement": "completed_settlement_time",
            }.get(change.status)
            if name:
                record[name] = pacific_text(change.at)
        if current.status in ("Buyer Confirmed Receipt", "Completed Settlement"):
            record["finished_amount"] = record["paid_amount"]
            record["estimated_finished_commission"] = record["estimated_paid_commission"]
        return record

    def event_time(self, time_type: str, now: datetime) -> datetime | None:
        status = {
            "Payment Completed Time": "Payment Completed",
            "Buyer Confirmed Receipt Time": "Buyer Confirmed Receipt",
            "Completed Settlement Time": "Completed Settlement",
        }.get(time_type)
        for change in self.history:
            if change.status == status and change.at <= now:
                return change.at
        return None


@dataclass
class AdmitadAction:
    fields: dict[str, Any]
    history: list[Change]
    listed_twice: bool = False

    def as_of(self, now: datetime) -> dict[str, Any] | None:
        seen = changes_until(self.history, now)
        if not seen:
            return None
        record = dict(self.fields)
        record["status"] = seen[-1].status
        record["status_updated"] = admitad_text(seen[-1].at)
        if seen[-1].status == "approved":
            record["closing_date"] = admitad_text(seen[-1].at)
            record["processed"] = 1
        return record

    def status_updated(self, now: datetime) -> datetime | None:
        seen = [change for change in self.history if change.at <= now]
        return seen[-1].at if seen else None


@dataclass
class World:
    seed: int
    start: datetime
    end: datetime
    clicks: list[dict[str, Any]] = field(default_factory=list)
    aliexpress: list[AliOrder] = field(default_factory=list)
    admitad: list[AdmitadAction] = field(default_factory=list)
    usd_rates: dict[str, Decimal] = field(default_factory=lambda: dict(USD_RATES))

    def clicks_jsonl(self) -> str:
        return "".join(json.dumps(click) + "\n" for click in self.clicks)


def pacific_text(moment: datetime) -> str:
    return moment.astimezone(PACIFIC).strftime("%Y-%m-%d %H:%M:%S")


def admitad_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def generate(seed: int, *, start: datetime, days: int = 30, orders_per_day: int = 8, users: int = 40) -> World:
    """The world of `days` days from `start` (orders are placed in it; their later statuses may fall after it)."""
    rng = random.Random(seed)
    start = start.astimezone(UTC)
    world = World(seed=seed, start=start, end=start + timedelta(days=days))
    shoppers = [(f"user-{seed}-{number:04d}", *rng.choice(COUNTRIES)) for number in range(users)]
    click_no = 0

    def click(partner: str, at: datetime) -> str:
        nonlocal click_no
        click_no += 1
        user_id, country, currency = rng.choice(shoppers)
        sub_id = f"{partner[:2]}{seed}x{click_no:06d}"
        world.clicks.append(
            {
                "sub_id": sub_id,
                "user_id": user_id,
                "clicked_at": at.isoformat(),
                "partner": partner,
                "account_currency": currency,
                "country": country,
            }
        )
        return sub_id

    index_id = 10_000
    order_no = 8_100_000_000_000 + seed * 1_000_000
    for day in range(days):
        for _ in range(orders_per_day):
            created = start + timedelta(days=day, seconds=rng.randrange(86_400))
            clicked = created - timedelta(minutes=rng.randrange(2, 240))
            # A few orders echo a sub-id the site never recorded: unattributed, kept for a claim.
            sub_id = click("aliexpress", clicked) if rng.random() > 0.05 else f"unknown-{rng.randrange(10**6)}"
            order_no += rng.randrange(1, 50)
            paid = created + timedelta(minutes=rng.randrange(1, 60))
            country = rng.choice(COUNTRIES)[0]
            for sub in range(rng.choice((1, 1, 1, 2, 2, 3))):
                index_id += rng.randrange(1, 5)
                world.aliexpress.append(
                    _ali_sub_order(
                        rng, index_id, str(order_no), order_no * 10 + sub + 1, sub_id, created, paid, country
                    )
                )
        for _ in range(max(1, orders_per_day // 2)):
            created = start + timedelta(days=day, seconds=rng.randrange(86_400))
            sub_id = click("admitad", created - timedelta(minutes=rng.randrange(2, 240)))
            world.admitad.append(_admitad_action(rng, 900_000 + len(world.admitad), sub_id, created))
    return world


def _ali_sub_order(
    rng: random.Random,
    index_id: int,
    order_id: str,
    sub_order_id: int,
    sub_id: str,
    created: datetime,
    paid: datetime,
    country: str,
) -> AliOrder:
    category = rng.choice(list(CATEGORIES))
    hot = rng.random() < 0.1
    affiliate = rng.random() > 0.1
    rate_text = "20.00%" if hot else ("1.00%" if not affiliate else CATEGORIES[category][1])
    # Mostly everyday amounts, now and then a large one that meets the 40 USD cap.
    amount_cents = rng.randrange(99, 6_000) if rng.random() > 0.05 else rng.randrange(50_000, 200_000)
    commission = int(_cents(Decimal(amount_cents) * Decimal(rate_text.rstrip("%")) / 100))
    with_custom = rng.random() > 0.2
    fields = {
        "order_id": int(order_id) if rng.random() > 0.5 else order_id,  # the API mixes numbers and strings
        "sub_order_id": sub_order_id,
        "paid_amount": amount_cents,
        "finished_amount": 0,
        "estimated_paid_commission": commission,
        "estimated_finished_commission": 0,
        "commission_rate": rate_text,
        "incentive_commission_rate": "0.00%",
        "new_buyer_bonus_commission": 0,
        "settled_currency": "USD",
        "is_hot_product": "Y" if hot else "N",
        "is_new_buyer": "Y" if rng.random() < 0.1 else "N",
        "is_affiliate_product": "Y" if affiliate else "N",
        "category_id": int(category),
        "product_id": 1_005_000_000_000 + rng.randrange(10**9),
        "product_count": rng.choice((1, 1, 2)),
        "product_title": f"{CATEGORIES[category][0]} item",
        "tracking_id": TRACKING_ID if with_custom else sub_id,
        "custom_parameters": json.dumps({"sub_id": sub_id}) if with_custom else "",
        "ship_to_country": country,
        "order_type": "Global",
        "created_time": pacific_text(created),
    }
    history = [Change(paid, "Payment Completed")]
    roll = rng.random()
    if roll < 0.08:
        history.append(
            Change(
                paid + timedelta(days=rng.randrange(1, 4), hours=rng.randrange(24)),
                "Invalid",
                rng.choice(("FullRefund", "Antispam")),
            )
        )
    elif roll < 0.85:
        receipt = paid + timedelta(days=rng.randrange(5, 20), hours=rng.randrange(24))
        history.append(Change(receipt, "Buyer Confirmed Receipt"))
        if rng.random() < 0.8:
            history.append(Change(receipt + timedelta(days=rng.randrange(3, 15)), "Completed Settlement"))
    return AliOrder(index_id=index_id, fields=fields, history=history, listed_twice=rng.random() < 0.03)


def _admitad_action(rng: random.Random, action_id: int, sub_id: str, created: datetime) -> AdmitadAction:
    currency = rng.choices(("USD", "RUB", "EUR"), weights=(80, 15, 5))[0]
    scale = {"USD": Decimal(1), "RUB": USD_RATES["RUB"], "EUR": USD_RATES["EUR"]}[currency]
    positions = []
    for number in range(1, rng.choice((1, 1, 2, 3)) + 1):
        category = rng.choice([key for key in CATEGORIES if key != "200001"])
        rate = Decimal(CATEGORIES[category][1].rstrip("%"))
        amount = _cents(Decimal(rng.randrange(199, 8_000)) / 100 * scale)
        positions.append(
            {
                "id": number,
                "amount": amount,
                "payment": _cents(amount * rate / 100),
                "rate": rate,
                "percentage": True,
                "product_id": str(2_000_000 + rng.randrange(10**6)),
                "product_category_id": category,
                "datetime": admitad_text(created),
            }
        )
    cart = sum((position["amount"] for position in positions), Decimal(0))
    fields = {
        "id": action_id,
        "action_id": action_id,
        "order_id": f"AD-{action_id}",
        "action": "Sale",
        "action_type": "sale",
        "advcampaign_id": 6115,
        "advcampaign_name": "Cashback store",
        "cart": cart,
        "payment": sum((position["payment"] for position in positions), Decimal(0)),
        "currency": currency,
        "subid": sub_id,
        "subid1": None,
        "subid2": None,
        "subid3": None,
        "subid4": None,
        "promocode": "",
        "click_date": admitad_text(created - timedelta(minutes=rng.randrange(2, 120))),
        "action_date": admitad_text(created),
        "closing_date": None,
        "processed": 0,
        "paid": 0,
        "positions": positions,
    }
    pending = created + timedelta(minutes=rng.randrange(1, 30))
    history = [Change(pending, "pending")]
    roll = rng.random()
    decided = pending + timedelta(days=rng.randrange(7, 30))
    if roll < 0.1:
        history.append(Change(decided, "declined"))
    elif roll < 0.9:
        if rng.random() < 0.2:
            history.append(Change(decided, "approved_but_stalled"))
            decided += timedelta(days=rng.randrange(1, 7))
        history.append(Change(decided, "approved"))
        if rng.random() < 0.03:  # declined after approval: a reversal
            history.append(Change(decided + timedelta(days=rng.randrange(1, 10)), "declined"))
    return AdmitadAction(fields=fields, history=history, listed_twice=rng.random() < 0.03)
