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
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
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
        {
            "Put": {
                "TableName": name,
                "Item": {"pk": {"S": "order"}, "sk": {"S": "ENTRY#1"}, "amount": {"N": "3"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": name,
                "Key": {"pk": {"S": "user"}, "sk": {"S": "BALANCE"}},
                "UpdateExpression": "ADD pending :delta",
                "ExpressionAttributeValues": {":delta": {"N": "3"}},
            }
        },
        {
            "Update": {
                "TableName": name,
                "Key": {"pk": {"S": "order"}, "sk": {"S": "ORDER"}},
                "UpdateExpression": "SET held = :new",
                "ConditionExpression": "held = :old",
                "ExpressionAttributeValues": {":new": {"N": "8"}, ":old": {"N": "5" if condition_holds else "7"}},
            }
        },
    ]


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(table, moto_endpoint):
    client, name = table
    before, records = _everything(client, name), _stream_records(name, moto_endpoint)
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=_transaction(name, condition_holds=False))
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in raised.value.response["CancellationReasons"]] == [
        "None",
        "None",
        "ConditionalCheckFailed",
    ]
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


# ---- queries read only their candidates: the answers stay those of a scan -----------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYS = st.tuples(st.sampled_from("abc"), st.sampled_from("xy"))
GROUPS = st.sampled_from(["g1", "g2", None])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, GROUPS),
        st.tuples(st.just("update"), KEYS, GROUPS),
        st.tuples(st.just("delete"), KEYS, st.none()),
        st.tuples(st.just("cancelled"), KEYS, GROUPS),
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def indexed(moto_endpoint):
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    name = f"gsi-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name_, "AttributeType": "S"} for name_ in ("pk", "sk", "grp")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_group",
                "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return client, name


def _key(key):
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}


def _apply(client, name, operation, key, group):
    if operation == "put":
        client.put_item(TableName=name, Item={**_key(key), **({"grp": {"S": group}} if group else {})})
    elif operation == "update":
        if group:
            client.update_item(
                TableName=name,
                Key=_key(key),
                UpdateExpression="SET grp = :g",
                ExpressionAttributeValues={":g": {"S": group}},
            )
        else:
            client.update_item(TableName=name, Key=_key(key), UpdateExpression="REMOVE grp")
    elif operation == "delete":
        client.delete_item(TableName=name, Key=_key(key))
    else:  # a transaction that writes the item, then fails on a condition: nothing of it may stay
        with pytest.raises(ClientError):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": {**_key(key), "grp": {"S": group or "g3"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": name,
                            "Key": _key(("zz", "zz")),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_queries_answer_what_a_scan_finds(indexed, operations):
    client, name = indexed
    for item in client.scan(TableName=name)["Items"]:
        client.delete_item(TableName=name, Key={"pk": item["pk"], "sk": item["sk"]})
    for operation, key, group in operations:
        _apply(client, name, operation, key, group)
    everything = client.scan(TableName=name)["Items"]
    for group in ("g1", "g2", "g3"):
        queried = client.query(
            TableName=name,
            IndexName="by_group",
            KeyConditionExpression="grp = :g",
            ExpressionAttributeValues={":g": {"S": group}},
        )["Items"]
        assert sorted(map(repr, queried)) == sorted(
            repr(item) for item in everything if item.get("grp") == {"S": group}
        )
    for pk in "abc":
        queried = client.query(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
            ConsistentRead=True,
        )["Items"]
        assert [item["sk"]["S"] for item in queried] == sorted(
            item["sk"]["S"] for item in everything if item["pk"] == {"S": pk}
        )
