"""Provision template.yaml at the current endpoint (AWS_ENDPOINT_URL): the local stack and the deployed one have one
definition and cannot drift.

The SAM template is transformed in memory with aws-sam-translator, its code and layer folders are zipped into a
staging bucket on the emulator (the translator accepts only s3:// locations), and the result is created as a
CloudFormation stack named ACCRUAL_STACK. moto's CloudFormation skips the tables' TimeToLiveSpecification and the
bucket's public access block and versioning, so those are applied afterwards through their APIs, read from the same
template, and so is the tables' point-in-time recovery.

moto 5.2's CloudFormation also skips (with only a log line) secrets, SNS subscriptions, queue policies, EventBridge
Scheduler schedules, alarms and a function's asynchronous invocation settings (EventInvokeConfig: its retries and
on-failure destination); those are created here through their own APIs from the transformed template's properties,
with Ref/GetAtt/Sub resolved against the stack. One resource is held back on purpose: the DynamoDB stream event source
mapping, because moto runs its function through Docker inside every PutItem on the table and then discards the
stream's records, which would leave the outbox stream empty. Locally the outbox is published by the cycle's sweep or
by reading the stream; the mapping's settings are checked in the transformed template instead (and so are the
functions' layers, which moto neither attaches nor survives in a stack update).

When DynamoDB has an endpoint of its own (AWS_ENDPOINT_URL_DYNAMODB: DynamoDB Local beside moto), the template's
tables are also created there, with the same names, keys, indexes, stream, TTL and billing mode, from the same
definitions: the application's DynamoDB calls go there, and the copies moto's CloudFormation makes stay unused.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import logging
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

from accrual.adapters.ledger_store import mark_migrated
from accrual.adapters.ledger_tables import LINE_CLAIMS, PACKED_ORDERS
from accrual.settings import BOTO_CONFIG, stack_outputs
from accrual_dev.local.server import ENDPOINT_VARIABLES

STAGING_BUCKET = "accrual-local-staging"
TEMPLATE_BODY_MAX_BYTES = 51_200
# Created by provision() through their own APIs, in this order (moto's CloudFormation skips them).
SUPPLEMENTED = (
    "AWS::SecretsManager::Secret",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::Scheduler::Schedule",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
)
# Not created on the emulator (see the module's docstring).
HELD_BACK = ("AWS::Lambda::EventSourceMapping",)
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Caches and build metadata are left out of the staged zips.
_SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis"}


def default_template_path() -> Path:
    """ACCRUAL_TEMPLATE, else the template.yaml of the checkout this package is installed from, else ./template.yaml."""
    if os.environ.get("ACCRUAL_TEMPLATE"):
        return Path(os.environ["ACCRUAL_TEMPLATE"])
    beside_package = Path(__file__).resolve().parents[3] / "template.yaml"
    return beside_package if beside_package.is_file() else Path.cwd() / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short intrinsic forms (!Ref, !Sub, !GetAtt ...) read as their long forms."""


