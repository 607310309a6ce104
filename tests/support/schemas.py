"""The notification contract: every published message body is valid against `schemas/<event_type>.json`, and its
message attributes are the ones the schema lists under `x-message-attributes`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@cache
def validator(event_type: str) -> Draft202012Validator:
    path = SCHEMAS / f"{event_type}.json"
    if not path.exists():
        raise AssertionError(f"no schema for the event type {event_type!r} in {SCHEMAS}")
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid_message(body: dict[str, Any], attributes: dict[str, Any] | None = None) -> None:
    errors = sorted(validator(body["event_type"]).iter_errors(body), key=lambda error: list(error.path))
    assert not errors, "; ".join(f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors)
    if attributes is not None:
        allowed = set(validator(body["event_type"]).schema["x-message-attributes"])
        assert attributes.get("event_type") == body["event_type"]
        assert set(name for name, value in attributes.items() if value) <= allowed, attributes
