"""The claim intake Lambda with events/claim_intake.json and the environment the stack gives it: a claim is filed
(and matched), a redelivered message files nothing new, a malformed message fails alone."""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from dataclasses import dataclass
from decimal import Decimal

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from accrual_dev.local.provision import default_template_path, provision
from accrual.domain.claims import ClaimState, claim_id_of
from accrual.service.claims import ClaimService
from accrual.service.ledger import Ledger
from support.ledger import T0, balance_of, line, load_reference_data

ROOT = default_template_path().parent
EVENT = json.loads((ROOT / "events" / "claim_intake.json").read_text())


@dataclass
class FakeContext:
    function_name: str = "claim-intake"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:claim-intake"
    aws_request_id: str = "6f1c2d3e-0a4b-4c5d-8e6f-7a8b9c0d1e2f"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def handler():
    spec = importlib.util.spec_from_file_location("handler_claim_intake", ROOT / "functions" / "claim_intake" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


@pytest.fixture
def intake(stack, monkeypatch):
    name = provision(stack.stack).resources["ClaimIntakeFunction"]
    variables = boto3.client("lambda").get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    assert variables["CLAIMS_TABLE"] == f"{stack.stack}-claims"
    load_reference_data(stack, {"alice": "EUR", "bob": "USD"})
    return handler()


def test_the_event_is_shaped_as_sqs_sends_it() -> None:
    SqsModel.model_validate(EVENT)


def test_a_claim_message_files_and_matches_the_claim_and_a_bad_one_fails_alone(stack, intake):
    Ledger(stack).reconcile([line("8123456789", sub_id="lost")], now=T0)
    event = copy.deepcopy(EVENT)
    bad = copy.deepcopy(event["Records"][0])
    bad["messageId"] = "bad-1"
    bad["body"] = json.dumps({"user_id": "bob", "order_number": "X", "amount": "5"})  # no currency
    event["Records"].append(bad)

    response = intake(event, FakeContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    claim = ClaimService(stack).show(claim_id_of("alice", "8123456789"))
    assert claim.state == ClaimState.RESOLVED
    assert balance_of("alice")[0] == Decimal("5.00")
    # redelivered: the same claim, nothing new
    assert intake(copy.deepcopy(EVENT), FakeContext()) == {"batchItemFailures": []}
    assert len(ClaimService(stack).list(user_id="alice")) == 1
    assert balance_of("alice")[0] == Decimal("5.00")