def _intrinsic(loader: _TemplateLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """The template as a dict (a fresh copy: callers change it)."""
    return copy.deepcopy(_parsed(path.read_text()))


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> dict[str, Any]:
    # PyYAML's pure-Python loader took about 0.3 s of every provisioning (a test provisions a stack each); the text
    # is the key, so an edited template is parsed again
    return yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Provisioned:
    stack: str
    seconds: float
    action: str  # created | updated | unchanged
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    held_back: list[str] = field(default_factory=list)  # logical ids not created on the emulator


class _NoManagedPolicies:
    """The translator resolves managed policy names through IAM; the template names none (policy templates only)."""

    def load(self) -> dict[str, str]:
        return {}


def _zipped_files(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or _SKIPPED_PARTS.intersection(relative.parts):
            continue
        if path.suffix == ".pyc" or any(part.endswith(".egg-info") for part in relative.parts):
            continue
        names.append(relative.as_posix())
    return names


def _zip_folder(folder: Path, prefix: str = "") -> bytes:
    # the files' sizes and modification times: a folder zipped again (a stack each test) is compressed only once
    stats = {name: (folder / name).stat() for name in _zipped_files(folder)}
    signature = tuple((name, stat.st_mtime_ns, stat.st_size) for name, stat in stats.items())
    return _zip_files(folder, prefix, signature)


@functools.lru_cache(maxsize=32)
def _zip_files(folder: Path, prefix: str, signature: tuple[tuple[str, int, int], ...]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, _, _ in signature:
            info = zipfile.ZipInfo(prefix + name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, (folder / name).read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _stage_code(template: dict[str, Any], root: Path, s3) -> None:
    """Point every local CodeUri/ContentUri at a zip of that folder in the staging bucket (layers under python/)."""
    try:
        s3.create_bucket(Bucket=STAGING_BUCKET)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    for resource in template.get("Resources", {}).values():
        kind, properties = resource.get("Type"), resource.get("Properties", {})
        prop = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(kind)
        location = properties.get(prop) if prop else None
        if not isinstance(location, str) or location.startswith("s3://"):
            continue
        prefix = "python/" if kind == "AWS::Serverless::LayerVersion" else ""
        # One key per folder, not per content: a code change then leaves the template (and the stack) unchanged.
        key = f"{location.strip('/')}.zip"
        body = _zip_folder(root / location, prefix)
        if _staged_md5(s3, key) != hashlib.md5(body, usedforsecurity=False).hexdigest():
            s3.put_object(Bucket=STAGING_BUCKET, Key=key, Body=body)
        properties[prop] = f"s3://{STAGING_BUCKET}/{key}"


def _staged_md5(s3, key: str) -> str | None:
    """The MD5 (ETag) of a staged zip, None when it is not there: the same zip is not uploaded again (a test
    provisions a stack each, and the uploads took a fifth of it)."""
    try:
        return s3.head_object(Bucket=STAGING_BUCKET, Key=key)["ETag"].strip('"')
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def transform_template(template_path: Path, s3) -> dict[str, Any]:
    """The CloudFormation template that template.yaml becomes, with its code staged on the emulator."""
    # The translator warns about its own unpublished usage metrics on every run; nothing here publishes them.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    sam_template = load_template(template_path)
    _stage_code(sam_template, template_path.parent, s3)
    staged = json.dumps(sam_template, sort_keys=True)
    return copy.deepcopy(_transformed(staged, os.environ.get("AWS_DEFAULT_REGION", "")))


@functools.lru_cache(maxsize=8)
def _transformed(staged: str, region: str) -> dict[str, Any]:
    """The translator's output for a staged template (the same for every stack made from it: names come from the
    stack, resolved by CloudFormation); the caller gets a copy."""
    from samtranslator.translator.transform import transform

    return transform(json.loads(staged), {}, _NoManagedPolicies())


def _describe(cloudformation, stack: str) -> dict[str, Any] | None:
    try:
        return cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _wait(cloudformation, stack: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = _describe(cloudformation, stack)
        status = described["StackStatus"] if described else "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack} still {status} after {timeout:.0f} s")
        time.sleep(0.2)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
        reasons = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in events
            if e.get("ResourceStatusReason")
        ]
        raise RuntimeError(f"stack {stack} ended {status}: {'; '.join(reasons[:5])}")
    assert described is not None  # CREATE_COMPLETE or UPDATE_COMPLETE: the stack exists
    return described


def _apply_time_to_live(template: dict[str, Any], resources: dict[str, str], dynamodb) -> None:
    for logical_id, resource in template["Resources"].items():
        specification = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource.get("Type") != "AWS::DynamoDB::Table" or not specification:
            continue
        table = resources[logical_id]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        wanted = "ENABLED" if specification.get("Enabled") else "DISABLED"
        if current.get("TimeToLiveStatus") == wanted and (
            wanted == "DISABLED" or current.get("AttributeName") == specification["AttributeName"]
        ):
            continue
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={
                "AttributeName": specification["AttributeName"],
                "Enabled": bool(specification.get("Enabled")),
            },
        )


def _dynamodb_apart(clients: _Clients) -> bool:
    """DynamoDB is served by another endpoint than the stack (DynamoDB Local beside moto)."""
    return clients.client("dynamodb").meta.endpoint_url != clients.client("cloudformation").meta.endpoint_url


def _whole_numbers(throughput: dict[str, Any]) -> dict[str, int]:
    """A throughput setting as the API takes it: CloudFormation resolves a parameter's number to a string."""
    return {key: int(value) for key, value in throughput.items()}


def _create_tables(resolver: _Resolver, dynamodb) -> None:
    """Create the template's tables on the DynamoDB endpoint when they are not there, from their definitions."""
    existing = set(dynamodb.list_tables()["TableNames"])  # a local stack holds a few dozen tables at most
    for logical_id, resource in resolver.template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        properties = resolver.resolve(resource["Properties"])
        name = properties["TableName"]
        resolver.resources[logical_id] = name
        if name in existing:
            continue
        request: dict[str, Any] = {
            key: properties[key]
            for key in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "DeletionProtectionEnabled")
            if key in properties
        }
        for key in ("ProvisionedThroughput", "WarmThroughput"):
            if key in properties:
                request[key] = _whole_numbers(properties[key])
        if properties.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {key: _whole_numbers(value) if key.endswith("Throughput") else value for key, value in index.items()}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        if properties.get("LocalSecondaryIndexes"):
            request["LocalSecondaryIndexes"] = properties["LocalSecondaryIndexes"]
        if "StreamSpecification" in properties:
            request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        if "SSESpecification" in properties:
            request["SSESpecification"] = {"Enabled": bool(properties["SSESpecification"].get("SSEEnabled"))}
        dynamodb.create_table(**request)
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})


