"""The parts of `make sam-local` / `make test-sam-local` that need no Docker: which event each function gets, the
local build's template, the Debian mirror the stand-in image is built from, the Lambda architecture names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from accrual_dev.local.provision import default_template_path, load_template
from accrual_dev.samlocal import SetupError
from accrual_dev.samlocal.build import ENDPOINT_VARIABLE, prepare_local_template
from accrual_dev.samlocal.image import debian_mirror, lambda_architecture
from accrual_dev.samlocal.invoke import EVENT_FILES, NOT_EVENTS, discover

ROOT = default_template_path().parent


def _function(code_uri: str) -> dict:
    return {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": code_uri, "Handler": "app.lambda_handler"}}


def test_a_function_gets_the_event_named_after_its_code_folder_and_one_without_is_listed(tmp_path: Path) -> None:
    (tmp_path / "pull.json").write_text("{}")
    (tmp_path / "relay.json").write_text("{}")
    template = {
        "Resources": {
            "PullFunction": _function("functions/pull/"),
            "RelayFunction": _function("functions/relay"),
            "ConfirmFunction": _function("functions/confirm/"),
            "Queue": {"Type": "AWS::SQS::Queue"},
        }
    }
    found, missing = discover(template, tmp_path)
    assert [(invocation.function, invocation.event.name) for invocation in found] == [
        ("PullFunction", "pull.json"),
        ("RelayFunction", "relay.json"),
    ]
    assert missing == ["ConfirmFunction"]


def test_the_exceptions_table_names_an_event_that_does_not_follow_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scheduled_pull.json").write_text("{}")
    monkeypatch.setitem(EVENT_FILES, "PullFunction", "scheduled_pull.json")
    found, missing = discover({"Resources": {"PullFunction": _function("functions/pull/")}}, tmp_path)
    assert [invocation.event.name for invocation in found] == ["scheduled_pull.json"] and missing == []


def test_every_event_in_the_repository_is_invoked_with_its_function() -> None:
    """A new event file that matches no function would silently never run under `make test-sam-local`."""
    found, _ = discover(load_template(default_template_path()), ROOT / "events")
    invoked = {invocation.event.name for invocation in found}
    events = {path.name for path in (ROOT / "events").glob("*.json")} - NOT_EVENTS
    assert events and events <= invoked, f"events no function picks up: {sorted(events - invoked)}"
    for name in invoked:
        json.loads((ROOT / "events" / name).read_text())


def test_the_template_deploys_arm64_unless_told_otherwise() -> None:
    template = load_template(default_template_path())
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert set(template["Parameters"]["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}
    assert template["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    layer = template["Resources"]["AccrualLayer"]
    assert layer["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]


def test_the_local_build_defaults_to_this_machine_and_lets_env_vars_set_the_endpoint(tmp_path: Path) -> None:
    built = tmp_path / "template.yaml"
    built.write_text(
        yaml.safe_dump(
            {
                "Parameters": {"Architecture": {"Type": "String", "Default": "arm64"}},
                "Globals": {
                    "Function": {
                        "Architectures": [{"Ref": "Architecture"}],
                        "Environment": {"Variables": {"ORDERS_TABLE": {"Ref": "OrdersTable"}}},
                    }
                },
                "Resources": {"F": _function("F")},
            }
        )
    )
    prepare_local_template(built, "x86_64")
    prepared = prepare_local_template(built, "x86_64")  # twice: the same result
    assert prepared["Parameters"]["Architecture"]["Default"] == "x86_64"
    variables = load_template(built)["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == {"ORDERS_TABLE": {"Ref": "OrdersTable"}, ENDPOINT_VARIABLE: ""}


def test_a_template_without_the_architecture_parameter_is_refused(tmp_path: Path) -> None:
    built = tmp_path / "template.yaml"
    built.write_text(yaml.safe_dump({"Resources": {"F": _function("F")}}))
    with pytest.raises(SetupError, match="Architecture parameter"):
        prepare_local_template(built, "x86_64")


def test_the_stand_in_is_built_from_this_machines_debian_mirror(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/off\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert debian_mirror((deb822,)) == "http://mirror.example/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("# deb http://old.example/debian bookworm main\ndeb http://line.example/debian bookworm main\n")
    assert debian_mirror((one_line,)) == "http://line.example/debian"
    other = tmp_path / "other.list"
    other.write_text("deb http://line.example/debian trixie main\n")
    assert debian_mirror((other, tmp_path / "absent.list")) is None


@pytest.mark.parametrize(
    ("machine", "architecture"), [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("aarch64", "arm64"), ("arm64", "arm64")]
)
def test_lambda_names_the_machines_architecture(machine: str, architecture: str) -> None:
    assert lambda_architecture(machine) == architecture


def test_an_architecture_lambda_does_not_run_is_refused() -> None:
    with pytest.raises(SetupError, match="riscv64"):
        lambda_architecture("riscv64")
