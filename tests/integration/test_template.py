"""template.yaml is a real template: cfn-lint and `sam validate --lint` pass, `sam build` succeeds without Docker and
puts the shared package where Lambda finds it, and the settings moto cannot emulate are what the template says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from accrual_dev.local.provision import HELD_BACK, default_template_path, load_template, transform_template

ROOT = default_template_path().parent
SAM = ROOT / ".tools" / "venv" / "bin" / "sam"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
FUNCTIONS = (
    "PullFunction",
    "ReconcileFunction",
    "ConfirmFunction",
    "ReportDropFunction",
    "OutboxRelayFunction",
    "ClaimIntakeFunction",
)
# The tables that hold money, or the journal, notifications and configuration it depends on.
MONEY_TABLES = ("OrdersTable", "BalancesTable", "OutboxTable", "ControlTable")
# The tables the audit or the outbox reads: point-in-time recovery.
RECOVERABLE_TABLES = ("OrdersTable", "BalancesTable", "OutboxTable", "ClicksTable", "ControlTable", "ClaimsTable")
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def run_tool(*command: str | Path, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    if not Path(command[0]).exists():
        pytest.fail(f"{command[0]} is missing: `make tools` or `make checkov` builds it (`make test` does so first)")
    # sam build needs python3.12 on PATH: the one running these tests is it.
    environment = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )


def test_cfn_lint_passes() -> None:
    result = run_tool(CFN_LINT, "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    result = run_tool(SAM, "validate", "--lint", "--region", "us-east-1", "--template-file", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_no_failed_check_and_every_skip_has_a_reason() -> None:
    """Skips live in template.yaml (Metadata: checkov: skip), each with its reason; none on the command line."""
    result = run_tool(
        CHECKOV,
        "-f",
        "template.yaml",
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--quiet",
        "--skip-download",
        timeout=300,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{check['check_id']} {check['resource']}" for check in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, failed
    assert summary["passed"] > 0
    assert result.returncode == 0, result.stderr
    for resource in load_template(default_template_path())["Resources"].values():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 40, skip


@pytest.mark.slow
def test_sam_build_succeeds_without_docker(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = run_tool(
        SAM, "build", "--template-file", "template.yaml", "--build-dir", build, "--cache-dir", tmp_path / "cache"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (build / "AccrualLayer" / "python" / "accrual" / "settings.py").is_file()
    assert (build / "AccrualLayer" / "python" / "aws_lambda_powertools").is_dir()
    for function in FUNCTIONS:
        assert (build / function / "app.py").is_file(), function
    # The deployment build's compiled wheels are arm64 (ELF machine 183, AArch64) whatever machine builds them.
    (pydantic_core,) = (build / "AccrualLayer" / "python" / "pydantic_core").glob("_pydantic_core*.so")
    assert int.from_bytes(pydantic_core.read_bytes()[18:20], "little") == 183
    # The layer ships only what Lambda runs: no emulator, no simulator, no local stack, no CLI.
    shipped = {
        path.relative_to(build / "AccrualLayer" / "python").parts[0]
        for path in (build / "AccrualLayer" / "python").iterdir()
    }
    assert not shipped & {"moto", "werkzeug", "yaml", "accrual_dev", "flask"}, shipped
    package = build / "AccrualLayer" / "python" / "accrual"
    assert not [path for path in package.rglob("*") if path.name in {"local", "simulator", "cli.py"}]
    imports = "\n".join(path.read_text() for path in package.rglob("*.py"))
    for development_only in ("import moto", "from moto", "werkzeug", "import yaml", "accrual_dev"):
        assert development_only not in imports, development_only


@pytest.fixture(scope="module")
def transformed(moto_endpoint: str) -> dict[str, Any]:
    return transform_template(default_template_path(), boto3.client("s3"))


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def test_outbox_relay_reads_the_outbox_stream_with_partial_batch_failures(transformed: dict[str, Any]) -> None:
    """The mapping is held back from moto (see accrual_dev.local.provision): its settings are checked here."""
    mappings = resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
    (mapping,) = [item for item in mappings if item["FunctionName"] == {"Ref": "OutboxRelayFunction"}]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    assert "AWS::Lambda::EventSourceMapping" in HELD_BACK
    assert mapping["FunctionName"] == {"Ref": "OutboxRelayFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["OutboxRelayDeadLetterQueue", "Arn"]
    }


def test_functions_are_traced_arm64_with_the_layer_and_a_dead_letter_queue_for_the_schedules(
    transformed: dict[str, Any],
) -> None:
    functions = resources_of(transformed, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    for properties in functions.values():
        assert properties["Runtime"] == "python3.12"
        # arm64 by default (the Architecture parameter); `make sam-local` builds its own copy for this machine.
        assert properties["Architectures"] == [{"Ref": "Architecture"}]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        (layer,) = properties["Layers"]
        assert layer["Ref"].startswith("AccrualLayer")
    for scheduled in ("PullFunction", "ConfirmFunction"):
        assert functions[scheduled]["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["PullDeadLetterQueue", "Arn"]}}


def test_report_drops_under_drops_prefix_invoke_the_report_drop_function(transformed: dict[str, Any]) -> None:
    bucket = resources_of(transformed, "AWS::S3::Bucket")["ReportsBucket"]
    (notification,) = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "drops/"}]
    assert notification["Function"] == {"Fn::GetAtt": ["ReportDropFunction", "Arn"]}


def test_policies_are_scoped_to_the_resources_each_function_uses(transformed: dict[str, Any]) -> None:
    sam = load_template(default_template_path())["Resources"]
    for logical_id in ("PullFunction", "ReconcileFunction", "ConfirmFunction", "ReportDropFunction"):
        for policy in sam[logical_id]["Properties"]["Policies"]:
            assert isinstance(policy, dict), f"{logical_id}: SAM policy templates or statements, each scoped"
            assert "S3CrudPolicy" not in policy and "S3ReadPolicy" not in policy, logical_id
    for logical_id, statement in role_statements(transformed):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(action.startswith(("s3:", "dynamodb:", "sns:", "sqs:")) for action in actions):
            assert "*" not in resources, (logical_id, statement)


def role_statements(transformed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every inline statement of every IAM role in the transformed template (SAM's and the template's own)."""
    return [
        (logical_id, statement)
        for logical_id, role in resources_of(transformed, "AWS::IAM::Role").items()
        for policy in role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def function_roles(transformed: dict[str, Any]) -> dict[str, str]:
    """Function logical id -> the logical id of its execution role."""
    return {
        logical_id: properties["Role"]["Fn::GetAtt"][0]
        for logical_id, properties in resources_of(transformed, "AWS::Lambda::Function").items()
    }


def names(value: Any) -> set[str]:
    """The logical ids a Ref, GetAtt or Sub (or a list of them) names."""
    if isinstance(value, list):
        return set().union(*(names(item) for item in value)) if value else set()
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            named = {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            return {name for name in named if name not in variables and not name.startswith("AWS::")} | names(
                list(variables.values())
            )
    return set()


def test_money_tables_are_retained_and_protected_from_deletion() -> None:
    resources = load_template(default_template_path())["Resources"]
    for logical_id in MONEY_TABLES:
        table = resources[logical_id]
        assert table["DeletionPolicy"] == "Retain", logical_id
        assert table["UpdateReplacePolicy"] == "Retain", logical_id
        assert table["Properties"]["DeletionProtectionEnabled"] is True, logical_id
    for logical_id, table in resources.items():
        if table["Type"] == "AWS::DynamoDB::Table":
            assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, logical_id


def test_tables_the_audit_and_the_outbox_need_have_point_in_time_recovery() -> None:
    resources = load_template(default_template_path())["Resources"]
    for logical_id in RECOVERABLE_TABLES:
        assert resources[logical_id]["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }, logical_id


def test_no_function_may_delete_from_the_orders_or_balances_table(transformed: dict[str, Any]) -> None:
    """No DeleteItem, no wildcard, on those tables, in any role. (PutItem can still overwrite an item: IAM cannot say
    "only if it does not exist"; the ledger's conditional writes and the audit protect the journal.)"""
    for logical_id, statement in role_statements(transformed):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not names(statement["Resource"]) & {"OrdersTable", "BalancesTable"}:
            # a wildcard action on every resource would reach those tables too
            assert not ({"dynamodb:*", "*"} & set(actions) and statement["Resource"] == "*"), logical_id
            continue
        assert "dynamodb:DeleteItem" not in actions, (logical_id, statement)
        assert not [action for action in actions if "*" in action], (logical_id, statement)
        assert set(actions) <= {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:DescribeTable",
        }, (logical_id, statement)
    # the ledger's functions can still write the journal and the balances
    roles = function_roles(transformed)
    for function in ("ReconcileFunction",):
        granted = {
            (target, action)
            for logical_id, statement in role_statements(transformed)
            if logical_id == roles[function]
            for target in names(statement["Resource"])
            for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        }
        assert {
            ("OrdersTable", "dynamodb:PutItem"),
            ("OrdersTable", "dynamodb:Query"),
            ("BalancesTable", "dynamodb:UpdateItem"),
        } <= granted, function
        assert not any(target == "IdempotencyTable" for target, _ in granted), function


def test_the_relay_reads_only_the_outbox_stream(transformed: dict[str, Any]) -> None:
    role = function_roles(transformed)["OutboxRelayFunction"]
    properties = resources_of(transformed, "AWS::IAM::Role")[role]
    managed = json.dumps(properties.get("ManagedPolicyArns", []))
    assert "AWSLambdaDynamoDBExecutionRole" not in managed
    stream_actions = {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
    granted: set[str] = set()
    for logical_id, statement in role_statements(transformed):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not stream_actions & set(actions):
            continue
        assert logical_id == role, logical_id
        assert statement["Resource"] != "*" and names(statement["Resource"]) == {"OutboxTable"}, statement
        granted |= set(actions)
        if {"dynamodb:GetRecords", "dynamodb:GetShardIterator"} & set(actions):
            assert statement["Resource"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    assert granted == stream_actions


def test_report_drop_failures_go_to_an_encrypted_dead_letter_queue(transformed: dict[str, Any]) -> None:
    (config,) = resources_of(transformed, "AWS::Lambda::EventInvokeConfig").values()
    assert "AWS::Lambda::EventInvokeConfig" not in HELD_BACK
    assert config["FunctionName"] == {"Ref": "ReportDropFunction"}
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    queue = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert queue == {"Fn::GetAtt": ["ReportDropDeadLetterQueue", "Arn"]}
    assert resources_of(transformed, "AWS::SQS::Queue")["ReportDropDeadLetterQueue"]["SqsManagedSseEnabled"] is True
    role = function_roles(transformed)["ReportDropFunction"]
    assert any(
        logical_id == role
        and "sqs:SendMessage" in json.dumps(statement["Action"])
        and names(statement["Resource"]) == {"ReportDropDeadLetterQueue"}
        for logical_id, statement in role_statements(transformed)
    )


def dead_letter_queues(transformed: dict[str, Any]) -> set[str]:
    """Every queue something fails into: redrive targets, function DLQs and on-failure destinations."""
    text = json.dumps(transformed["Resources"])
    queues = resources_of(transformed, "AWS::SQS::Queue")
    targets = {
        properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for properties in queues.values()
        if "RedrivePolicy" in properties
    }
    for function in resources_of(transformed, "AWS::Lambda::Function").values():
        if "DeadLetterConfig" in function:
            targets |= names(function["DeadLetterConfig"]["TargetArn"])
    for kind in ("AWS::Lambda::EventInvokeConfig", "AWS::Lambda::EventSourceMapping"):
        for properties in resources_of(transformed, kind).values():
            targets |= names(properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
    assert targets and all(f'"{queue}"' in text for queue in targets)
    return targets


def test_every_function_error_and_every_dead_letter_queue_alarms_on_the_encrypted_alarm_topic(
    transformed: dict[str, Any],
) -> None:
    alarms = resources_of(transformed, "AWS::CloudWatch::Alarm").values()
    errors = {
        dimension["Value"]["Ref"]
        for alarm in alarms
        if alarm.get("Namespace") == "AWS/Lambda" and alarm["MetricName"] == "Errors"
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "FunctionName"
    }
    assert errors == set(FUNCTIONS) == set(resources_of(transformed, "AWS::Lambda::Function"))
    depths = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in alarms
        if alarm.get("Namespace") == "AWS/SQS" and alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "QueueName"
    }
    assert depths == dead_letter_queues(transformed)
    assert {
        "ReportDropDeadLetterQueue",
        "OutboxRelayDeadLetterQueue",
        "PullDeadLetterQueue",
        "WorkDeadLetterQueue",
        "NotificationsDeadLetterQueue",
    } <= depths
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        # any occurrence alarms, except the quarantine rate (a share of the lines read, in percent)
        assert alarm["Threshold"] == (5 if "Metrics" in alarm else 0), alarm
    topic = resources_of(transformed, "AWS::SNS::Topic")["AlarmTopic"]
    # CloudWatch publishes to an encrypted topic only through a customer managed key that lets it
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources_of(transformed, "AWS::KMS::Key")["AlarmTopicKey"]
    assert key["EnableKeyRotation"] is True
    assert any(
        statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for statement in key["KeyPolicy"]["Statement"]
    )
    assert transformed["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_claim_intake_reads_its_queue_with_partial_batch_failures_and_a_dead_letter_queue(
    transformed: dict[str, Any],
) -> None:
    (mapping,) = [
        mapping
        for mapping in resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
        if mapping["FunctionName"] == {"Ref": "ClaimIntakeFunction"}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ClaimIntakeQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queues = resources_of(transformed, "AWS::SQS::Queue")
    intake = queues["ClaimIntakeQueue"]
    assert intake["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ClaimIntakeDeadLetterQueue", "Arn"]}
    assert intake["SqsManagedSseEnabled"] is True and queues["ClaimIntakeDeadLetterQueue"]["SqsManagedSseEnabled"]
    timeout = resources_of(transformed, "AWS::Lambda::Function")["ClaimIntakeFunction"]["Timeout"]
    assert intake["VisibilityTimeout"] >= 6 * timeout
    # the claims table is read and written by the intake and the ledger's functions, and deleted from by none
    claims = [
        (logical_id, statement)
        for logical_id, statement in role_statements(transformed)
        if "ClaimsTable" in names(statement["Resource"])
    ]
    policy = resources_of(transformed, "AWS::IAM::Policy")["ClaimsForLedgerFunctionsPolicy"]
    claims += [("ClaimsForLedgerFunctionsPolicy", statement) for statement in policy["PolicyDocument"]["Statement"]]
    assert {logical_id for logical_id, _ in claims} >= {"ClaimIntakeFunctionRole", "ClaimsForLedgerFunctionsPolicy"}
    for _, statement in claims:
        assert not any("Delete" in action or "*" in action for action in statement["Action"]), statement


CONFIGURATION_KEYS = ("CONFIG", "CONFIG_CURRENT")


def test_no_function_can_change_the_configuration_or_its_current_version(transformed: dict[str, Any]) -> None:
    """Every write a function may make to the control table is scoped by partition key, and no scope reaches the
    configuration versions or the current-version pointer: only configuration loading changes rates."""
    from fnmatch import fnmatchcase

    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    scoped = {}
    for logical_id, statement in role_statements(transformed):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "ControlTable" not in names(statement["Resource"]) or not writes & set(actions):
            continue
        assert statement["Effect"] == "Allow" and "dynamodb:DeleteItem" not in actions, (logical_id, statement)
        (operator, keys), *others = statement["Condition"].items()
        assert not others and operator in ("ForAllValues:StringEquals", "ForAllValues:StringLike"), statement
        patterns = keys["dynamodb:LeadingKeys"]
        assert not [key for key in CONFIGURATION_KEYS for pattern in patterns if fnmatchcase(key, pattern)]
        scoped[logical_id] = set(patterns)
    roles = function_roles(transformed)
    assert scoped[roles["ReconcileFunction"]] == {"NEW_USER_COUPON#*", "QUARANTINE#*", "UNIT_FAILURE", "UNIT#*"}
    assert scoped[roles["ClaimIntakeFunction"]] == {"NEW_USER_COUPON#*"}
    assert scoped[roles["PullFunction"]] == {"CURSOR"}


def test_only_the_named_sender_may_send_claims(transformed: dict[str, Any]) -> None:
    (policy,) = [
        properties
        for properties in resources_of(transformed, "AWS::SQS::QueuePolicy").values()
        if properties["Queues"] == [{"Ref": "ClaimIntakeQueue"}]
    ]
    deny, allow = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "sqs:SendMessage"
    named = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::If"]
    assert named[0] == "ClaimSenderNamed" and named[1] == {"Ref": "ClaimSenderArn"}
    assert allow["Effect"] == "Allow" and allow["Principal"]["AWS"]["Fn::If"] == named
    assert transformed["Parameters"]["ClaimSenderArn"]["Default"] == ""


def test_a_page_quarantined_whole_is_alarmed_on(transformed: dict[str, Any]) -> None:
    alarms = resources_of(transformed, "AWS::CloudWatch::Alarm")
    alarm = alarms["PagesQuarantinedAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("CashbackAccrual", "PagesQuarantined")
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] and alarm["Threshold"] == 0
