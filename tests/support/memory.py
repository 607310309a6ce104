"""The ledger on the in-memory store: set-up and a comparable snapshot of what any LedgerStore holds."""

from __future__ import annotations

from typing import Any

from accrual.domain.models import AccrualConfig
from accrual.ports import LedgerStore
from accrual.service.ledger import Ledger
from support.fakes.ledger_store import InMemoryLedgerStore
from support.ledger import CONFIG, clicks

FAR_FUTURE = "9999-12-31T23:59:59.999999Z"


def config(**changes: Any) -> AccrualConfig:
    return AccrualConfig.model_validate({**CONFIG, **changes})


def memory_ledger(users: dict[str, str] | None = None, **config_changes: Any) -> Ledger:
    """A Ledger on a fresh InMemoryLedgerStore holding the test configuration and one click per user."""
    store = InMemoryLedgerStore()
    store.save_config(config(**config_changes))
    store.save_clicks(clicks(users if users is not None else {"alice": "EUR", "bob": "USD"}))
    return Ledger(store=store)


def store_snapshot(store: LedgerStore) -> dict[str, Any]:
    """Everything a store holds for the ledger, read through the protocol only (so two stores compare). Amounts are
    compared as numbers: DynamoDB may drop trailing zeros of a number it adds up."""
    orders = {}
    for order in store.scan_orders():
        loaded = store.load_order(order.key)
        together, journal_together = store.order_with_journal(order.key)  # the books' one read: the same answers
        fields = {name: value for name, value in vars(order).items() if name != "updated_at"}
        orders[order.key] = (
            fields,
            loaded.decision,
            sorted((line.body, line.moved_to) for line in loaded.lines),
            [(refusal.ref, refusal.reason, refusal.state) for refusal in store.refusals(order.key)],
            together == loaded,
            [entry.entry_id for entry in journal_together] == [entry.entry_id for entry in store.journal(order.key)],
        )
    journal = sorted((entry.entry_id, entry.digest, entry.user_id, entry.delta) for entry in store.scan_journal())
    balances = {balance.user_id: (balance.account_currency, balance.holding) for balance in store.scan_balances()}
    outbox = sorted(
        (message.event_id, message.event_type, message.body, message.attributes)
        for message in store.unpublished(FAR_FUTURE, 100)
    )
    lines = sorted(store.scan_live_lines())
    users = sorted({fields["user_id"] for fields, *_ in orders.values() if fields["user_id"]})
    of_user = {user: store.orders_of_user(user) for user in [*users, "nobody"]}  # `redecide --user`'s read
    return {
        "orders": orders,
        "journal": journal,
        "balances": balances,
        "outbox": outbox,
        "lines": lines,
        "orders_of_user": of_user,
    }
