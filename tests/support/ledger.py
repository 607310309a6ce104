"""Builders and readers for the ledger's tests against the local stack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3

from accrual.adapters import reference_data
from accrual.adapters.ledger_items import _item, _order_item, due_shard, outbox_messages, stored_order
from accrual.adapters.ledger_packing import pack_order, written_line
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.adapters.ledger_tables import (
    BalanceRecord,
    DecisionRecord,
    JournalEntryRecord,
    LineRecord,
    OrderRecord,
    OutboxRecord,
    bind_ledger_tables,
)
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.ports.ledger import ORDER_FIELDS, OutboxMessage, utc_text
from accrual.settings import Settings

T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "version": "ledger-1",
    "rate_cards": [
        {
            "partner": "aliexpress",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": None,
            "default_rate": "0.03",
            "non_affiliate_rate": "0.01",
            "hot_product_rate": "0.12",
            "categories": {"tools": "0.05"},
        }
    ],
    "promotions": [],
    "excluded_shops": ["plaza"],
    "virtual_categories": ["gift_cards"],
    "vat_rates": {},
    "fx_rates": {"2026-01-01": {"EUR": "0.90"}},
    "cap_usd": "40.00",
    "min_cashback_usd": "0.01",
    "awaiting_payment_days": 3,
    "hold_days": {"aliexpress": 1},
}


def load_reference_data(settings: Settings, users: dict[str, str] | None = None, **config_changes) -> AccrualConfig:
    """Store the configuration and one click per user (sub_id = 'c-<user>'), account currency as given."""
    bind_ledger_tables(settings)
    config = AccrualConfig.model_validate({**CONFIG, **config_changes})
    reference_data.save_config(config, now=T0)
    users = users if users is not None else {"alice": "EUR"}
    reference_data.save_clicks(clicks(users), now=T0)
    return config


def line(
    order: str,
    line_id: str | None = None,
    *,
    status: str = "paid",
    at: datetime = T0,
    user: str = "alice",
    amount: str = "100.00",
    **changes,
) -> OrderLine:
    data: dict[str, Any] = {
        "partner": "aliexpress",
        "line_id": line_id or f"{order}-1",
        "order_id": order,
        "sub_id": f"c-{user}",
        "status": status,
        "status_at": at.isoformat(),
        "ordered_at": T0.isoformat(),
        "paid_at": (T0 + timedelta(minutes=5)).isoformat(),
        "amount": amount,
        "shipping": "0",
        "currency": "USD",
        "commission": "1.00",
        "category_id": "tools",
        "product_id": "p1",
        "shop_id": "s1",
        "is_affiliate": True,
        "is_hot": False,
        "buyer_account": "a",
        "ship_to_country": "FR",
    }
    if status == "settled":
        data["settled_at"] = at.isoformat()
    data.update(changes)
    return OrderLine.model_validate(data)


def balance_of(user: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    try:
        record = BalanceRecord.get(user, consistent_read=True)
    except BalanceRecord.DoesNotExist:
        return (Decimal("0"),) * 4
    return tuple(
        getattr(record, name) or Decimal("0") for name in ("pending_usd", "confirmed_usd", "pending", "confirmed")
    )


def to_earlier_form(settings: Settings, key: str, *, listed: bool = True, indexed: bool = True) -> None:
    """Write an order as the versions before packed orders stored it: every field plain on the order item (which
    lists its line ids when `listed`), the decision and each line an item of their own (the line carrying the by_line
    index key when `indexed`). The version stays as it was."""
    loaded = DynamoLedgerStore(settings).load_order(key)
    order = loaded.order
    assert order is not None
    lines = [OrderLine.model_validate_json(item.body) for item in loaded.lines]
    values = {name: getattr(order, name) for name in ORDER_FIELDS}
    values.update(pk=key, sk="ORDER", due_shard=due_shard(key) if order.due_at else None)
    if listed:
        values["line_ids"] = sorted(line.line_id for line in lines)
    boto3.client("dynamodb").put_item(TableName=settings.orders_table, Item=_item(OrderRecord, values))
    if loaded.decision is not None:
        DecisionRecord.of(key, loaded.decision).save()
    for line, stored in zip(lines, loaded.lines, strict=True):
        LineRecord(
            key,
            f"LINE#{line.line_id}",
            line_ref=f"{line.partner}#{line.line_id}" if indexed else None,
            moved_to=stored.moved_to,
            status=line.status.value,
            status_at=utc_text(line.status_at),
            body=stored.body,
        ).save()


def plant_lines(settings: Settings, key: str, lines: list[OrderLine]) -> None:
    """Give a packed order item these lines, past the ledger (a fault for the audit to find)."""
    record = OrderRecord.get(key, "ORDER", consistent_read=True)
    order, decision, _ = stored_order(record)
    packed = pack_order(order, decision, [written_line(key, line, None) for line in lines])
    record.update(actions=[OrderRecord.packed.set(packed)])


def snapshot() -> dict[str, Any]:
    """Everything the ledger owns, in a comparable form (times of writing left out)."""
    orders = {}
    for record in OrderRecord.scan(OrderRecord.sk == "ORDER"):
        if record.packed is not None:
            item, decision, _ = stored_order(record)
        else:  # an order of the earlier form
            item, decision = _order_item(record), DecisionRecord.get(record.pk, "ORDER#DECISION").text
        orders[item.key] = (
            item.state,
            str(item.pending_usd),
            str(item.confirmed_usd),
            str(item.pending),
            str(item.confirmed),
            decision,
            item.due_at,
        )
    journal = sorted(
        (item.entry_id, item.digest) for item in JournalEntryRecord.scan(JournalEntryRecord.sk.startswith("ENTRY#"))
    )
    balances = {
        item.user_id: tuple(
            str(getattr(item, name) or 0) for name in ("pending_usd", "confirmed_usd", "pending", "confirmed")
        )
        for item in BalanceRecord.scan()
    }
    outbox = sorted((message.event_id, message.event_type, message.body) for message in stored_outbox())
    return {"orders": orders, "journal": journal, "balances": balances, "outbox": outbox}


def stored_outbox() -> list[OutboxMessage]:
    """The notifications the outbox table holds, each once, whether in a record of its own or a shared one."""
    return [message for record in OutboxRecord.scan() for message in outbox_messages(record)]


_key_names: dict[str, list[str]] = {}


def wipe_ledger(settings: Settings) -> None:
    """Empty what the ledger writes (orders, balances, outbox, idempotency), keeping configuration and clicks."""
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=settings.region)
    for table in (settings.orders_table, settings.balances_table, settings.outbox_table, settings.idempotency_table):
        keys = _key_names.get(table)
        if keys is None:  # a table's key schema does not change: read once (the crash tests wipe hundreds of times)
            schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            keys = _key_names[table] = [attribute["AttributeName"] for attribute in schema]
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table,
            ProjectionExpression=", ".join(f"#k{index}" for index in range(len(keys))),
            ExpressionAttributeNames={f"#k{index}": key for index, key in enumerate(keys)},
        ):
            items = page["Items"]
            for start in range(0, len(items), 25):
                dynamodb.batch_write_item(
                    RequestItems={table: [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]}
                )


def clicks(users: dict[str, str]) -> list[Click]:
    """One click per user an hour before T0 (sub_id `c-<user>`), in the account currency given."""
    return [
        Click(
            sub_id=f"c-{user}",
            user_id=user,
            clicked_at=T0 - timedelta(hours=1),
            partner="aliexpress",
            account_currency=currency,
            country="DE",
        )
        for user, currency in users.items()
    ]
