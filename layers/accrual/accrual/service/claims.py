"""Missing-cashback claims: filing, matching and escalation (the rules are `accrual.domain.claims`).

A claim is matched when it is filed, after every reconcile (the claims naming the page's order numbers), and on every
scheduled cycle (`Ledger.confirm` sweeps every claim still searched: open, matched, escalated). A match never moves
money itself: the ledger decides the order again (`Ledger.redecide_order`), and its claims hook attributes the order
to the claimant through the normal path (rules, journal, `cashback.*` notifications). Only then is the claim
`resolved`, and `claim.resolved` is written to the outbox in the same transaction as the claim's new state; a claim
still unmatched at its `escalate_at` becomes `escalated` with what was searched and publishes `claim.escalated`.
A run that stops between the ledger's write and the claim's leaves the claim `matched`; the next sweep finds the
order already the claimant's and resolves it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from accrual.adapters import reference_data
from accrual.adapters.claims_table import (
    ClaimRecord,
    all_claims,
    bind_claims_table,
    claim_rules_of,
    claims_for_numbers,
    claims_in_state,
    claims_of_user,
    get_claim,
    record_of,
)
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.adapters.ledger_tables import OUTBOX_SHARDS, OutboxRecord, bind_ledger_tables
from accrual.domain.claims import (
    SEARCHED_STATES,
    Claim,
    ClaimRequest,
    ClaimRules,
    ClaimState,
    OrderFacts,
    Verdict,
    conclude,
    judge,
    new_claim,
    order_facts,
)
from accrual.domain.decision import OrderDecision
from accrual.domain.models import OrderLine
from accrual.domain.money import ZERO, money_str
from accrual.domain.shopper_text import claim_text, language_of
from accrual.observability import logger
from accrual.settings import Settings

if TYPE_CHECKING:
    from accrual.service.ledger import Ledger

CLAIM_SCHEMA = "claim.notification/1"
EVENTS = {
    ClaimState.RESOLVED: "claim.resolved",
    ClaimState.ESCALATED: "claim.escalated",
    ClaimState.REJECTED: "claim.rejected",
}


class ClaimService:
    def __init__(self, settings: Settings, *, ledger: Ledger | None = None, rules: ClaimRules | None = None) -> None:
        bind_claims_table(settings)
        bind_ledger_tables(settings)
        self.settings = settings
        self.rules = rules or claim_rules_of(settings)
        self._ledger = ledger
        self._store = ledger.store if ledger is not None else DynamoLedgerStore(settings)
        self._connection = Connection(region=settings.region, host=settings.dynamodb_host, max_retry_attempts=8)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from accrual.service.ledger import Ledger

            self._ledger = Ledger(self.settings)
        return self._ledger

    # ---- filing ----------------------------------------------------------------------------------------------
    def file(self, request: ClaimRequest, *, now: datetime) -> tuple[Claim, bool]:
        """Store a claim and match it at once. Returns the claim and whether it is new: the same shopper filing the
        same order number again gets the existing claim back, unchanged."""
        existing = get_claim_or_none(request)
        if existing is not None:
            return existing, False
        currency = reference_data.account_currencies([request.user_id]).get(request.user_id)
        claim = new_claim(request, now=now, rules=self.rules, account_currency=currency)
        try:
            record_of(claim).save(condition=ClaimRecord.claim_id.does_not_exist())
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            found = get_claim(claim.claim_id)
            assert found is not None
            return found[0], False  # filed concurrently (a redelivered message): the first one stands
        if claim.state == ClaimState.REJECTED:
            self._publish_only(claim, version=1, now=now)
            return claim, True
        return self.match(claim.claim_id, now=now), True

    # ---- reading ---------------------------------------------------------------------------------------------
    def show(self, claim_id: str) -> Claim | None:
        found = get_claim(claim_id)
        return found[0] if found else None

    def list_claims(self, *, state: ClaimState | None = None, user_id: str | None = None) -> list[Claim]:
        if user_id is not None:
            claims: Iterable[Claim] = claims_of_user(user_id)
            if state is not None:
                claims = (claim for claim in claims if claim.state == state)
        elif state is not None:
            claims = claims_in_state(state)
        else:
            claims = all_claims()
        return sorted(claims, key=lambda claim: (claim.filed_at, claim.claim_id))

    def for_order(self, numbers: Iterable[str]) -> list[Claim]:
        return claims_for_numbers(numbers)

    # ---- matching --------------------------------------------------------------------------------------------
    def match(self, claim_id: str, *, now: datetime) -> Claim:
        """Look for the claim's order and move the claim on: resolved (the order is the claimant's, possibly after
        the ledger attributed it), matched (the ledger could not settle it yet), rejected (another shopper's),
        escalated (nothing found in time), or still open."""
        found = get_claim(claim_id)
        if found is None:
            raise LookupError(f"no claim {claim_id}")
        claim, version = found
        if claim.state not in SEARCHED_STATES:
            return claim
        outcome = conclude(claim, self._verdicts(claim), now=now)
        if outcome.redecide is not None:
            if claim.state != ClaimState.MATCHED:
                # recorded before the ledger acts: a claim resolved to this order only, whatever happens next
                claim, version = self._save(
                    claim,
                    version,
                    replace(
                        claim,
                        state=ClaimState.MATCHED,
                        order_key=outcome.redecide,
                        searched=outcome.searched,
                        updated_at=now,
                    ),
                    now,
                )
            counts = self.ledger.redecide_order(outcome.redecide, now=now)
            if counts.get("orders_failed") or counts.get("journal_conflicts"):
                logger.warning("claim's order not settled", extra={"claim": claim.claim_id, "counts": counts})
            outcome = conclude(claim, self._verdicts(claim), now=now)
        after = replace(
            claim,
            state=outcome.state,
            order_key=outcome.order_key or claim.order_key,
            reason=outcome.reason,
            searched=outcome.searched,
            updated_at=now,
        )
        if outcome.state == ClaimState.OPEN:
            after = replace(after, order_key=None)
        claim, _ = self._save(claim, version, after, now)
        return claim

    def _verdicts(self, claim: Claim) -> list[tuple[OrderFacts, Verdict, str]]:
        from accrual.service.ledger import load_order
        from accrual.service.reading import find_orders

        verdicts: list[tuple[OrderFacts, Verdict, str]] = []
        config = self._config()
        for key in find_orders(claim.order_number, self._store):
            view = load_order(key, self._store)
            if view.record is None or not view.lines:
                continue
            facts = order_facts(key, view.lines, user_id=view.record.user_id, state=view.record.state, config=config)
            verdict, why = judge(claim, facts, self.rules, config)
            if verdict != Verdict.NOT_THIS:
                verdicts.append((facts, verdict, why))
        return verdicts

    def _config(self):
        try:
            return self.ledger.config
        except LookupError:
            return None

    def after_reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> dict[str, int]:
        """Claims naming the reconciled orders' numbers, matched again. Costs nothing while no claim is searched."""
        if not any_searched():
            return {}
        numbers = {line.order_id for line in lines} | {line.partner_order_id for line in lines if line.partner_order_id}
        if not numbers:
            return {}
        return self._match_all(
            [claim for claim in claims_for_numbers(numbers) if claim.state in SEARCHED_STATES], now=now
        )

    def sweep(self, *, now: datetime) -> dict[str, int]:
        """Every claim still searched, matched again; escalates those whose time has come."""
        claims = [claim for state in SEARCHED_STATES for claim in claims_in_state(state)]
        return self._match_all(claims, now=now)

    def _match_all(self, claims: Iterable[Claim], *, now: datetime) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for claim in claims:
            counts["claims_searched"] += 1
            try:
                after = self.match(claim.claim_id, now=now)
            except Exception as error:  # noqa: BLE001 - one claim never stops the run; the next sweep retries it
                counts["claims_failed"] += 1
                logger.exception(
                    "claim not matched", extra={"claim": claim.claim_id, "error_type": type(error).__name__}
                )
                continue
            if after.state != claim.state:
                counts[f"claims_{after.state.value}"] += 1
        return dict(counts)

    # ---- writing ---------------------------------------------------------------------------------------------
    def _save(self, before: Claim, version: int, after: Claim, now: datetime) -> tuple[Claim, int]:
        """Write the claim's new state under its version; a state that publishes (resolved, escalated, rejected) is
        written with its outbox record in one transaction. A lost race leaves the other run's claim standing."""
        if (after.state, after.order_key, after.reason, after.searched) == (
            before.state,
            before.order_key,
            before.reason,
            before.searched,
        ):
            return before, version
        record = record_of(after, version)
        event = EVENTS.get(after.state) if after.state != before.state else None
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(record)  # VersionAttribute: the stored version is still `version`
                if event is not None:
                    transaction.save(
                        self._outbox(after, event, before.state, now), condition=OutboxRecord.event_id.does_not_exist()
                    )
        except TransactWriteError as error:
            logger.info("claim changed meanwhile", extra={"claim": after.claim_id, "error": str(error)[:200]})
            found = get_claim(after.claim_id)
            assert found is not None
            return found
        return after, version + 1

    def _publish_only(self, claim: Claim, *, version: int, now: datetime) -> None:
        """A claim stored rejected at filing: its notification goes out like any other."""
        try:
            self._outbox(claim, EVENTS[claim.state], None, now).save(condition=OutboxRecord.event_id.does_not_exist())
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise

    def _outbox(self, claim: Claim, event: str, previous: ClaimState | None, now: datetime) -> OutboxRecord:
        from accrual.service.ledger import canonical, load_order, utc_text

        event_id = hashlib.sha256(f"{claim.claim_id}#{event}".encode()).hexdigest()[:32]
        order: dict[str, Any] = {
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
        if claim.order_key and claim.state == ClaimState.RESOLVED:
            view = load_order(claim.order_key, self._store)
            if view.record is not None:
                record = view.record
                order.update(
                    partner=record.partner,
                    order_id=record.order_id,
                    partner_order_id=record.partner_order_id,
                    order_state=record.state,
                    cashback_usd=money_str((record.pending_usd or ZERO) + (record.confirmed_usd or ZERO)),
                    cashback=money_str((record.pending or ZERO) + (record.confirmed or ZERO)),
                    account_currency=record.account_currency,
                )
                if view.decision_json:
                    decision = OrderDecision.from_dict(json.loads(view.decision_json))
                    order["reasons"] = list(decision.reasons)
        lang = language_of(claim.country, order["account_currency"])
        body = {
            "schema": CLAIM_SCHEMA,
            "event_id": event_id,
            "event_type": event,
            "occurred_at": utc_text(now),
            "user_id": claim.user_id,
            "claim_id": claim.claim_id,
            "order_number": claim.order_number,
            "state": claim.state.value,
            "previous_state": previous.value if previous else None,
            "filed_at": utc_text(claim.filed_at),
            **order,
            "reason": claim.reason,
            "searched": [dict(item) for item in claim.searched],
            "lang": lang,
            "text": claim_text(claim, order, decision, lang),
        }
        attributes = {
            "event_type": event,
            "state": claim.state.value,
            "account_currency": order["account_currency"],
            "partner": order["partner"] or "",
        }
        return OutboxRecord(
            event_id,
            event_type=event,
            user_id=claim.user_id,
            body=canonical(body),
            attributes=canonical(attributes),
            created_at=utc_text(now),
            unpublished_shard=str(int(event_id, 16) % OUTBOX_SHARDS),
            # no expiry while unpublished (the relay sets it when it publishes)
        )


def get_claim_or_none(request: ClaimRequest) -> Claim | None:
    from accrual.domain.claims import claim_id_of

    found = get_claim(claim_id_of(request.user_id, request.order_number))
    return found[0] if found else None


def any_searched() -> bool:
    """Whether any claim is still searched (one small Query per state): reconciles skip the claims otherwise."""
    for state in SEARCHED_STATES:
        for _ in ClaimRecord.by_state.query(state.value, limit=1):
            return True
    return False


def claims_after_reconcile(
    settings: Settings, ledger: Ledger, lines: Sequence[OrderLine], *, now: datetime
) -> dict[str, int]:
    """The ledger's claims hook after a reconcile."""
    rules = ledger.claims.rules if ledger.claims is not None else None
    return ClaimService(settings, ledger=ledger, rules=rules).after_reconcile(lines, now=now)


def claims_sweep(settings: Settings, ledger: Ledger, *, now: datetime) -> dict[str, int]:
    """The ledger's claims hook at the end of a confirmation cycle."""
    rules = ledger.claims.rules if ledger.claims is not None else None
    return ClaimService(settings, ledger=ledger, rules=rules).sweep(now=now)
