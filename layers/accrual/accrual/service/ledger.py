"""The ledger: reconciles report lines into orders and moves money between pending and confirmed, exactly once.

Every change of one order is one DynamoDB transaction: the order (guarded by its version), the report lines that
changed, the journal entry (a new item under a deterministic id), the ADD to the shopper's balance and the outbox
record of the notification. A replay or a concurrent run fails the version or the journal condition and changes
nothing; the loser re-reads the order and finds nothing left to do. A run that stops anywhere leaves either the whole
change or none of it, so rerunning it ends where a clean run ends.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import (
    DECISION_SK, DUE_SHARDS, OUTBOX_SHARDS, BalanceRecord, DecisionRecord, JournalEntryRecord, LineRecord,
    OrderRecord, OutboxRecord, RefusedRecord, bind_ledger_tables, load_order_items,
)
from accrual.domain.decision import MissingFxRate, OrderDecision
from accrual.domain.lifecycle import (
    NOTHING, EventType, Holding, OrderState, ReviewVerdict, Step, Transition, event_of, latest_lines, next_step,
    transition_of,
)
from accrual.domain.models import AccrualConfig, OrderLine, order_key
from accrual.domain.money import money_str
from accrual.domain.rules import decide_order
from accrual.observability import logger
from accrual.settings import Settings

MAX_ATTEMPTS = 8  # optimistic-concurrency retries of one order before the run reports it as failed
NOTIFICATION_SCHEMA = "cashback.notification/1"
OUTBOX_RETENTION_DAYS = 30


class JournalConflict(RuntimeError):
    """A journal entry id exists with a different payload: the ledger refuses to guess and reports it."""


class OrderContention(RuntimeError):
    """The order kept changing under this run (another run is working on it); the next run picks it up."""


def utc_text(moment: datetime) -> str:
    """Times as sortable UTC text, the form every key and index uses."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class OrderView:
    """An order as stored: the record (None when new), its decision as stored JSON, and its latest lines."""

    record: OrderRecord | None
    decision_json: str | None
    lines: dict[str, OrderLine]

    @property
    def state(self) -> OrderState | None:
        return OrderState(self.record.state) if self.record else None

    @property
    def holding(self) -> Holding:
        if self.record is None:
            return NOTHING
        return Holding(self.record.pending_usd, self.record.confirmed_usd, self.record.pending, self.record.confirmed)


def load_order(key: str) -> OrderView:
    record, decision, line_items = load_order_items(key)
    lines = {}
    for item in line_items:
        line = OrderLine.model_validate_json(item.body)
        lines[line.line_id] = line
    return OrderView(record, decision.body if decision else None, lines)


