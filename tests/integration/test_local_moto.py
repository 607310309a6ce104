"""The embedded moto server's transactions: without moto's whole-table copy, a cancelled transaction still leaves
every item (and the table's stream) exactly as it was, and a committed one applies every item."""
from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def table(moto_endpoint):
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    name = f"undo-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    client.put_item(TableName=name, Item={"pk": {"S": "order"}, "sk": {"S": "ORDER"}, "held": {"N": "5"}})
    client.put_item(TableName=name, Item={"pk": {"S": "user"}, "sk": {"S": "BALANCE"}, "pending": {"N": "5"}})
    return client, name


def _everything(client, name):
    items = client.scan(TableName=name, ConsistentRead=True)["Items"]
    return sorted((item["pk"]["S"], item["sk"]["S"], repr(sorted(item.items()))) for item in items)


def _stream_records(name, endpoint):
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
    arn = boto3.client("dynamodb", endpoint_url=endpoint).describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return len(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def _transaction(name, *, condition_holds: bool):
    return [
        {"Put": {"TableName": name, "Item": {"pk": {"S": "order"}, "sk": {"S": "ENTRY#1"}, "amount": {"N": "3"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": name, "Key": {"pk": {"S": "user"}, "sk": {"S": "BALANCE"}},
                    "UpdateExpression": "ADD pending :delta", "ExpressionAttributeValues": {":delta": {"N": "3"}}}},
        {"Update": {"TableName": name, "Key": {"pk": {"S": "order"}, "sk": {"S": "ORDER"}},
                    "UpdateExpression": "SET held = :new", "ConditionExpression": "held = :old",
                    "ExpressionAttributeValues": {":new": {"N": "8"},
                                                  ":old": {"N": "5" if condition_holds else "7"}}}},
    ]


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(table, moto_endpoint):
    client, name = table
    before, records = _everything(client, name), _stream_records(name, moto_endpoint)
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=_transaction(name, condition_holds=False))
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in raised.value.response["CancellationReasons"]] == \
        ["None", "None", "ConditionalCheckFailed"]
    assert _everything(client, name) == before
    assert _stream_records(name, moto_endpoint) == records


def test_a_committed_transaction_applies_every_item(table, moto_endpoint):
    client, name = table
    records = _stream_records(name, moto_endpoint)
    client.transact_write_items(TransactItems=_transaction(name, condition_holds=True))
    items = {(item["pk"]["S"], item["sk"]["S"]): item for item in client.scan(TableName=name)["Items"]}
    assert items[("order", "ENTRY#1")]["amount"] == {"N": "3"}
    assert items[("user", "BALANCE")]["pending"] == {"N": "8"}
    assert items[("order", "ORDER")]["held"] == {"N": "8"}
    assert _stream_records(name, moto_endpoint) == records + 3
