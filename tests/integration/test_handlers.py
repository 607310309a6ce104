"""The Lambda handlers, invoked with the events in events/ and the environment template.yaml gives each function on
the local stack: the handler, the template's wiring and the package meet here."""

from __future__ import annotations

import base64
import json
import zlib

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, S3Model, SqsModel

from accrual.settings import Settings
from support.handlers import EVENTS, ROOT, FakeContext, event, function_environment, load_handler


def test_events_are_shaped_as_their_sources_send_them() -> None:
    """Every event in events/ is parsed by the model its function parses it with."""
    S3Model.model_validate(event("report_drop"))
    stream = DynamoDBStreamModel.model_validate(event("outbox_relay"))
    # a new event; the earlier form's mark as published; the delete of a published one
    assert [record.eventName for record in stream.Records] == ["INSERT", "MODIFY", "REMOVE"]
    work = SqsModel.model_validate(event("reconcile"))
    units = [
        load_handler("reconcile").WorkRecord.model_validate(record.model_dump(mode="json")).body
        for record in work.Records
    ]
    assert [unit.kind for unit in units] == ["page", "confirm"]
    assert load_handler("pull").ScheduledPull.model_validate(event("pull")).partner == "aliexpress"
    assert load_handler("confirm").ScheduledConfirm.model_validate(event("confirm")).scheduled_time
    handled = {path.stem for path in EVENTS.glob("*.json")} - {"demo-config"}
    assert handled == {folder.name for folder in (ROOT / "functions").iterdir() if (folder / "app.py").is_file()}


def test_outbox_relay_publishes_the_new_event_and_skips_the_published_and_the_removed_one(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = function_environment(stack, "OutboxRelayFunction", monkeypatch)
    assert environment["NOTIFICATIONS_TOPIC_ARN"] == stack.notifications_topic_arn

    response = load_handler("outbox_relay").lambda_handler(event("outbox_relay"), FakeContext())

    assert response == {"batchItemFailures": []}
    messages = (
        boto3.client("sqs")
        .receive_message(QueueUrl=stack.local_notifications_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )
    published = [json.loads(message["Body"]) for message in messages]
    assert [json.loads(p["Message"])["event_id"] for p in published] == ["cashback.pending:aliexpress#8123456789:1"]
    assert published[0]["MessageAttributes"]["event_type"]["Value"] == "cashback.pending"


def test_outbox_relay_publishes_a_body_stored_compressed(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body above the compression threshold reaches the stream as `body_z`; subscribers get the same text."""
    function_environment(stack, "OutboxRelayFunction", monkeypatch)
    batch = event("outbox_relay")
    image = batch["Records"][0]["dynamodb"]["NewImage"]
    text = image.pop("body")["S"][:-1] + ', "note": "' + "x" * 2000 + '"}'
    image["body_z"] = {"B": base64.b64encode(zlib.compress(text.encode())).decode()}

    response = load_handler("outbox_relay").lambda_handler(batch, FakeContext())

    assert response == {"batchItemFailures": []}
    messages = (
        boto3.client("sqs")
        .receive_message(QueueUrl=stack.local_notifications_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )
    assert [json.loads(message["Body"])["Message"] for message in messages] == [text]


def test_outbox_relay_reports_a_failed_record_alone(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    function_environment(stack, "OutboxRelayFunction", monkeypatch)
    monkeypatch.setenv("NOTIFICATIONS_TOPIC_ARN", f"{stack.notifications_topic_arn}-missing")
    batch = event("outbox_relay")

    response = load_handler("outbox_relay").lambda_handler(batch, FakeContext())

    inserted = batch["Records"][0]["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": inserted}]}


@pytest.mark.parametrize("function, name", [("ReconcileFunction", "reconcile"), ("report_drop", "report_drop")])
def test_make_invoke_runs_the_handler_with_its_event_on_the_local_stack(
    stack: Settings, function: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from accrual_dev import invoke
    from support.ledger import load_reference_data

    load_reference_data(stack)
    assert invoke.main([function, str(EVENTS / f"{name}.json")]) == 0
    answer = json.loads(capsys.readouterr().out.rsplit("\n{\n", 1)[-1].join(["{\n", ""]))
    if name == "reconcile":
        assert answer == {"batchItemFailures": []}
    else:
        assert answer["handed_on"][0]["units"] == 1
        assert answer["handed_on"][0]["key"] == "drops/admitad/statistics 2026-03-02.csv"


def test_outbox_relay_publishes_every_notification_of_a_shared_record_once_then_removes_it(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction's notifications reach the stream as one shared record: the relay publishes each, removes the
    record, and the stream's retry of the same record sends none of them again (the publish is idempotent)."""
    from accrual.adapters.ledger_items import outbox_messages
    from accrual.adapters.ledger_tables import OutboxRecord
    from accrual.composition import composition
    from support.ledger import T0, line, load_reference_data

    function_environment(stack, "OutboxRelayFunction", monkeypatch)
    load_reference_data(stack)
    composition(stack).ledger().reconcile([line(f"SH-{number}") for number in range(3)], now=T0)
    dynamodb = boto3.client("dynamodb")
    [item] = dynamodb.scan(TableName=stack.outbox_table)["Items"]
    assert "shared_z" in item
    image = {
        name: {"B": base64.b64encode(value["B"]).decode()} if "B" in value else value for name, value in item.items()
    }
    batch = event("outbox_relay")
    record = batch["Records"][0]
    record["dynamodb"] = {**record["dynamodb"], "Keys": {"event_id": item["event_id"]}, "NewImage": image}
    batch["Records"] = [record]
    queue = stack.local_notifications_queue_url

    def received() -> list[str]:
        answer = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return sorted(json.loads(json.loads(m["Body"])["Message"])["event_id"] for m in answer.get("Messages", []))

    relay = load_handler("outbox_relay")
    assert relay.lambda_handler(batch, FakeContext()) == {"batchItemFailures": []}
    held = outbox_messages(OutboxRecord.from_raw_data(item))
    assert len(held) == 3 and received() == sorted(json.loads(message.body)["event_id"] for message in held)
    assert dynamodb.scan(TableName=stack.outbox_table)["Items"] == []
    assert relay.lambda_handler(batch, FakeContext()) == {"batchItemFailures": []}
    assert received() == []
