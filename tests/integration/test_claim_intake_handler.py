"""The claim intake Lambda with events/claim_intake.json and the environment the stack gives it: a claim is filed
(and matched), a redelivered message files nothing new, a malformed message fails alone."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from accrual.composition import composition
from accrual.domain.claims import ClaimState, claim_id_of
from support.handlers import FakeContext, event, function_environment, load_handler
from support.ledger import T0, balance_of, line, load_reference_data

EVENT = event("claim_intake")


@pytest.fixture
def intake(stack, monkeypatch):
    variables = function_environment(stack, "ClaimIntakeFunction", monkeypatch)
    assert variables["CLAIMS_TABLE"] == f"{stack.stack}-claims"
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    return load_handler("claim_intake").lambda_handler


def test_the_event_is_shaped_as_sqs_sends_it() -> None:
    SqsModel.model_validate(EVENT)


def test_a_claim_message_files_and_matches_the_claim_and_a_bad_one_fails_alone(stack, intake):
    composition(stack).ledger().reconcile([line("8123456789", sub_id="lost")], now=T0)
    batch = copy.deepcopy(EVENT)
    bad = copy.deepcopy(batch["Records"][0])
    bad["messageId"] = "bad-1"
    bad["body"] = json.dumps({"user_id": "bob", "order_number": "X", "amount": "5"})  # no currency
    batch["Records"].append(bad)

    response = intake(batch, FakeContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    claim = composition(stack).claims.show(claim_id_of("alice", "8123456789"))
    assert claim.state == ClaimState.RESOLVED
    assert balance_of("alice")[0] == Decimal("5.00")
    # redelivered: the same claim, nothing new
    assert intake(copy.deepcopy(EVENT), FakeContext()) == {"batchItemFailures": []}
    assert len(composition(stack).claims.list_claims(user_id="alice")) == 1
    assert balance_of("alice")[0] == Decimal("5.00")
