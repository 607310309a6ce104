"""A plan as the ledger store's value: the order over the version it was read at, the decision when it changed, the
lines and tombstones, the journal entries with their balance deltas, and the notifications fixed at the moment of the
change (domain/notification.py). Pure."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime

from accrual.domain.lifecycle import NOTHING, EventType
from accrual.domain.notification import notification
from accrual.ports import BalanceDelta, JournalEntry, LineWrite, OrderChange, OutboxMessage, journal_entry_id, utc_text
from accrual.service.order_view import amount_text, canonical
from accrual.service.planner import Entry, OrderPlan, lost_state


def change_of(plan: OrderPlan, now: datetime) -> OrderChange:
    order = dataclasses.replace(plan.record, version=plan.view.record.version if plan.view.record else None)
    lines = [LineWrite(line) for line in plan.lines] + [LineWrite(line, moved_to) for moved_to, line in plan.tombstones]
    entries, balances, outbox = [], [], []
    sequence = (plan.record.entries or 0) - len(plan.entries)
    for entry in plan.entries:
        sequence += 1
        entries.append(journal_entry(plan, entry, sequence, now))
        balances.append(BalanceDelta(entry.user_id, entry.delta, entry.account_currency))
        if entry.event is not None:
            outbox.append(outbox_message(plan, entry.user_id, entry.event, entry, now))
    if plan.notice is not None:
        assert plan.decision.user_id is not None
        outbox.append(outbox_message(plan, plan.decision.user_id, plan.notice, None, now))
    return OrderChange(
        order=order,
        decision=plan.decision_json if plan.decision_changed else None,
        lines=tuple(lines),
        entries=tuple(entries),
        balances=tuple(balances),
        outbox=tuple(outbox),
    )


def journal_entry(plan: OrderPlan, entry: Entry, sequence: int, now: datetime) -> JournalEntry:
    delta = entry.delta
    entry_id = journal_entry_id(plan.key, sequence, entry.transition.value)
    state_from = entry.state_from.value if entry.state_from else None
    state_to = plan.step.state if entry.user_id == plan.decision.user_id else lost_state(plan.step.state)
    payload = {
        "entry_id": entry_id,
        "transition": entry.transition.value,
        "user_id": entry.user_id,
        "pending_usd": amount_text(delta.pending_usd),
        "confirmed_usd": amount_text(delta.confirmed_usd),
        "pending": amount_text(delta.pending),
        "confirmed": amount_text(delta.confirmed),
        "state_from": state_from,
        "state_to": state_to.value,
    }
    return JournalEntry(
        plan.key,
        sequence,
        entry.transition.value,
        entry.user_id,
        entry.account_currency,
        entry.fx_rate,
        delta,
        state_from,
        state_to.value,
        hashlib.sha256(canonical(payload).encode()).hexdigest(),
        utc_text(now),
        utc_text(plan.fact_at or now),
    )


def outbox_message(
    plan: OrderPlan, user_id: str, event: EventType, entry: Entry | None, now: datetime
) -> OutboxMessage:
    """The notification (domain/notification.py), fixed at the moment of the change, kept in the outbox."""
    decision, step = plan.decision, plan.step
    mine = user_id == decision.user_id
    message = notification(
        order_key=plan.key,
        order_version=plan.version,
        user_id=user_id,
        event=event,
        decision=decision,
        state=step.state if mine else lost_state(step.state),
        previous_state=entry.state_from if entry is not None else plan.view.state,
        holding=step.holding if mine else NOTHING,
        change=entry.delta if entry is not None else NOTHING,
        account_currency=entry.account_currency if entry is not None else decision.account_currency,
        now=now,
        click=plan.click if mine else None,
    )
    return OutboxMessage(
        message.event_id,
        event.value,
        user_id,
        message.body(),
        message.attributes(),
        utc_text(now),
    )
