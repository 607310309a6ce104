"""The pure claim rules: validation, the evidence rule with its window and tolerance, rival claims, and the outcome of
a search."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from accrual.domain.claims import (
    Claim,
    ClaimRequest,
    ClaimRules,
    ClaimState,
    OrderFacts,
    Verdict,
    amount_agrees,
    conclude,
    judge,
    new_claim,
    rivals,
)
from support.builders import config
from support.ledger import T0

RULES = ClaimRules()


def facts(**changes) -> OrderFacts:
    data = dict(
        key="aliexpress#O1",
        partner="aliexpress",
        order_id="O1",
        partner_order_ids=("P1",),
        user_id=None,
        state="unattributed",
        ordered_at=T0,
        items_usd=Decimal("100"),
        total_usd=Decimal("105"),
    )
    data.update(changes)
    return OrderFacts(**data)


def claim(user="alice", number="O1", filed=T0, **changes) -> Claim:
    request = ClaimRequest.model_validate({"user_id": user, "order_number": number, **changes})
    return new_claim(request, now=filed, rules=RULES, account_currency="USD")


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"amount": "10"}, "amount and currency go together"),
        ({"amount": "-1", "currency": "USD"}, "positive amount"),
        ({"ordered_at": "2026-03-01T10:00:00"}, "time zone"),
        ({"ordered_at": "1999-12-31"}, "2000..2100"),
        ({"currency": "XXX", "amount": "1"}, "currency"),
        ({"order_number": ""}, "order_number"),
    ],
)
def test_an_invalid_claim_is_refused_with_its_reason(data, problem):
    with pytest.raises(ValidationError) as error:
        ClaimRequest.model_validate({"user_id": "alice", "order_number": "O1", **data})
    assert problem in str(error.value)


def test_a_bare_date_is_a_day_and_the_claim_id_is_the_shopper_and_the_number():
    made = claim(ordered_at="2026-03-01")
    assert made.ordered_on == date(2026, 3, 1) and made.ordered_at is None
    assert made.claim_id == claim(filed=T0 + timedelta(days=3)).claim_id != claim(user="bob").claim_id
    assert made.escalate_at == T0 + timedelta(days=12)
    assert (
        new_claim(ClaimRequest(user_id="x", order_number="O1"), now=T0, rules=RULES, account_currency=None).state
        == ClaimState.REJECTED
    )


@pytest.mark.parametrize(
    "order, verdict",
    [
        (facts(), Verdict.MATCHES),
        (facts(order_id="O9", partner_order_ids=("O1",)), Verdict.MATCHES),  # the partner's number
        (facts(order_id="O9", partner_order_ids=()), Verdict.NOT_THIS),
        (facts(user_id="alice", state="pending"), Verdict.MINE),
        (facts(user_id="bob", state="pending"), Verdict.OTHERS),  # a click's: never taken
        (facts(user_id="bob", state="pending", claim_ids=("clm_bob",)), Verdict.CONTESTS),  # a claimant's, not posted
        (facts(user_id="bob", state="confirmed", claim_ids=("clm_bob",), posted=True), Verdict.OTHERS),
        (facts(user_id="bob", state="pending", claim_ids=("clm_bob",), clicked=True), Verdict.OTHERS),  # bob's click
        (facts(user_id="bob", state="pending", claim_ids=("clm_bob",), by_agent=True), Verdict.OTHERS),  # an agent's
        (facts(state="on_review"), Verdict.WAITING),
        (facts(ordered_at=T0 + timedelta(days=3)), Verdict.MISMATCH),
        (facts(items_usd=Decimal("150"), total_usd=Decimal("150")), Verdict.MISMATCH),
    ],
)
def test_judge(order, verdict):
    assert judge(claim(ordered_at=T0.isoformat(), amount="100", currency="USD"), order, RULES, None)[0] == verdict


@pytest.mark.parametrize(
    "given, missing",
    [({}, "amount"), ({"ordered_at": "2026-03-01"}, "amount"), ({"amount": "100", "currency": "USD"}, "order date")],
)
def test_an_order_number_alone_is_not_evidence(given, missing):
    verdict, why = judge(claim(**given), facts(), RULES, None)
    assert verdict == Verdict.NEEDS_EVIDENCE and why.endswith(f"gives no {missing}")


def test_a_bare_date_covers_its_day_and_the_window():
    made = claim(ordered_at="2026-03-01", amount="100", currency="USD")
    assert judge(made, facts(ordered_at=T0 + timedelta(days=2, hours=12)), RULES, None)[0] == Verdict.MATCHES
    assert judge(made, facts(ordered_at=T0 + timedelta(days=3, hours=14)), RULES, None)[0] == Verdict.MISMATCH


def test_an_amount_in_another_currency_uses_the_configured_rate_and_the_tolerance():
    rates = config(fx_rates={"2026-01-01": {"RUB": "90"}})
    day = {"ordered_at": "2026-03-01"}
    assert judge(claim(amount="9300", currency="RUB", **day), facts(), RULES, rates)[0] == Verdict.MATCHES  # 103.33
    assert judge(claim(amount="9500", currency="RUB", **day), facts(), RULES, rates)[0] == Verdict.MATCHES  # shipping
    assert judge(claim(amount="10500", currency="RUB", **day), facts(), RULES, rates)[0] == Verdict.MISMATCH
    verdict, why = judge(claim(amount="100", currency="KZT", **day), facts(), RULES, rates)
    assert verdict == Verdict.MISMATCH and "no exchange rate for KZT" in why


@given(actual=st.decimals(min_value=0, max_value=10_000, places=2))
def test_the_tolerance_is_five_percent_and_at_least_fifty_cents(actual):
    bound = max(actual * Decimal("0.05"), Decimal("0.50"))
    assert amount_agrees(actual + bound, actual, RULES)
    assert not amount_agrees(actual + bound + Decimal("0.01"), actual, RULES)


@given(st.permutations(["alice", "bob", "carol"]))
def test_every_claim_on_one_unattributed_order_has_rivals_whatever_order_they_are_read_in(users):
    evidence = {"ordered_at": T0.isoformat(), "amount": "100", "currency": "USD"}
    claims = [claim(user=user, filed=T0 + timedelta(hours=n), **evidence) for n, user in enumerate(users)]
    for made in claims:
        assert sorted(other.user_id for other in rivals(made, claims, facts(), RULES, None)) == sorted(
            user for user in users if user != made.user_id
        )
    rejected = [Claim(**{**c.__dict__, "state": ClaimState.REJECTED}) for c in claims]
    elsewhere = [Claim(**{**c.__dict__, "order_key": "aliexpress#O2"}) for c in claims]
    assert rivals(claims[0], rejected, facts(), RULES, None) == []
    assert rivals(claims[0], elsewhere, facts(), RULES, None) == []


def test_conclude():
    made = claim()
    mine, others, matches = facts(user_id="alice", state="pending"), facts(user_id="bob"), facts()
    none: frozenset[str] = frozenset()
    both = [(others, Verdict.OTHERS, ""), (mine, Verdict.MINE, "")]
    assert conclude(made, both, now=T0, rivalled=none).state == ClaimState.RESOLVED
    outcome = conclude(made, [(matches, Verdict.MATCHES, "")], now=T0, rivalled=none)
    assert outcome.state == ClaimState.MATCHED and outcome.credit == matches.key
    rivalled = conclude(made, [(matches, Verdict.MATCHES, "")], now=T0, rivalled=frozenset({matches.key}))
    assert (rivalled.state, rivalled.reason, rivalled.credit) == (ClaimState.NEEDS_REVIEW, "ANOTHER_CLAIM", None)
    bare = conclude(made, [(matches, Verdict.NEEDS_EVIDENCE, "")], now=T0, rivalled=none)
    assert (bare.state, bare.reason, bare.order_key) == (ClaimState.NEEDS_REVIEW, "NOT_ENOUGH_EVIDENCE", matches.key)
    contest = conclude(made, [(others, Verdict.CONTESTS, "")], now=T0, rivalled=none)
    assert (contest.state, contest.contest) == (ClaimState.NEEDS_REVIEW, others.key)
    assert conclude(made, [(others, Verdict.OTHERS, "")], now=T0, rivalled=none).reason == "ORDER_OF_ANOTHER_SHOPPER"
    assert conclude(made, [], now=T0 + timedelta(days=11), rivalled=none).state == ClaimState.OPEN
    late = conclude(made, [], now=T0 + timedelta(days=12), rivalled=none)
    assert late.state == ClaimState.ESCALATED and late.searched[0]["verdict"] == "none"
