"""The rules decide a seeded month exactly as the reviewed golden file says (money, codes, trail, notes, byte for
byte), and every stored decision reads back and writes back unchanged.

When a rule changes on purpose, `make golden` rewrites `tests/golden/month.jsonl`; the diff is the review."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accrual.domain.decision import OrderDecision
from support import golden

CASES = golden.read()


def test_the_golden_month_covers_every_outcome() -> None:
    outcomes = {case["decision"]["outcome"] for case in CASES if isinstance(case["decision"], dict)}
    assert outcomes == {"earns", "nothing", "on_review", "unattributed"}
    assert any(isinstance(case["decision"], str) for case in CASES), "a refusal (missing fx rate) is golden too"


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_the_rules_decide_the_golden_month_byte_for_byte(case: dict) -> None:
    expected = case["decision"]
    decided = golden.decide(case)
    assert decided == (expected if isinstance(expected, str) else golden.canonical(expected))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([case for case in CASES if isinstance(case["decision"], dict)]))
def test_a_stored_decision_reads_back_and_writes_back_unchanged(case: dict) -> None:
    stored = golden.canonical(case["decision"])
    read_back = OrderDecision.from_dict(json.loads(stored))
    assert golden.canonical(read_back.to_dict()) == stored
    assert isinstance(read_back.cashback_usd, Decimal)
    assert all(isinstance(line.base_usd, Decimal) for line in read_back.lines)