class Ledger:
    def __init__(self, settings: Settings, *, config: AccrualConfig | None = None) -> None:
        bind_ledger_tables(settings)
        self.settings = settings
        self._config = config
        self._clicks: dict[str, object] = {}
        self._connection = Connection(region=settings.region, host=settings.endpoint_url, max_retry_attempts=8)

    @property
    def config(self) -> AccrualConfig:
        if self._config is None:
            self._config = reference_data.current_config()
        return self._config

    # ---- reconcile ------------------------------------------------------------------------------------------
    def reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> dict[str, int]:
        """Upsert report lines and re-decide their orders. Counts say what happened to each line and order."""
        counts: Counter[str] = Counter(lines_received=len(lines))
        by_order: dict[str, list[OrderLine]] = defaultdict(list)
        for line in lines:
            by_order[line.order_key].append(line)
        # the page's clicks in a few batch reads rather than one read per order (clicks never change once made)
        self._clicks = reference_data.find_clicks(line.sub_id for line in lines if line.sub_id)
        try:
            for key in sorted(by_order):
                self._settle_order(key, by_order[key], now=now, confirming=False, counts=counts)
        finally:
            self._clicks = {}
        return dict(counts)

    def _click(self, sub_id: str | None):
        if sub_id in self._clicks:
            return self._clicks[sub_id]
        return reference_data.find_click(sub_id)

    # ---- the scheduled confirmation cycle ------------------------------------------------------------------
    def confirm(self, *, now: datetime, page_size: int = 100) -> dict[str, int]:
        """Confirm settled orders whose hold has passed, decline orders unpaid for too long: every order the due
        index lists as due at or before `now`, page by page (bounded memory), each in its own transaction, so the
        cycle can stop anywhere and be rerun."""
        counts: Counter[str] = Counter()
        for key in self._due_orders(now, page_size):
            counts["orders_due"] += 1
            self._settle_order(key, [], now=now, confirming=True, counts=counts)
        return dict(counts)

    def _due_orders(self, now: datetime, page_size: int) -> Iterator[str]:
        until = utc_text(now)
        for shard in range(DUE_SHARDS):
            for item in OrderRecord.due.query(str(shard), OrderRecord.due_at <= until, page_size=page_size):
                yield item.pk

    # ---- one order ------------------------------------------------------------------------------------------
    # ---- an operator's verdict on an order held for review ------------------------------------------------
    def review(self, key: str, verdict: ReviewVerdict, *, now: datetime) -> OrderState:
        """Release or decline an order held for review; the money moves in the same transaction as the verdict."""
        view = load_order(key)
        if view.record is None or (view.state != OrderState.ON_REVIEW and view.record.review is None):
            raise ValueError(f"order {key} is not held for review (state {view.state})")
        counts: Counter[str] = Counter()
        self._settle_order(key, [], now=now, confirming=False, counts=counts, redecide=True, review=verdict)
        if counts.get("orders_failed") or counts.get("journal_conflicts"):
            raise RuntimeError(f"order {key} could not be settled: {dict(counts)}")
        return load_order(key).state

    def _settle_order(self, key: str, incoming: list[OrderLine], *, now: datetime, confirming: bool,
                      counts: Counter[str], redecide: bool = False, review: ReviewVerdict | None = None) -> None:
        try:
            for _attempt in range(MAX_ATTEMPTS):
                attempt: Counter[str] = Counter()
                if self._try_settle(key, incoming, now=now, confirming=confirming, counts=attempt,
                                    redecide=redecide, review=review):
                    counts.update(attempt)
                    return
                counts["retries"] += 1
            raise OrderContention(f"order {key} changed {MAX_ATTEMPTS} times while this run worked on it")
        except MissingFxRate as error:
            counts["orders_failed"] += 1
            logger.error("order cannot be valued", extra={"order": key, "error": str(error)})
        except OrderContention as error:
            counts["orders_failed"] += 1
            logger.error("order contention", extra={"order": key, "error": str(error)})
        except JournalConflict as error:
            # never passed off as a success: counted, logged with the ids, and the run exits non-zero
            counts["journal_conflicts"] += 1
            logger.error("journal conflict", extra={"order": key, "error": str(error)})

    def _try_settle(self, key: str, incoming: list[OrderLine], *, now: datetime, confirming: bool,
                    counts: Counter[str], redecide: bool, review: ReviewVerdict | None = None) -> bool:
        """One optimistic attempt. True when done (applied or nothing to do), False to retry after a conflict.
        Unchanged lines change nothing, except for an order still unattributed (its click may have arrived since)
        or one another order asks to look at again (`redecide`)."""
        view = load_order(key)
        state_before = view.state
        merged, changed, stale = latest_lines(view.lines, incoming)
        counts["lines_stale"] += len(stale)
        counts["lines_unchanged"] += len(incoming) - len(changed) - len(stale)
        if not merged:
            return True
        if (view.record is not None and not changed and not confirming and not redecide
                and view.state != OrderState.UNATTRIBUTED):
            return True

        config = self.config
        click = self._click(_first(merged, "sub_id"))
        review_accounts, also_affected = self._review_accounts(key, click, merged, now)
        if not redecide:
            # before this order's own write: a run stopped in between redoes both when rerun
            for other in also_affected:
                self._settle_order(other, [], now=now, confirming=False, counts=counts, redecide=True)
        decision = decide_order(list(merged.values()), click, config, now=now,
                                other_new_user_coupon_accounts=review_accounts)
        fx_rate = view.record.fx_rate if view.record and not view.holding.is_zero else decision.fx_rate
        verdict = review or (ReviewVerdict(view.record.review) if view.record and view.record.review else None)
        step = next_step(view.state, view.holding, decision, merged, fx_rate=fx_rate,
                         hold_days=config.hold_days_for(decision.partner),
                         awaiting_payment_days=config.awaiting_payment_days, now=now, confirming=confirming,
                         review=verdict)
        if step.refused and changed:
            self._record_refused(key, changed, step, now)
            counts["transitions_refused"] += 1

        decision_json = canonical(decision.to_dict())
        due_at = utc_text(step.due_at) if step.due_at else None
        if (view.record is not None and not changed and view.record.state == step.state
                and view.holding == step.holding and view.decision_json == decision_json
                and view.record.due_at == due_at and view.record.review == (verdict.value if verdict else None)):
            return True

        moved = transition_of(view.holding, step.holding)
        event = event_of(view.state, step.state, moved)
        try:
            self._write(key, view, merged, changed, decision, decision_json, step, moved, event, fx_rate, review_accounts,
                        verdict, now)
        except TransactWriteError as error:
            if self._conflict_is_concurrency(key, error):
                return False
            raise
        counts["lines_applied"] += len(changed)
        counts["orders_changed"] += 1
        if moved:
            counts[f"moves_{moved.value}"] += 1
        if event:
            counts["notifications"] += 1
        if state_before != OrderState.PENDING and step.state == OrderState.PENDING and _late(merged, now):
            counts["pending_later_than_promised"] += 1
        return True

    def _review_accounts(self, key: str, click, lines: Mapping[str, OrderLine],
                         now: datetime) -> tuple[frozenset[str], list[str]]:
        """The multi-account rule's input: every store account of this shopper that used a new-user coupon. When
        there are several, the shopper's other coupon orders are decided again too (a no-op when they already
        know), so all of them are held whatever order the reports arrived in."""
        if click is None:
            return frozenset(), []
        mine = {line.buyer_account for line in lines.values() if line.new_user_coupon and line.buyer_account}
        if not mine:
            return frozenset(), []
        for account in sorted(mine):
            reference_data.register_new_user_coupon(click.user_id, account, key, now=now)
        uses = reference_data.new_user_coupon_uses(click.user_id)
        accounts = frozenset(account for _, account in uses)
        if len(accounts) > 1:
            return accounts, sorted({order for order, _ in uses if order != key})
        return accounts, []

    def _write(self, key: str, view: OrderView, merged: Mapping[str, OrderLine], changed: list[OrderLine], decision: OrderDecision, decision_json: str,
               step: Step, moved: Transition | None, event: EventType | None, fx_rate: Decimal,
               review_accounts: frozenset[str], verdict: ReviewVerdict | None, now: datetime) -> None:
        before_state, delta = view.state, step.holding.minus(view.holding)  # read before the record changes
        record = view.record or OrderRecord(key, "ORDER", entries=0)
        if moved is not None:
            record.entries = (record.entries or 0) + 1
        record.partner = decision.partner
        record.order_id = decision.order_id
        record.partner_order_id = _first(merged, "partner_order_id")
        record.user_id = decision.user_id
        record.sub_id = _first(merged, "sub_id")
        record.ordered_at = utc_text(min(line.ordered_at for line in merged.values()))
        record.state = step.state.value
        record.decided_at = utc_text(now)
        record.review_accounts = sorted(review_accounts) or None
        record.review = verdict.value if verdict else None
        record.account_currency = decision.account_currency
        record.fx_rate = fx_rate
        record.fx_day = decision.fx_day.isoformat() if decision.fx_day else None
        record.pending_usd, record.confirmed_usd = step.holding.pending_usd, step.holding.confirmed_usd
        record.pending, record.confirmed = step.holding.pending, step.holding.confirmed
        record.due_at = utc_text(step.due_at) if step.due_at else None
        record.due_shard = str(zlib.crc32(key.encode()) % DUE_SHARDS) if step.due_at else None
        record.updated_at = utc_text(now)
        version = (view.record.version or 0) + 1 if view.record else 1

        with TransactWrite(connection=self._connection) as transaction:
            transaction.save(record)  # VersionAttribute adds the condition: version unchanged (or new)
            if decision_json != view.decision_json:
                transaction.save(DecisionRecord(key, DECISION_SK, body=decision_json))
            for line in changed:
                transaction.save(LineRecord(key, f"LINE#{line.line_id}", line_ref=f"{line.partner}#{line.line_id}",
                                            status=line.status.value, status_at=utc_text(line.status_at),
                                            body=line.model_dump_json()))
            if moved is not None:
                if decision.user_id is None:
                    raise JournalConflict(f"order {key} would move money without a shopper")
                entry = self._journal_entry(key, record, moved, delta, before_state, step.state, decision, fx_rate,
                                            now)
                transaction.save(entry, condition=JournalEntryRecord.pk.does_not_exist())
                transaction.update(BalanceRecord(decision.user_id), actions=[
                    BalanceRecord.pending_usd.add(delta.pending_usd),
                    BalanceRecord.confirmed_usd.add(delta.confirmed_usd),
                    BalanceRecord.pending.add(delta.pending),
                    BalanceRecord.confirmed.add(delta.confirmed),
                    BalanceRecord.account_currency.set(decision.account_currency),
                ])
            if event is not None and decision.user_id is not None:
                transaction.save(self._outbox_event(key, version, event, before_state, step, delta, decision, now),
                                 condition=OutboxRecord.event_id.does_not_exist())

    def _journal_entry(self, key: str, record: OrderRecord, moved: Transition, delta: Holding,
                       before: OrderState | None, after: OrderState, decision: OrderDecision, fx_rate: Decimal,
                       now: datetime) -> JournalEntryRecord:
        sequence = f"{record.entries:06d}"
        entry_id = f"{key}#{sequence}#{moved.value}"
        payload = {"entry_id": entry_id, "transition": moved.value, "user_id": decision.user_id,
                   "pending_usd": str(delta.pending_usd), "confirmed_usd": str(delta.confirmed_usd),
                   "pending": str(delta.pending), "confirmed": str(delta.confirmed),
                   "state_from": before.value if before else None, "state_to": after.value}
        return JournalEntryRecord(
            key, f"ENTRY#{sequence}#{moved.value}", entry_id=entry_id, transition=moved.value,
            user_id=decision.user_id, account_currency=decision.account_currency, fx_rate=fx_rate,
            pending_usd=delta.pending_usd, confirmed_usd=delta.confirmed_usd, pending=delta.pending,
            confirmed=delta.confirmed, state_from=payload["state_from"], state_to=after.value,
            digest=hashlib.sha256(canonical(payload).encode()).hexdigest(), at=utc_text(now))

    def _outbox_event(self, key: str, version: int, event: EventType, before: OrderState | None, step: Step,
                      delta: Holding, decision: OrderDecision, now: datetime) -> OutboxRecord:
        """The notification, fixed at the moment of the change (deterministic id: order + version)."""
        event_id = hashlib.sha256(f"{key}#v{version}#{event.value}".encode()).hexdigest()[:32]
        amount_usd = step.holding.confirmed_usd + step.holding.pending_usd
        amount = step.holding.confirmed + step.holding.pending
        body = {
            "schema": NOTIFICATION_SCHEMA,
            "event_id": event_id,
            "event_type": event.value,
            "occurred_at": utc_text(now),
            "user_id": decision.user_id,
            "partner": decision.partner,
            "order_id": decision.order_id,
            "state": step.state.value,
            "previous_state": before.value if before else None,
            "cashback_usd": money_str(amount_usd),
            "account_currency": decision.account_currency,
            "cashback": money_str(amount),
            "change": {"pending_usd": money_str(delta.pending_usd), "confirmed_usd": money_str(delta.confirmed_usd),
                       "pending": money_str(delta.pending), "confirmed": money_str(delta.confirmed)},
            "reasons": list(decision.reasons),
            "trail_summary": [{"rule": item.rule, "code": item.code, "note": item.note}
                              for item in decision.trail if item.code],
        }
        attributes = {"event_type": event.value, "partner": decision.partner, "state": step.state.value,
                      "account_currency": decision.account_currency}
        return OutboxRecord(event_id, event_type=event.value, user_id=decision.user_id, body=canonical(body),
                            attributes=canonical(attributes), created_at=utc_text(now),
                            unpublished_shard=str(int(event_id, 16) % OUTBOX_SHARDS),
                            expires_at=int(now.timestamp()) + OUTBOX_RETENTION_DAYS * 86400)

    def _conflict_is_concurrency(self, key: str, error: TransactWriteError) -> bool:
        """Tell a harmless race (the order changed: retry) from a journal id reused with another payload."""
        reasons = error.cancellation_reasons or []
        codes = [reason.code if reason else None for reason in reasons]
        if codes and codes[0] == "ConditionalCheckFailed":
            return True
        if "ConditionalCheckFailed" in codes:
            raise JournalConflict(f"order {key}: a journal entry or notification with this id already exists with "
                                  f"another payload while the order itself did not change ({codes})") from error
        if "TransactionConflict" in codes:
            return True
        return False

    def _record_refused(self, key: str, changed: list[OrderLine], step: Step, now: datetime) -> None:
        for line in changed:
            RefusedRecord(key, f"REFUSED#{line.line_id}#{utc_text(line.status_at)}#{line.status.value}",
                          reason=step.refused, state=step.state.value, body=line.model_dump_json(),
                          at=utc_text(now)).save()


PROMISED_PENDING_LAG = timedelta(days=5)


def _late(lines: Mapping[str, OrderLine], now: datetime) -> bool:
    """The service promises pending within 5 days of the order; later ones are counted (a metric with an alarm)."""
    return now - min(line.ordered_at for line in lines.values()) > PROMISED_PENDING_LAG


def _first(lines: Mapping[str, OrderLine], field: str) -> str | None:
    """The first value of a field over the order's lines, by line id (sub-orders of one order share it)."""
    for line_id in sorted(lines):
        value = getattr(lines[line_id], field)
        if value:
            return value
    return None


__all__ = ["Ledger", "JournalConflict", "OrderContention", "order_key", "utc_text", "parse_utc"]
