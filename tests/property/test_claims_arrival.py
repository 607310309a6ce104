"""Claims and report lines in any order of arrival (and repeated) end in the same balances and claim states, with a
clean audit: a claim filed before its line, after it, by the partner's order number, a claim for another shopper's
order, and a line whose click names its shopper, shuffled by hypothesis. On the in-memory stores: the claims step
runs after the ledger's reconcile, as the ingest runs it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accrual.domain.claims import ClaimRequest, ClaimState, claim_id_of
from support.claims import memory_claims
from support.ledger import T0, line
from support.memory import memory_ledger
from support.readers import audit

CLAIMS = {
    "alice-O1": ClaimRequest(
        user_id="alice", order_number="O1", ordered_at=T0, amount=Decimal("100.00"), currency="USD"
    ),
    "bob-P2": ClaimRequest(
        user_id="bob", order_number="P2", ordered_at=T0.date(), amount=Decimal("54.00"), currency="EUR"
    ),  # 60 USD at 0.90 EUR per USD
    "bob-O3": ClaimRequest(user_id="bob", order_number="O3"),  # carol's order: refused
    "alice-O4": ClaimRequest(user_id="alice", order_number="O4"),  # her own click already names her
}
LINES = {
    "O1": line("O1", sub_id="lost-1"),
    "O2": line("O2", sub_id="lost-2", partner_order_id="P2", amount="60.00"),
    "O3": line("O3", user="carol", amount="40.00"),
    "O4": line("O4", user="alice", amount="20.00"),
    "O1-settled": line("O1", sub_id="lost-1", status="settled", at=T0 + timedelta(hours=2)),
}
EVENTS = [f"claim:{name}" for name in CLAIMS] + [f"line:{name}" for name in LINES]
# 5% of each order: alice O1 5.00 + O4 1.00 (EUR at 0.90), bob O2 3.00, carol O3 2.00
EXPECTED_USD = {"alice": Decimal("6.00"), "bob": Decimal("3.00"), "carol": Decimal("2.00")}
EXPECTED_STATES = {
    "alice-O1": ClaimState.RESOLVED,
    "bob-P2": ClaimState.RESOLVED,
    "bob-O3": ClaimState.REJECTED,
    "alice-O4": ClaimState.RESOLVED,
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(EVENTS), repeats=st.lists(st.sampled_from(EVENTS), max_size=3))
def test_any_arrival_order_ends_in_the_same_balances_and_claim_states(order, repeats):
    ledger = memory_ledger({"alice": "EUR", "bob": "EUR", "carol": "USD"})
    claims = memory_claims(ledger)
    now = T0 + timedelta(hours=3)
    for event in [*order, *repeats]:
        kind, name = event.split(":")
        now += timedelta(minutes=10)
        if kind == "claim":
            claims.file(CLAIMS[name], now=now)
        else:
            ledger.reconcile([LINES[name]], now=now)
            claims.after_reconcile([LINES[name]], now=now)
    ledger.confirm(now=now + timedelta(hours=1))
    claims.sweep(now=now + timedelta(hours=1))  # the cycle's sweep

    for user, usd in EXPECTED_USD.items():
        stored = ledger.store.balance(user)
        held = stored.holding if stored else None
        assert held is not None and held.pending_usd + held.confirmed_usd == usd, (user, order, repeats)
    for name, state in EXPECTED_STATES.items():
        request = CLAIMS[name]
        assert claims.show(claim_id_of(request.user_id, request.order_number)).state == state, (name, order)
    result = audit(ledger.store)
    assert result["ok"], result["differences"]
