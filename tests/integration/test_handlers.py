"""The Lambda handlers, invoked with the events in events/ and the environment template.yaml gives each function on
the local stack: the handler, the template's wiring and the package meet here."""
from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, S3Model

from accrual_dev.local.provision import default_template_path, provision
from accrual.settings import Settings
from support.handlers import EVENTS, ROOT, FakeContext, event, function_environment, load_handler

def test_events_are_shaped_as_their_sources_send_them() -> None:
    S3Model.model_validate(event("report_drop"))
    stream = DynamoDBStreamModel.model_validate(event("outbox_relay"))
    assert {record.eventName for record in stream.Records} == {"INSERT", "MODIFY"}


def test_outbox_relay_publishes_the_new_event_and_skips_the_published_one(
        stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = function_environment(stack, "OutboxRelayFunction", monkeypatch)
    assert environment["NOTIFICATIONS_TOPIC_ARN"] == stack.notifications_topic_arn

    response = load_handler("outbox_relay").lambda_handler(event("outbox_relay"), FakeContext())

    assert response == {"batchItemFailures": []}
    messages = boto3.client("sqs").receive_message(
        QueueUrl=stack.local_notifications_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    published = [json.loads(message["Body"]) for message in messages]
    assert [json.loads(p["Message"])["event_id"] for p in published] == ["cashback.pending:aliexpress#8123456789:1"]
    assert published[0]["MessageAttributes"]["event_type"]["Value"] == "cashback.pending"


def test_outbox_relay_reports_a_failed_record_alone(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    function_environment(stack, "OutboxRelayFunction", monkeypatch)
    monkeypatch.setenv("NOTIFICATIONS_TOPIC_ARN", f"{stack.notifications_topic_arn}-missing")
    batch = event("outbox_relay")

    response = load_handler("outbox_relay").lambda_handler(batch, FakeContext())

    inserted = batch["Records"][0]["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": inserted}]}
