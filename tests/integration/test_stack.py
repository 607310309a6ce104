"""The local stack is template.yaml: every resource the template declares exists on the emulator, configured as
declared. The expectations are read from template.yaml itself, so the test follows the template as it grows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from accrual.settings import Settings
from accrual_dev.local.provision import HELD_BACK, default_template_path, load_template, provision
from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer

TEMPLATE = load_template(default_template_path())
CLI = Path(sys.executable).with_name("accrual")


def declared(kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == kind
    }


def sub_stack(text: str, stack: Settings) -> str:
    return text.replace("${AWS::StackName}", stack.stack)


def physical(stack: Settings) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation")
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack.stack)
        for r in page["StackResourceSummaries"]
    }


def test_tables_have_the_declared_keys_indexes_stream_and_ttl(stack: Settings) -> None:
    dynamodb = boto3.client("dynamodb")
    tables = declared("AWS::DynamoDB::Table")
    assert {"OrdersTable", "BalancesTable", "OutboxTable", "ClicksTable", "ControlTable", "IdempotencyTable"} <= set(
        tables
    )
    for properties in tables.values():
        name = sub_stack(properties["TableName"]["Fn::Sub"], stack)
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == properties["KeySchema"], name
        indexes = {index["IndexName"]: index["KeySchema"] for index in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {
            index["IndexName"]: index["KeySchema"] for index in properties.get("GlobalSecondaryIndexes", [])
        }, name
        if "StreamSpecification" in properties:
            assert table["StreamSpecification"] == {
                "StreamEnabled": True,
                "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
            }, name
            assert table["LatestStreamArn"]
        else:
            assert not table.get("StreamSpecification", {}).get("StreamEnabled"), name
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in properties:
            assert ttl == {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": properties["TimeToLiveSpecification"]["AttributeName"],
            }, name
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", name
        assert table["BillingModeSummary"]["BillingMode"] == properties["BillingMode"], name


@pytest.mark.only_on(
    "moto",
    "ministack",
    reason="DynamoDB Local has no backups: DescribeContinuousBackups is an unknown operation there (AWS documents "
    "point-in-time recovery for every table); the deployed setting is checked in the template",
)
def test_tables_have_the_declared_point_in_time_recovery(stack: Settings) -> None:
    dynamodb = boto3.client("dynamodb")
    for properties in declared("AWS::DynamoDB::Table").values():
        name = sub_stack(properties["TableName"]["Fn::Sub"], stack)
        recovery = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        wanted = properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
        status = recovery["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        assert status == ("ENABLED" if wanted else "DISABLED"), name


def test_settings_name_the_stacks_resources(stack: Settings) -> None:
    resources = physical(stack)
    assert stack.orders_table == resources["OrdersTable"]
    assert stack.outbox_table == resources["OutboxTable"]
    assert stack.idempotency_table == resources["IdempotencyTable"]
    assert stack.notifications_topic_arn == resources["NotificationsTopic"]
    assert stack.local_notifications_queue_url == resources["LocalNotificationsQueue"]
    assert stack.reports_bucket == resources["ReportsBucket"]
    assert stack.partner_secrets_prefix == f"{stack.stack}/partners/"
    assert stack.partner_parameters_prefix == f"/{stack.stack}/partners/"


def test_every_declared_resource_exists_except_the_ones_moto_cannot_emulate(stack: Settings) -> None:
    from accrual_dev.local.provision import transform_template

    transformed = transform_template(default_template_path(), boto3.client("s3"))
    resources = provision(stack.stack).resources  # the stack's own and those created beside it
    held_back = {
        logical_id for logical_id, resource in transformed["Resources"].items() if resource["Type"] in HELD_BACK
    }
    assert held_back == {"OutboxRelayFunctionOutbox", "ReconcileFunctionWork", "ClaimIntakeFunctionClaims"}
    assert set(transformed["Resources"]) - held_back <= set(resources)


def test_queues_are_encrypted_and_drain_into_dead_letter_queues(stack: Settings) -> None:
    sqs, resources = boto3.client("sqs"), physical(stack)
    queues = declared("AWS::SQS::Queue")
    assert {
        "LocalNotificationsQueue",
        "NotificationsDeadLetterQueue",
        "PullDeadLetterQueue",
        "WorkQueue",
        "WorkDeadLetterQueue",
        "OutboxRelayDeadLetterQueue",
    } <= set(queues)
    for logical_id, properties in queues.items():
        attributes = sqs.get_queue_attributes(QueueUrl=resources[logical_id], AttributeNames=["All"])["Attributes"]
        assert attributes["SqsManagedSseEnabled"] == "true", logical_id
        if "RedrivePolicy" in properties:
            target = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            redrive = json.loads(attributes["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"].rsplit(":", 1)[-1] == resources[target].rsplit("/", 1)[-1]
            declared_count = properties["RedrivePolicy"]["maxReceiveCount"]
            if isinstance(declared_count, dict):  # a parameter: its default
                declared_count = TEMPLATE["Parameters"][declared_count["Ref"]]["Default"]
            # ministack keeps a parameter's value as the string CloudFormation resolved it to; SQS reads both
            assert int(redrive["maxReceiveCount"]) == declared_count


def test_topic_delivers_to_its_subscribed_queues_through_their_filter_policies(stack: Settings) -> None:
    sns, sqs, resources = boto3.client("sns"), boto3.client("sqs"), physical(stack)
    topic = sns.get_topic_attributes(TopicArn=stack.notifications_topic_arn)["Attributes"]
    assert topic["KmsMasterKeyId"] == declared("AWS::SNS::Topic")["NotificationsTopic"]["KmsMasterKeyId"]

    subscriptions = sns.list_subscriptions_by_topic(TopicArn=stack.notifications_topic_arn)["Subscriptions"]
    endpoints = {s["Endpoint"].rsplit(":", 1)[-1]: s["SubscriptionArn"] for s in subscriptions}
    for properties in declared("AWS::SNS::Subscription").values():
        queue_url = resources[properties["Endpoint"]["Fn::GetAtt"][0]]
        arn = endpoints[queue_url.rsplit("/", 1)[-1]]
        attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        if "FilterPolicy" in properties:
            assert json.loads(attributes["FilterPolicy"]) == properties["FilterPolicy"]

    for event_type in ("cashback.pending", "cashback.confirmed"):
        sns.publish(
            TopicArn=stack.notifications_topic_arn,
            Message=json.dumps({"event_type": event_type}),
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": event_type}},
        )

    def received(queue_url: str) -> list[str]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return sorted(json.loads(json.loads(m["Body"])["Message"])["event_type"] for m in messages.get("Messages", []))

    assert received(resources["LocalNotificationsQueue"]) == ["cashback.confirmed", "cashback.pending"]
    assert received(resources["LocalSettlementsQueue"]) == ["cashback.confirmed"]


def test_reports_bucket_is_encrypted_private_and_versioned(stack: Settings) -> None:
    s3 = boto3.client("s3")
    properties = declared("AWS::S3::Bucket")["ReportsBucket"]
    encryption = s3.get_bucket_encryption(Bucket=stack.reports_bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=stack.reports_bucket)["PublicAccessBlockConfiguration"]
    assert block == properties["PublicAccessBlockConfiguration"]
    assert s3.get_bucket_versioning(Bucket=stack.reports_bucket)["Status"] == "Enabled"


def test_partner_secrets_and_parameters_exist_under_the_prefixes(stack: Settings) -> None:
    secrets, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
    for properties in declared("AWS::SecretsManager::Secret").values():
        name = sub_stack(properties["Name"]["Fn::Sub"], stack)
        assert name.startswith(stack.partner_secrets_prefix)
        value = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
        generated = properties["GenerateSecretString"]
        assert set(value) == {*json.loads(generated["SecretStringTemplate"]), generated["GenerateStringKey"]}
        assert len(value[generated["GenerateStringKey"]]) == generated["PasswordLength"]
    parameters = declared("AWS::SSM::Parameter")
    assert len(parameters) >= 2
    for properties in parameters.values():
        name = sub_stack(properties["Name"]["Fn::Sub"], stack)
        assert name.startswith(stack.partner_parameters_prefix)
        assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == properties["Value"]


def test_functions_exist_with_their_handler_and_every_resource_name(stack: Settings) -> None:
    lambda_client, resources = boto3.client("lambda"), physical(stack)
    variables = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    functions = declared("AWS::Serverless::Function")
    assert set(functions) == {
        "PullFunction",
        "ReconcileFunction",
        "ConfirmFunction",
        "ReportDropFunction",
        "OutboxRelayFunction",
        "ClaimIntakeFunction",
    }
    for logical_id, properties in functions.items():
        configuration = lambda_client.get_function(FunctionName=resources[logical_id])["Configuration"]
        assert configuration["Handler"] == properties["Handler"] == "app.lambda_handler"
        assert variables <= set(configuration["Environment"]["Variables"]), logical_id
        assert (Path(default_template_path()).parent / properties["CodeUri"] / "app.py").is_file()


def test_report_drop_failures_go_to_its_dead_letter_queue(stack: Settings) -> None:
    resources = physical(stack)
    (declared_config,) = [
        properties["EventInvokeConfig"]
        for properties in declared("AWS::Serverless::Function").values()
        if "EventInvokeConfig" in properties
    ]
    # the qualifier the template declares ($LATEST): ministack files the configuration under it and answers
    # ResourceNotFound to a request without one (AWS and moto read both as the same)
    config = boto3.client("lambda").get_function_event_invoke_config(
        FunctionName=resources["ReportDropFunction"], Qualifier="$LATEST"
    )
    assert config["MaximumRetryAttempts"] == declared_config["MaximumRetryAttempts"]
    queue_arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=resources["ReportDropDeadLetterQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn


def test_alarms_exist_and_go_to_the_alarm_topic(stack: Settings) -> None:
    cloudwatch, resources = boto3.client("cloudwatch"), physical(stack)
    alarms = {
        alarm["AlarmName"]: alarm
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for alarm in page["MetricAlarms"]
    }
    topic = resources["AlarmTopic"]
    for logical_id, properties in declared("AWS::CloudWatch::Alarm").items():
        name = (
            sub_stack(properties["AlarmName"]["Fn::Sub"], stack)
            if "AlarmName" in properties
            else f"{stack.stack}-{properties['MetricName']}"
        )
        assert alarms[name]["AlarmActions"] == [topic], logical_id
        if "Metrics" in properties:  # an alarm on metric math: its metrics by id (ministack keeps none of them)
            if os.environ.get("ACCRUAL_EMULATOR", "moto") != "ministack":
                queries = {query["Id"] for query in alarms[name]["Metrics"]}
                assert queries == {query["Id"] for query in properties["Metrics"]}, logical_id
        else:
            assert alarms[name]["MetricName"] == properties["MetricName"], logical_id
    assert boto3.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]


def test_each_partner_has_its_pull_schedule_in_its_time_zone_and_confirm_its_own(stack: Settings) -> None:
    scheduler, resources = boto3.client("scheduler"), physical(stack)
    for partner, zone in (("aliexpress", "America/Los_Angeles"), ("admitad", "Europe/Moscow")):
        schedule = scheduler.get_schedule(Name=f"{stack.stack}-pull-{partner}")
        assert schedule["ScheduleExpression"] == TEMPLATE["Parameters"]["PullSchedule"]["Default"]
        assert schedule["ScheduleExpressionTimezone"] == zone
        assert schedule["Target"]["Arn"].split(":function:")[1] == resources["PullFunction"]
        assert json.loads(schedule["Target"]["Input"])["partner"] == partner
        assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 2
        assert schedule["Target"]["DeadLetterConfig"]["Arn"].endswith(
            resources["PullDeadLetterQueue"].rsplit("/", 1)[-1]
        )
    confirm = scheduler.get_schedule(Name=f"{stack.stack}-confirm")
    assert confirm["Target"]["Arn"].split(":function:")[1] == resources["ConfirmFunction"]


def test_provisioning_again_leaves_the_stack_as_it_is(stack: Settings) -> None:
    before = boto3.client("secretsmanager").get_secret_value(SecretId=f"{stack.partner_secrets_prefix}aliexpress")[
        "SecretString"
    ]
    again = provision(stack.stack)
    assert again.action == "unchanged"
    assert again.outputs["ReportsBucketName"] == stack.reports_bucket
    after = boto3.client("secretsmanager").get_secret_value(SecretId=f"{stack.partner_secrets_prefix}aliexpress")[
        "SecretString"
    ]
    assert after == before


def test_provisioning_a_stack_is_quick(moto_endpoint: str) -> None:
    provision(f"warm{os.getpid()}")
    started = time.monotonic()
    provisioned = provision(f"timed{os.getpid()}")
    assert provisioned.action == "created"
    assert time.monotonic() - started < 10


def test_accrual_stack_provision_on_a_server_started_for_it() -> None:
    with MotoServer() as server:
        environment = {**os.environ, **LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": server.url, "ACCRUAL_STACK": "cli"}
        result = subprocess.run(
            [str(CLI), "stack", "provision"], env=environment, capture_output=True, text=True, timeout=120, cwd="/"
        )
        assert result.returncode == 0, result.stderr
        assert "OrdersTableName: cli-orders" in result.stdout
        assert "NotificationsTopicArn: arn:aws:sns:us-east-1:" in result.stdout
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert {"cli-orders", "cli-outbox", "cli-balances"} <= set(dynamodb.list_tables()["TableNames"])
        again = subprocess.run(
            [str(CLI), "stack", "provision"], env=environment, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stderr
        assert "stack cli unchanged" in again.stdout


def test_accrual_stack_provision_refuses_without_an_endpoint() -> None:
    environment = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    result = subprocess.run(
        [str(CLI), "stack", "provision"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "AWS_ENDPOINT_URL" in result.stderr


@pytest.mark.parametrize(
    "command", [["--help"], ["stack", "--help"], ["stack", "up", "--help"], ["stack", "provision", "--help"]]
)
def test_stack_commands_have_help(command: list[str]) -> None:
    result = subprocess.run([str(CLI), *command], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: accrual" in result.stdout
