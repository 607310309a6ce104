"""The local AWS emulators by name, as ACCRUAL_EMULATOR chooses them (tests, `accrual stack up`, the benches).

- `moto`: moto's server for every service (pure Python, the embedded default);
- `ministack`: ministack for every service (`make ministack`);
- `dynamodb-local`: AWS's DynamoDB Local for DynamoDB and its streams, moto for the rest (`make dynamodb-local`).

Each is a context manager with `url` (the endpoint of every service it serves), `endpoints` (boto3's endpoint
variables that point at it) and `pids` (its processes).
"""

from __future__ import annotations

import os

from accrual_dev.local.dynamodb_local import DynamoDBLocalStack
from accrual_dev.local.ministack import MinistackServer
from accrual_dev.local.server import MotoServer

EMULATORS: dict[str, type[MotoServer] | type[MinistackServer] | type[DynamoDBLocalStack]] = {
    "moto": MotoServer,
    "ministack": MinistackServer,
    "dynamodb-local": DynamoDBLocalStack,
}


def emulator_name(default: str = "moto") -> str:
    """ACCRUAL_EMULATOR (default when unset); an unknown name is refused with the known ones."""
    name = os.environ.get("ACCRUAL_EMULATOR", "").strip().lower() or default
    if name not in EMULATORS:
        raise ValueError(f"ACCRUAL_EMULATOR={name!r}: expected one of {', '.join(EMULATORS)}")
    return name
