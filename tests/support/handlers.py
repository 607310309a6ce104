"""Helpers for running the real Lambda handlers in tests: their events, a Lambda context, their environment."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from accrual.settings import Settings
from accrual_dev.local.provision import default_template_path, provision

ROOT = default_template_path().parent
EVENTS = ROOT / "events"


@dataclass
class FakeContext:
    function_name: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = "7a5d3c51-0f9e-4d59-9a0c-3f1b5c7e2d10"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(folder: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"handler_{folder}", ROOT / "functions" / folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as the runtime imports it: pydantic resolves the module's annotations there
    spec.loader.exec_module(module)
    return module


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def function_environment(stack: Settings, logical_id: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the environment the stack gives the function (template.yaml's Globals and its own variables)."""
    name = provision(stack.stack).resources[logical_id]
    variables = boto3.client("lambda").get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    return variables