def _apply_point_in_time_recovery(template: dict[str, Any], resources: dict[str, str], dynamodb) -> None:
    for logical_id, resource in template["Resources"].items():
        specification = resource.get("Properties", {}).get("PointInTimeRecoverySpecification")
        if resource.get("Type") != "AWS::DynamoDB::Table" or not specification:
            continue
        try:
            dynamodb.update_continuous_backups(
                TableName=resources[logical_id],
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": bool(specification.get("PointInTimeRecoveryEnabled"))
                },
            )
        except ClientError as error:
            # DynamoDB Local has no backups at all (UnknownOperationException): nothing to recover to locally
            if error.response["Error"]["Code"] != "UnknownOperationException":
                raise
            return


def _apply_bucket_settings(template: dict[str, Any], resources: dict[str, str], s3) -> None:
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        properties, bucket = resource.get("Properties", {}), resources[logical_id]
        if "PublicAccessBlockConfiguration" in properties:
            s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
            )
        if "VersioningConfiguration" in properties:
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]}
            )


class _Clients:
    """One boto3 session and one client per service for a region and endpoint, kept by the process. A session made
    per stack reads every service model again for each client it makes (about 0.1 s a client, a dozen per stack), and
    the tests provision a stack each."""

    def __init__(self, region: str) -> None:
        self.session = boto3.session.Session(region_name=region)
        self._made: dict[str, Any] = {}

    def client(self, service: str):
        if service not in self._made:
            self._made[service] = self.session.client(service, config=BOTO_CONFIG)
        return self._made[service]


@functools.lru_cache(maxsize=8)
def _clients_for(region: str, endpoints: tuple[str | None, ...], access_key: str | None) -> _Clients:
    # the endpoint and credentials come from the environment when a client is made: they are part of the key
    return _Clients(region)


