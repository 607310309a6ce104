"""Missing-cashback claims as their own step after the ledger (the rules are `accrual.domain.claims`).

A claim is matched when it is filed, after every reconcile (the claims naming the page's order numbers), and on every
scheduled sweep (every claim still searched: open, matched, escalated). A match never moves money itself: the claims
service asks the ledger to record the claim on the order (`Ledger.credit_claim`), and the ledger decides the order
through its normal path (rules, journal, `cashback.*` notifications); the claim is a fact of the order from then on.
Only then is the claim `resolved`, and `claim.resolved` is written to the outbox in the same transaction as the
claim's new state. A claim that lacks evidence, has a rival or contests another claimant's credit waits for an agent
(`needs_review`, announced as `claim.escalated`); `resolve` records the agent's verdict through the ledger. A run that
stops between the ledger's write and the claim's leaves the claim `matched`; the next sweep finds the order already
the claimant's and resolves it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from accrual.domain.claims import (
    SEARCHED_STATES,
    Claim,
    ClaimRequest,
    ClaimRules,
    ClaimState,
    OrderFacts,
    Outcome,
    RejectReason,
    ReviewReason,
    Verdict,
    claim_id_of,
    conclude,
    fact_of,
    judge,
    new_claim,
    order_facts,
    rivals,
)
from accrual.domain.decision import OrderDecision
from accrual.domain.lifecycle import OrderState
from accrual.domain.models import AccrualConfig, OrderLine
from accrual.domain.money import ZERO, money_str
from accrual.domain.notification import ClaimOrder, claim_notification
from accrual.observability import logger
from accrual.ports import OutboxMessage, utc_text
from accrual.ports.claims import ClaimsStore
from accrual.service.ledger import Ledger
from accrual.service.order_view import OrderView, load_order

# the claims a reconcile looks at: those still searched, and those whose order's lines may move (they follow them)
FOLLOWED_STATES = (*SEARCHED_STATES, ClaimState.NEEDS_REVIEW, ClaimState.RESOLVED)
POSTED_STATES = (OrderState.CONFIRMED.value, OrderState.REVERSED.value)


class ClaimService:
    def __init__(self, store: ClaimsStore, ledger: Ledger, rules: ClaimRules) -> None:
        self.store = store
        self.ledger = ledger
        self.rules = rules

    # ---- filing ----------------------------------------------------------------------------------------------
    def file(self, request: ClaimRequest, *, now: datetime) -> tuple[Claim, bool]:
        """Store a claim and match it at once. Returns the claim and whether it is new: the same shopper filing the
        same order number again gets the existing claim back, unchanged."""
        existing = self.store.get(claim_id_of(request.user_id, request.order_number))
        if existing is not None:
            return existing[0], False
        currency = self.store.account_currency(request.user_id)
        claim = new_claim(request, now=now, rules=self.rules, account_currency=currency)
        rejected = claim.state == ClaimState.REJECTED
        # a claim rejected at once is stored with its notification, together
        if not self.store.create(claim, self._message(claim, None, 1, now) if rejected else None):
            found = self.store.get(claim.claim_id)
            assert found is not None
            return found[0], False  # filed concurrently (a redelivered message): the first one stands
        if rejected:
            return claim, True
        return self.match(claim.claim_id, now=now), True

    # ---- reading ---------------------------------------------------------------------------------------------
    def show(self, claim_id: str) -> Claim | None:
        found = self.store.get(claim_id)
        return found[0] if found else None

    def list_claims(self, *, state: ClaimState | None = None, user_id: str | None = None) -> list[Claim]:
        if user_id is not None:
            claims: Iterable[Claim] = self.store.of_user(user_id)
            if state is not None:
                claims = (claim for claim in claims if claim.state == state)
        elif state is not None:
            claims = self.store.in_state(state)
        else:
            claims = self.store.all()
        return sorted(claims, key=lambda claim: (claim.filed_at, claim.claim_id))

    def for_order(self, numbers: Iterable[str]) -> list[Claim]:
        return self.store.for_numbers(numbers)

    # ---- matching --------------------------------------------------------------------------------------------
    def match(self, claim_id: str, *, now: datetime) -> Claim:
        """Look for the claim's order and move the claim on: resolved (the order is the claimant's, possibly after
        the ledger credited it), matched (the ledger could not settle it yet), needs_review (an agent decides),
        rejected (another shopper's), escalated (nothing found in time), or still open."""
        found = self.store.get(claim_id)
        if found is None:
            raise LookupError(f"no claim {claim_id}")
        claim, version = found
        if claim.state not in SEARCHED_STATES:
            return claim
        outcome = self._conclude(claim, now)
        if outcome.credit is not None:
            if claim.state != ClaimState.MATCHED:
                # recorded before the ledger acts: a claim resolved to this order only, whatever happens next
                matched = replace(claim, state=ClaimState.MATCHED, order_key=outcome.credit, searched=outcome.searched)
                claim, version = self._save(claim, version, replace(matched, updated_at=now), now)
            self._settled(claim, self.ledger.credit_claim(outcome.credit, fact_of(claim), now=now))
            outcome = self._conclude(claim, now)
        elif outcome.contest is not None:
            self._settled(claim, self.ledger.credit_claim(outcome.contest, fact_of(claim), now=now))
            self._hold_contested(outcome.contest, claim, now)
        claim, _ = self._save(claim, version, self._after(claim, outcome, now), now)
        return claim

    def _after(self, claim: Claim, outcome: Outcome, now: datetime) -> Claim:
        after = replace(
            claim,
            state=outcome.state,
            order_key=outcome.order_key or claim.order_key,
            reason=outcome.reason,
            searched=outcome.searched,
            updated_at=now,
        )
        return replace(after, order_key=None) if outcome.state == ClaimState.OPEN else after

    def _conclude(self, claim: Claim, now: datetime) -> Outcome:
        config = self._config()
        verdicts: list[tuple[OrderFacts, Verdict, str]] = []
        rivalled = set()
        for key in self.ledger.store.find_orders(claim.order_number):
            view = load_order(key, self.ledger.store)
            if view.record is None or not view.lines:
                continue
            facts = order_facts(
                key,
                view.lines,
                user_id=view.record.user_id,
                state=view.record.state,
                config=config,
                claims=view.claims,
                clicked=self._clicked(view),
            )
            verdict, why = judge(claim, facts, self.rules, config)
            if verdict == Verdict.NOT_THIS:
                continue
            verdicts.append((facts, verdict, why))
            if verdict in (Verdict.MATCHES, Verdict.NEEDS_EVIDENCE):
                if rivals(claim, self.store.for_numbers(facts.numbers()), facts, self.rules, config):
                    rivalled.add(key)
        return conclude(claim, verdicts, now=now, rivalled=frozenset(rivalled))

    def _clicked(self, view: OrderView) -> bool:
        """Whether a click of the order's lines names its shopper (then no claim contests it)."""
        user = view.record.user_id if view.record else None
        if user is None or not view.claims:
            return False
        clicks = self.ledger.store.find_clicks(line.sub_id for line in view.lines.values() if line.sub_id)
        return any(click is not None and click.user_id == user for click in clicks.values())

    def _config(self) -> AccrualConfig | None:
        try:
            return self.ledger.config
        except LookupError:
            return None

    def _hold_contested(self, key: str, contender: Claim, now: datetime) -> None:
        """The claims the order already recorded wait for the agent too: the order is held for review."""
        for fact in self.ledger.load_order(key).claims:
            found = self.store.get(fact.claim_id)
            if fact.claim_id == contender.claim_id or found is None:
                continue
            claim, version = found
            if claim.state in (ClaimState.RESOLVED, ClaimState.MATCHED):
                held = replace(claim, state=ClaimState.NEEDS_REVIEW, reason=ReviewReason.CONTESTED.value)
                self._save(claim, version, replace(held, updated_at=now), now)

    def _settled(self, claim: Claim, counts: dict[str, int]) -> None:
        if counts.get("orders_failed") or counts.get("journal_conflicts"):
            logger.warning("claim's order not settled", extra={"claim": claim.claim_id, "counts": counts})

    # ---- the steps after a reconcile and on the scheduled sweep ---------------------------------------------
    def after_reconcile(self, lines: Sequence[OrderLine], *, now: datetime) -> dict[str, int]:
        """Claims naming the reconciled orders' numbers: those still searched matched again, those credited or
        waiting moved to the order their partner line moved to. Costs nothing while no claim is live."""
        if not lines or not self.store.any_in(FOLLOWED_STATES):
            return {}
        numbers = {line.order_id for line in lines} | {line.partner_order_id for line in lines if line.partner_order_id}
        claims = self.store.for_numbers(numbers)
        counts = self._match_all([claim for claim in claims if claim.state in SEARCHED_STATES], now=now)
        credited = [claim for claim in claims if claim.state in (ClaimState.RESOLVED, ClaimState.NEEDS_REVIEW)]
        keys = {key for key in (self._order_of_claim(claim) for claim in credited if claim.order_key) if key}
        self.after_orders_changed(sorted(keys), now=now)
        return counts

    def after_orders_changed(self, keys: Iterable[str], *, now: datetime) -> None:
        """The claims recorded on orders the ledger decided again (an operator's review or redecide, a later click,
        a moved line) follow what the ledger decided: to the order their line moved to, waiting for a verdict while
        the order is held for review, resolved when it is the claimant's, rejected when it went to another shopper."""
        for key in keys:
            view = self.ledger.load_order(key)
            for fact in view.claims:
                self._follow_order(fact.claim_id, key, view, now)

    def _follow_order(self, claim_id: str, key: str, view: OrderView, now: datetime) -> None:
        found = self.store.get(claim_id)
        if found is None or found[0].state == ClaimState.REJECTED or view.record is None:
            return
        claim, version = found
        owner = view.record.user_id
        if view.state == OrderState.ON_REVIEW:
            if claim.state == ClaimState.NEEDS_REVIEW:
                return
            after = replace(claim, state=ClaimState.NEEDS_REVIEW, order_key=key, reason=ReviewReason.CONTESTED.value)
        elif owner == claim.user_id:
            after = replace(claim, state=ClaimState.RESOLVED, order_key=key, reason=None)
        elif owner is not None:
            reason = RejectReason.ORDER_OF_ANOTHER_SHOPPER.value
            after = replace(claim, state=ClaimState.REJECTED, order_key=key, reason=reason)
        else:
            return
        self._save(claim, version, replace(after, updated_at=now), now)

    def _order_of_claim(self, claim: Claim) -> str | None:
        """The order that records the claim: its own, or the one its partner line moved to."""
        if claim.order_key is not None and self.ledger.load_order(claim.order_key).state != OrderState.MOVED:
            return claim.order_key
        for key in self.ledger.store.find_orders(claim.order_number):
            if any(fact.claim_id == claim.claim_id for fact in self.ledger.load_order(key).claims):
                return key
        return None

    def sweep(self, *, now: datetime) -> dict[str, int]:
        """Every claim still searched, matched again; escalates those whose time has come."""
        claims = [claim for state in SEARCHED_STATES for claim in self.store.in_state(state)]
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

    # ---- an agent's verdict ----------------------------------------------------------------------------------
    def resolve(self, claim_id: str, *, approve: bool, reason: str, now: datetime) -> Claim:
        """An agent's verdict on a claim waiting for one: approved, the ledger credits its order to the claimant
        (other claims on it are rejected); rejected, the ledger takes it off its order. Recorded and announced."""
        if not reason.strip():
            raise ValueError("a verdict needs its reason")
        found = self.store.get(claim_id)
        if found is None:
            raise LookupError(f"no claim {claim_id}")
        claim, version = found
        if claim.state in (ClaimState.RESOLVED, ClaimState.REJECTED):
            raise ValueError(f"claim {claim_id} is {claim.state.value}: there is nothing left to decide")
        if approve:
            return self._approve(claim, version, reason.strip(), now)
        return self._reject(claim, version, reason.strip(), now)

    def _approve(self, claim: Claim, version: int, reason: str, now: datetime) -> Claim:
        key = claim.order_key
        view = self.ledger.load_order(key) if key else None
        if key is None or view is None or view.record is None:
            raise ValueError(f"claim {claim.claim_id} names no order yet: it can only be rejected")
        if view.record.state in POSTED_STATES and view.record.user_id != claim.user_id:
            raise ValueError(f"order {key} was posted to another shopper: posted money does not move")
        others = [fact.claim_id for fact in view.claims if fact.claim_id != claim.claim_id]
        counts = self.ledger.credit_claim(key, fact_of(claim, by_agent=True), now=now, alone=True)
        after_view = self.ledger.load_order(key)
        if counts.get("orders_failed") or counts.get("journal_conflicts"):
            raise RuntimeError(f"order {key} could not be settled: {counts}")
        if after_view.record is None or after_view.record.user_id != claim.user_id:
            raise ValueError(
                f"order {key} is {after_view.state}: a click names another shopper; decide it with `accrual review`"
            )
        for other_id in others + [other.claim_id for other in self._waiting_on(key, claim)]:
            self._reject_other(other_id, now)
        resolved = replace(
            claim, state=ClaimState.RESOLVED, order_key=key, reason=None, verdict_reason=reason, updated_at=now
        )
        claim, _ = self._save(claim, version, resolved, now, force=True)
        return claim

    def _waiting_on(self, key: str, claim: Claim) -> list[Claim]:
        record = self.ledger.load_order(key).record
        numbers = [number for number in (record.order_id, record.partner_order_id) if number] if record else []
        return [
            other
            for other in self.store.for_numbers(numbers)
            if other.claim_id != claim.claim_id and other.state == ClaimState.NEEDS_REVIEW and other.order_key == key
        ]

    def _reject_other(self, claim_id: str, now: datetime) -> None:
        found = self.store.get(claim_id)
        if found is None or found[0].state in (ClaimState.RESOLVED, ClaimState.REJECTED):
            return
        other, version = found
        reason = RejectReason.ANOTHER_CLAIM_APPROVED.value
        self._save(other, version, replace(other, state=ClaimState.REJECTED, reason=reason, updated_at=now), now)

    def _reject(self, claim: Claim, version: int, reason: str, now: datetime) -> Claim:
        key = claim.order_key
        remaining = []
        if key is not None:
            view = self.ledger.load_order(key)
            if any(fact.claim_id == claim.claim_id for fact in view.claims):
                self._settled(claim, self.ledger.withdraw_claim(key, claim.claim_id, now=now))
                remaining = [fact.claim_id for fact in self.ledger.load_order(key).claims]
        rejected = replace(
            claim,
            state=ClaimState.REJECTED,
            reason=RejectReason.REJECTED_BY_AGENT.value,
            verdict_reason=reason,
            updated_at=now,
        )
        claim, _ = self._save(claim, version, rejected, now, force=True)
        for other_id in remaining:
            self._reconsider(other_id, now)
        return claim

    def _reconsider(self, claim_id: str, now: datetime) -> None:
        """A claim held because another contested its order, looked at again once the other is rejected."""
        found = self.store.get(claim_id)
        if found is None or found[0].state != ClaimState.NEEDS_REVIEW:
            return
        claim, version = found
        outcome = self._conclude(claim, now)
        if outcome.state == ClaimState.RESOLVED:
            self._save(claim, version, self._after(claim, outcome, now), now)

    # ---- writing ---------------------------------------------------------------------------------------------
    def _save(
        self, before: Claim, version: int, after: Claim, now: datetime, *, force: bool = False
    ) -> tuple[Claim, int]:
        """Write the claim's new state under its version; a state that publishes (resolved, escalated, needs review,
        rejected) is written with its notification in one transaction. A lost race leaves the other run's claim."""
        same = (after.state, after.order_key, after.reason, after.searched) == (
            before.state,
            before.order_key,
            before.reason,
            before.searched,
        )
        if same and not force:
            return before, version
        announce = after.state != before.state and after.state in (
            ClaimState.RESOLVED,
            ClaimState.ESCALATED,
            ClaimState.NEEDS_REVIEW,
            ClaimState.REJECTED,
        )
        message = self._message(after, before.state, version + 1, now) if announce else None
        if not self.store.save(after, version, message):
            found = self.store.get(after.claim_id)
            assert found is not None
            return found
        return after, version + 1

    def _message(self, claim: Claim, previous: ClaimState | None, version: int, now: datetime) -> OutboxMessage:
        order = self._order_of(claim) if claim.state == ClaimState.RESOLVED else None
        event_id, event, body, attributes = claim_notification(claim, previous, version, order, now)
        return OutboxMessage(event_id, event, claim.user_id, body, attributes, utc_text(now))

    def _order_of(self, claim: Claim) -> ClaimOrder | None:
        if claim.order_key is None:
            return None
        view = self.ledger.load_order(claim.order_key)
        record = view.record
        if record is None:
            return None
        decision = OrderDecision.from_dict(json.loads(view.decision_json)) if view.decision_json else None
        return ClaimOrder(
            partner=record.partner,
            order_id=record.order_id,
            partner_order_id=record.partner_order_id,
            order_state=record.state,
            cashback_usd=money_str((record.pending_usd or ZERO) + (record.confirmed_usd or ZERO)),
            cashback=money_str((record.pending or ZERO) + (record.confirmed or ZERO)),
            account_currency=record.account_currency,
            decision=decision,
        )
