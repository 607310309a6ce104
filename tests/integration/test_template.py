"""template.yaml is a real template: cfn-lint and `sam validate --lint` pass, `sam build` succeeds without Docker and
puts the shared package where Lambda finds it, and the settings moto cannot emulate are what the template says."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from accrual.local.provision import HELD_BACK, default_template_path, load_template, transform_template

ROOT = default_template_path().parent
SAM = ROOT / ".tools" / "venv" / "bin" / "sam"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def run_tool(*command: str | Path, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    if not Path(command[0]).exists():
        pytest.fail(f"{command[0]} is missing: `make tools` builds it (`make test` does so first)")
    # sam build needs python3.12 on PATH: the one running these tests is it.
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0",
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def test_cfn_lint_passes() -> None:
    result = run_tool(CFN_LINT, "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    result = run_tool(SAM, "validate", "--lint", "--region", "us-east-1", "--template-file", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_succeeds_without_docker(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = run_tool(SAM, "build", "--template-file", "template.yaml", "--build-dir", build,
                      "--cache-dir", tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (build / "AccrualLayer" / "python" / "accrual" / "settings.py").is_file()
    assert (build / "AccrualLayer" / "python" / "aws_lambda_powertools").is_dir()
    for function in ("AccrualCycleFunction", "ReportDropFunction", "OutboxRelayFunction"):
        assert (build / function / "app.py").is_file(), function


@pytest.fixture(scope="module")
def transformed(moto_endpoint: str) -> dict[str, Any]:
    return transform_template(default_template_path(), boto3.client("s3"))


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {logical_id: resource["Properties"]
            for logical_id, resource in template["Resources"].items() if resource["Type"] == kind}


def test_outbox_relay_reads_the_outbox_stream_with_partial_batch_failures(transformed: dict[str, Any]) -> None:
    """The mapping is held back from moto (see accrual.local.provision): its settings are checked here."""
    (mapping,) = resources_of(transformed, "AWS::Lambda::EventSourceMapping").values()
    assert "AWS::Lambda::EventSourceMapping" in HELD_BACK
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    assert mapping["FunctionName"] == {"Ref": "OutboxRelayFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["OutboxRelayDeadLetterQueue", "Arn"]}


def test_functions_are_traced_arm64_with_the_layer_and_a_dead_letter_queue_for_the_cycle(
        transformed: dict[str, Any]) -> None:
    functions = resources_of(transformed, "AWS::Lambda::Function")
    assert len(functions) == 3
    for properties in functions.values():
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        (layer,) = properties["Layers"]
        assert layer["Ref"].startswith("AccrualLayer")
    cycle = functions["AccrualCycleFunction"]
    assert cycle["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["CycleDeadLetterQueue", "Arn"]}}


def test_report_drops_under_drops_prefix_invoke_the_report_drop_function(transformed: dict[str, Any]) -> None:
    bucket = resources_of(transformed, "AWS::S3::Bucket")["ReportsBucket"]
    (notification,) = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "drops/"}]
    assert notification["Function"] == {"Fn::GetAtt": ["ReportDropFunction", "Arn"]}


def test_policies_are_scoped_to_the_resources_each_function_uses(transformed: dict[str, Any]) -> None:
    sam = load_template(default_template_path())["Resources"]
    relay = [next(iter(policy)) for policy in sam["OutboxRelayFunction"]["Properties"]["Policies"]]
    assert relay == ["DynamoDBCrudPolicy", "DynamoDBCrudPolicy", "SNSPublishMessagePolicy"]
    for logical_id in ("AccrualCycleFunction", "ReportDropFunction", "OutboxRelayFunction"):
        for policy in sam[logical_id]["Properties"]["Policies"]:
            assert isinstance(policy, dict), f"{logical_id}: only SAM policy templates, scoped to one resource"