class _Resolver:
    """Resolves the intrinsic functions of a transformed template against a created stack."""

    def __init__(
        self,
        template: dict[str, Any],
        described: dict[str, Any],
        resources: dict[str, str],
        clients: _Clients,
    ) -> None:
        self.template, self.resources, self.clients = template, resources, clients
        stack_id = described["StackId"]
        self.pseudo = {
            "AWS::StackName": described["StackName"],
            "AWS::StackId": stack_id,
            "AWS::Region": stack_id.split(":")[3],
            "AWS::AccountId": stack_id.split(":")[4],
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update({p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])})

    def client(self, service: str):
        return self.clients.client(service)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Select":
                index, items = self.resolve(argument)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self.resolve(argument)
                return text.split(separator)
            if key == "Fn::If":  # a condition of the template (Conditions), on the stack's parameters
                condition, if_true, if_false = argument
                return self.resolve(if_true if self.condition(condition) else if_false)
            if key == "Fn::Equals":
                left, right = self.resolve(argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                (inner,) = argument
                return not self.resolve(inner)
            if key.startswith("Fn::"):
                raise ValueError(f"{key} is not resolved by the local provisioner")
        return {key: self.resolve(item) for key, item in value.items()}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.resources[name]

    def sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        variables = {name: self.resolve(item) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        physical = self.resources[logical_id]
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return self.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return physical.rsplit("/", 1)[-1]
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return self.client("lambda").get_function(FunctionName=physical)["Configuration"]["FunctionArn"]
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return self.client("iam").get_role(RoleName=physical)["Role"]["Arn"]
        if kind == "AWS::SNS::Topic" and attribute == "TopicName":
            return physical.rsplit(":", 1)[-1]
        if kind == "AWS::SNS::Topic" and attribute == "TopicArn":
            return physical
        if kind == "AWS::DynamoDB::Table" and attribute in ("Arn", "StreamArn"):
            table = self.client("dynamodb").describe_table(TableName=physical)["Table"]
            return table["TableArn"] if attribute == "Arn" else table["LatestStreamArn"]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{physical}"
        raise ValueError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not resolved by the local provisioner")


def _create_secret(resolver: _Resolver, properties: dict[str, Any]) -> str:
    secrets = resolver.client("secretsmanager")
    try:
        # An existing secret keeps its value: the operator may have put the real credentials in it.
        return secrets.describe_secret(SecretId=properties["Name"])["ARN"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    value = properties.get("SecretString")
    generate = properties.get("GenerateSecretString")
    if value is None and generate is not None:
        options = {
            key: generate[key]
            for key in (
                "PasswordLength",
                "ExcludeCharacters",
                "ExcludeNumbers",
                "ExcludePunctuation",
                "ExcludeUppercase",
                "ExcludeLowercase",
                "IncludeSpace",
                "RequireEachIncludedType",
            )
            if key in generate
        }
        password = secrets.get_random_password(**options)["RandomPassword"]
        if "SecretStringTemplate" in generate:
            value = json.dumps(
                {**json.loads(generate["SecretStringTemplate"]), generate["GenerateStringKey"]: password}
            )
        else:
            value = password
    created = secrets.create_secret(
        Name=properties["Name"], Description=properties.get("Description", ""), SecretString=value or ""
    )
    return created["ARN"]


def _create_subscription(resolver: _Resolver, properties: dict[str, Any]) -> str:
    sns = resolver.client("sns")
    attributes: dict[str, str] = {}
    for key in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
        if key in properties:
            attributes[key] = json.dumps(properties[key])
    for key in ("FilterPolicyScope", "RawMessageDelivery"):
        if key in properties:
            attributes[key] = str(properties[key]).lower() if isinstance(properties[key], bool) else properties[key]
    arn = sns.subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties["Endpoint"],
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    for name, value in attributes.items():
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName=name, AttributeValue=value)
    return arn


def _create_queue_policy(resolver: _Resolver, properties: dict[str, Any]) -> str:
    sqs = resolver.client("sqs")
    for queue_url in properties["Queues"]:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})
    return ",".join(properties["Queues"])


