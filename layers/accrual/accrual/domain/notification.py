"""The notification contract: what a shopper's subscribers receive when the cashback of an order changes.

One message per change and shopper, fixed at the moment of the change (the outbox keeps its JSON until it is
published). Its id is deterministic (order, order version, event type, shopper) so subscribers deduplicate on it.
The body is canonical JSON (keys sorted, no spaces) of `NotificationMessage`; the SNS message attributes
(`event_type`, `partner`, `state`, `account_currency`) let subscribers filter without parsing it. Amounts are
decimal strings with two decimals. The trail summary lists the rules that produced a code, at most
TRAIL_SUMMARY_LIMIT of them, so a message stays well under SNS's 256 KB whatever the order's size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from accrual.domain.claims import Claim, ClaimState
from accrual.domain.decision import OrderDecision
from accrual.domain.lifecycle import EventType, Holding, OrderState
from accrual.domain.models import Click
from accrual.domain.money import money_str
from accrual.domain.shopper_text import claim_text, language_of, message_texts

NOTIFICATION_SCHEMA = "cashback.notification/1"
TRAIL_SUMMARY_LIMIT = 20


class MoneyChange(BaseModel):
    """What this change moved for the shopper (negative when money went away)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pending_usd: str
    confirmed_usd: str
    pending: str
    confirmed: str


class TrailSummaryItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    code: str | None
    note: str


class NotificationMessage(BaseModel):
    """The message body, version `cashback.notification/1`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_id: str = Field(NOTIFICATION_SCHEMA, alias="schema")
    event_id: str
    event_type: EventType
    occurred_at: str  # UTC, "%Y-%m-%dT%H:%M:%S.%fZ"
    user_id: str
    partner: str
    order_id: str
    state: OrderState  # the order as this shopper sees it after the change
    previous_state: OrderState | None
    cashback_usd: str  # what the order holds for the shopper after the change, pending + confirmed
    account_currency: str
    cashback: str
    change: MoneyChange
    reasons: list[str]
    trail_summary: list[TrailSummaryItem]
    lang: str  # the shopper's language (ru or en), from the click's country, else the account currency
    text: str  # a short text for the shopper in that language, with the reason in plain words

    def body(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))

    def attributes(self) -> str:
        """The SNS message attributes, as canonical JSON {name: value}."""
        values = {
            "event_type": self.event_type.value,
            "partner": self.partner,
            "state": self.state.value,
            "account_currency": self.account_currency,
        }
        return json.dumps(values, sort_keys=True, separators=(",", ":"))


def notification_id(order_key: str, order_version: int, event: EventType, user_id: str) -> str:
    return hashlib.sha256(f"{order_key}#v{order_version}#{event.value}#{user_id}".encode()).hexdigest()[:32]


def notification(
    *,
    order_key: str,
    order_version: int,
    user_id: str,
    event: EventType,
    decision: OrderDecision,
    state: OrderState,
    previous_state: OrderState | None,
    holding: Holding,
    change: Holding,
    account_currency: str,
    now: datetime,
    click: Click | None = None,
) -> NotificationMessage:
    """The message for one shopper: `holding` is what the order holds for them after the change, `change` what
    moved. (Every field of the message is built here, and only here.)"""
    fields: dict[str, Any] = dict(
        event_id=notification_id(order_key, order_version, event, user_id),
        event_type=event,
        occurred_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        user_id=user_id,
        partner=decision.partner,
        order_id=decision.order_id,
        state=state,
        previous_state=previous_state,
        cashback_usd=money_str(holding.confirmed_usd + holding.pending_usd),
        account_currency=account_currency,
        cashback=money_str(holding.confirmed + holding.pending),
        change=MoneyChange(
            pending_usd=money_str(change.pending_usd),
            confirmed_usd=money_str(change.confirmed_usd),
            pending=money_str(change.pending),
            confirmed=money_str(change.confirmed),
        ),
        reasons=list(decision.reasons),
        trail_summary=[
            TrailSummaryItem(rule=item.rule, code=item.code, note=item.note) for item in decision.trail if item.code
        ][:TRAIL_SUMMARY_LIMIT],
    )
    facts = NotificationMessage.model_construct(**fields, lang="", text="").model_dump(mode="json", by_alias=True)
    return NotificationMessage(**fields, **message_texts(facts, decision, click))


# ---- a missing-cashback claim's notification (`claim.notification/1`, schemas/claim.*.json) ----------------------
CLAIM_SCHEMA = "claim.notification/1"
CLAIM_EVENTS = {
    ClaimState.RESOLVED: "claim.resolved",
    ClaimState.ESCALATED: "claim.escalated",
    ClaimState.NEEDS_REVIEW: "claim.escalated",  # support takes it over: an agent's verdict is needed
    ClaimState.REJECTED: "claim.rejected",
}


@dataclass(frozen=True)
class ClaimOrder:
    """The order a resolved claim names, as its notification shows it."""

    partner: str
    order_id: str
    partner_order_id: str | None
    order_state: str
    cashback_usd: str
    cashback: str
    account_currency: str
    decision: OrderDecision | None = None


def claim_notification(
    claim: Claim, previous: ClaimState | None, version: int, order: ClaimOrder | None, now: datetime
) -> tuple[str, str, str, str]:
    """The claim's notification for its new state: (event id, event type, body, attributes), the body and the
    attributes as canonical JSON. The id names the claim, the event and the claim's version, so a replay of the same
    change finds its own record and a later change of the same kind gets another."""
    event = CLAIM_EVENTS[claim.state]
    event_id = hashlib.sha256(f"{claim.claim_id}#{event}#v{version}".encode()).hexdigest()[:32]
    shown: dict[str, Any] = {
        "partner": None,
        "order_id": None,
        "partner_order_id": None,
        "order_state": None,
        "cashback_usd": "0.00",
        "cashback": "0.00",
        "account_currency": claim.account_currency or "USD",
        "reasons": [],
    }
    decision = None
    if order is not None and claim.state == ClaimState.RESOLVED:
        decision = order.decision
        shown.update(
            partner=order.partner,
            order_id=order.order_id,
            partner_order_id=order.partner_order_id,
            order_state=order.order_state,
            cashback_usd=order.cashback_usd,
            cashback=order.cashback,
            account_currency=order.account_currency,
            reasons=list(decision.reasons) if decision else [],
        )
    lang = language_of(claim.country, shown["account_currency"])
    body = {
        "schema": CLAIM_SCHEMA,
        "event_id": event_id,
        "event_type": event,
        "occurred_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "user_id": claim.user_id,
        "claim_id": claim.claim_id,
        "order_number": claim.order_number,
        "state": claim.state.value,
        "previous_state": previous.value if previous else None,
        "filed_at": claim.filed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        **shown,
        "reason": claim.reason,
        "searched": [dict(item) for item in claim.searched],
        "lang": lang,
        "text": claim_text(claim, shown, decision, lang),
    }
    attributes = {
        "event_type": event,
        "state": claim.state.value,
        "account_currency": shown["account_currency"],
        "partner": shown["partner"] or "",
    }
    return event_id, event, _canonical(body), _canonical(attributes)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
