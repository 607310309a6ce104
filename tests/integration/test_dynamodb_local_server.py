"""The DynamoDB Local launcher: started on a free port, answers boto3 as DynamoDB, and is gone once the `with` block
ends; beside moto, boto3's per-service endpoint sends DynamoDB to it and every other service to moto."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from accrual_dev.local import dynamodb_local
from accrual_dev.local.server import LOCAL_ENVIRONMENT

# started by the DynamoDB Local run of the conformance suites (ACCRUAL_EMULATOR=dynamodb-local), which installs it
pytestmark = pytest.mark.skipif(
    os.environ.get("ACCRUAL_EMULATOR") != "dynamodb-local" or not dynamodb_local.available(),
    reason="the DynamoDB Local suite only (ACCRUAL_EMULATOR=dynamodb-local, make dynamodb-local)",
)


def test_dynamodb_local_starts_answers_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    with dynamodb_local.DynamoDBLocalServer() as server:
        for name, value in {**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL_DYNAMODB": server.url}.items():
            monkeypatch.setenv(name, value)
        dynamodb = boto3.client("dynamodb")
        assert dynamodb.meta.endpoint_url == server.url
        dynamodb.create_table(
            TableName="launcher-probe",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        dynamodb.put_item(TableName="launcher-probe", Item={"pk": {"S": "a"}, "amount": {"N": "5.00"}})
        # DynamoDB's own number format: no trailing zeros
        assert dynamodb.get_item(TableName="launcher-probe", Key={"pk": {"S": "a"}})["Item"]["amount"] == {"N": "5"}
        pid = server.pid
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_on_disk_the_tables_live_in_a_file_removed_when_the_server_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNAMODB_LOCAL_JAVA_OPTIONS", raising=False)
    with dynamodb_local.DynamoDBLocalServer(storage="disk") as server:
        for name, value in {**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL_DYNAMODB": server.url}.items():
            monkeypatch.setenv(name, value)
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="on-disk",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        dynamodb.put_item(TableName="on-disk", Item={"pk": {"S": "a"}})
        assert dynamodb.get_item(TableName="on-disk", Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
        assert server._folder is not None
        folder = Path(server._folder.name)
        assert [path.suffix for path in folder.iterdir()] == [".db"]
        # a long-lived stack's server: the full compiler, and SQLite's syncs skipped when libeatmydata is there
        command = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert b"-XX:TieredStopAtLevel=1" not in command and b"-Xmx512m" in command
        library = dynamodb_local.no_sync_library()
        mapped = Path(f"/proc/{server.pid}/maps").read_text()
        assert ("libeatmydata" in mapped) == (library is not None)
    assert not folder.exists()


def test_in_memory_the_server_keeps_the_quick_start_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNAMODB_LOCAL_JAVA_OPTIONS", raising=False)
    with dynamodb_local.DynamoDBLocalServer(storage="memory") as server:
        command = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert b"-XX:TieredStopAtLevel=1" in command and b"-inMemory" in command
        assert "libeatmydata" not in Path(f"/proc/{server.pid}/maps").read_text()


def test_an_unknown_storage_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of memory, disk"):
        dynamodb_local.DynamoDBLocalServer(storage="tape")


def test_beside_moto_only_dynamodb_goes_to_dynamodb_local(monkeypatch: pytest.MonkeyPatch) -> None:
    with dynamodb_local.DynamoDBLocalStack() as emulator:
        for name, value in {**LOCAL_ENVIRONMENT, **emulator.endpoints}.items():
            monkeypatch.setenv(name, value)
        assert boto3.client("dynamodb").meta.endpoint_url == emulator.dynamodb_url
        assert boto3.client("dynamodbstreams").meta.endpoint_url == emulator.dynamodb_url
        assert boto3.client("sqs").meta.endpoint_url == emulator.url != emulator.dynamodb_url
        boto3.client("dynamodb").create_table(
            TableName="only-in-dynamodb-local",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        on_moto = boto3.client("dynamodb", endpoint_url=emulator.url).list_tables()["TableNames"]
        assert "only-in-dynamodb-local" not in on_moto
        pids = emulator.pids
    for pid in pids.values():
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