def _create_schedule(resolver: _Resolver, properties: dict[str, Any]) -> str:
    scheduler = resolver.client("scheduler")
    request = {
        key: properties[key]
        for key in (
            "Name",
            "GroupName",
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "FlexibleTimeWindow",
            "Target",
            "State",
            "Description",
            "StartDate",
            "EndDate",
        )
        if key in properties
    }
    try:
        return scheduler.create_schedule(**request)["ScheduleArn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConflictException":
            raise
    return scheduler.update_schedule(**request)["ScheduleArn"]


def _create_alarm(resolver: _Resolver, properties: dict[str, Any]) -> str:
    name = properties.get("AlarmName") or f"{resolver.pseudo['AWS::StackName']}-{properties.get('MetricName')}"
    request = {
        key: properties[key]
        for key in (
            "AlarmDescription",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Metrics",  # an alarm on metric math (the quarantine rate)
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmActions",
        )
        if key in properties
    }
    resolver.client("cloudwatch").put_metric_alarm(AlarmName=name, **request)  # an update when it exists
    return name


def _create_event_invoke_config(resolver: _Resolver, properties: dict[str, Any]) -> str:
    lambda_client = resolver.client("lambda")
    function, qualifier = properties["FunctionName"], properties.get("Qualifier", "$LATEST")
    request = {
        key: properties[key]
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
        if key in properties
    }
    try:  # one configuration per function and qualifier: provisioning again replaces it
        lambda_client.delete_function_event_invoke_config(FunctionName=function, Qualifier=qualifier)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    lambda_client.put_function_event_invoke_config(FunctionName=function, Qualifier=qualifier, **request)
    return f"{function}:{qualifier}"


_CREATORS = {
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::SNS::Subscription": _create_subscription,
    "AWS::SQS::QueuePolicy": _create_queue_policy,
    "AWS::Scheduler::Schedule": _create_schedule,
    "AWS::CloudWatch::Alarm": _create_alarm,
    "AWS::Lambda::EventInvokeConfig": _create_event_invoke_config,
}


def _supplement(
    template: dict[str, Any], described: dict[str, Any], resources: dict[str, str], clients: _Clients
) -> None:
    """Create what moto's CloudFormation skipped, recording physical ids in resources as they are made."""
    resolver = _Resolver(template, described, resources, clients)
    for kind in SUPPLEMENTED:
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == kind:
                resources[logical_id] = _CREATORS[kind](resolver, resolver.resolve(resource.get("Properties", {})))


def _emulated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as moto is given it. moto attaches no layer to a function created through CloudFormation, and
    its stack update fails on a function that names one (it passes the layer object where an ARN belongs), so the
    functions' Layers are left out: the layer version itself is still created."""
    # Metadata (checkov's skips and their reasons) means nothing to an emulator and would push the template body
    # past CloudFormation's 51,200-byte limit, which ministack enforces.
    resource = {key: value for key, value in resource.items() if key != "Metadata"}
    if resource["Type"] != "AWS::Lambda::Function" or "Layers" not in resource.get("Properties", {}):
        return resource
    return {**resource, "Properties": {key: value for key, value in resource["Properties"].items() if key != "Layers"}}


def _apply_topic_encryption(
    template: dict[str, Any], described: dict[str, Any], resources: dict[str, str], clients: _Clients
) -> None:
    """ministack's CloudFormation creates a topic without its KmsMasterKeyId (its SNS API keeps it): set it through
    SNS when the created topic lacks it, read from the same template (nothing to do on moto)."""
    resolver = _Resolver(template, described, resources, clients)
    sns = resolver.client("sns")
    for logical_id, resource in template["Resources"].items():
        key = resource.get("Properties", {}).get("KmsMasterKeyId")
        if resource["Type"] != "AWS::SNS::Topic" or key is None or logical_id not in resources:
            continue
        if "KmsMasterKeyId" not in sns.get_topic_attributes(TopicArn=resources[logical_id])["Attributes"]:
            sns.set_topic_attributes(
                TopicArn=resources[logical_id],
                AttributeName="KmsMasterKeyId",
                AttributeValue=str(resolver.resolve(key)),
            )


def _template_argument(s3, stack: str, body: str) -> dict[str, str]:
    """TemplateBody when the body fits CloudFormation's 51,200-byte limit on a request, else the body is put in the
    staging bucket and passed as TemplateURL, as `sam deploy` does with its own bucket (ministack enforces the limit;
    the translated template is past it)."""
    if len(body.encode()) <= TEMPLATE_BODY_MAX_BYTES:
        return {"TemplateBody": body}
    key = f"templates/{stack}.json"
    s3.put_object(Bucket=STAGING_BUCKET, Key=key, Body=body.encode())
    # The path form (bucket first) is the one both emulators read back from their own S3.
    return {"TemplateURL": f"https://s3.amazonaws.com/{STAGING_BUCKET}/{key}"}


def provision(stack: str | None = None, template_path: Path | None = None, region: str | None = None) -> Provisioned:
    """Create the stack, or update it when the template changed; an unchanged stack is left as it is."""
    stack = stack or os.environ.get("ACCRUAL_STACK", "accrual")
    template_path = template_path or default_template_path()
    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    started = time.monotonic()
    endpoints = tuple(os.environ.get(name) for name in ENDPOINT_VARIABLES)
    clients = _clients_for(region, endpoints, os.environ.get("AWS_ACCESS_KEY_ID"))
    cloudformation = clients.client("cloudformation")
    # The translator reads the region (for ARNs and pseudo parameters) from the default session's environment.
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    transformed = transform_template(template_path, clients.client("s3"))
    held_back = sorted(
        logical_id for logical_id, resource in transformed["Resources"].items() if resource["Type"] in HELD_BACK
    )
    # an alarm on metric math (the quarantine rate) is refused by ministack's CloudFormation: it is created through
    # the CloudWatch API with the other alarms (_supplement), on every emulator alike
    math_alarms = {
        logical_id: resource
        for logical_id, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in resource.get("Properties", {})
    }
    held_back = sorted({*held_back, *math_alarms})
    emulated = {
        **transformed,
        "Resources": {
            logical_id: _emulated(resource)
            for logical_id, resource in transformed["Resources"].items()
            if logical_id not in held_back
        },
    }
    body = json.dumps(emulated, sort_keys=True)
    template = _template_argument(clients.client("s3"), stack, body)

    existing = _describe(cloudformation, stack)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        cloudformation.delete_stack(StackName=stack)
        existing = None
    if existing is None:
        cloudformation.create_stack(StackName=stack, Capabilities=CAPABILITIES, **template)
        action = "created"
    else:
        stored = cloudformation.get_template(StackName=stack)["TemplateBody"]
        stored_body = json.dumps(stored if isinstance(stored, dict) else json.loads(stored), sort_keys=True)
        if stored_body == body:
            action = "unchanged"
        else:
            cloudformation.update_stack(StackName=stack, Capabilities=CAPABILITIES, **template)
            action = "updated"
    described = _wait(cloudformation, stack)

    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        for r in page["StackResourceSummaries"]
    }
    if _dynamodb_apart(clients):
        _create_tables(_Resolver(emulated, described, resources, clients), clients.client("dynamodb"))
    _supplement({**emulated, "Resources": {**emulated["Resources"], **math_alarms}}, described, resources, clients)
    _apply_time_to_live(emulated, resources, clients.client("dynamodb"))
    _apply_topic_encryption(emulated, described, resources, clients)
    _apply_point_in_time_recovery(emulated, resources, clients.client("dynamodb"))
    _apply_bucket_settings(emulated, resources, clients.client("s3"))
    if action == "created":
        # a new ledger has no line to claim and no order to pack: what `accrual migrate` records on a stack written by
        # an older version
        dynamodb = clients.client("dynamodb")
        mark_migrated(resources["ControlTable"], dynamodb, [LINE_CLAIMS, PACKED_ORDERS], at=datetime.now(UTC))
    stack_outputs.cache_clear()
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return Provisioned(
        stack=stack,
        seconds=time.monotonic() - started,
        action=action,
        outputs=outputs,
        resources=resources,
        held_back=held_back,
    )
