"""An AWS call counter that lives outside the project's code: botocore event hooks on every client any session
creates (boto3's and PynamoDB's alike), installed by patching `botocore.session.Session.create_client`.

* `provide-client-params.dynamodb.*` asks DynamoDB for `ReturnConsumedCapacity=INDEXES` on every data call the code
  makes (the project never asks for it), so the emulator reports the read and write units it charged;
* `after-call.*` counts every call by service and operation (errors included, SDK retries are inside one call) and
  adds up the ConsumedCapacity answered, split into read and write units by the kind of operation.

In the bench's own process: `install()` before any client is made, `snapshot()` / `delta()` around a step. In a
child process (the `accrual` CLI as the operator runs it): put bench/_hook on PYTHONPATH and set ACCRUAL_CALL_METER
to a file; the bundled sitecustomize.py installs the counter and writes its totals there at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections import Counter

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
WITH_CAPACITY = READS | WRITES

_lock = threading.Lock()
calls: Counter = Counter()  # "service:Operation" -> calls
units: Counter = Counter()  # "rru" / "wru" / "rru:<table>" / "wru:<table>" -> capacity units answered
errors: Counter = Counter()  # "Operation:Code" -> answers
by_table: Counter = Counter()  # "Operation table [index]" -> calls (single-table DynamoDB operations)
_installed = False


def _ask_capacity(params, model, **_) -> None:
    if model.name in WITH_CAPACITY and "ReturnConsumedCapacity" not in params:
        params["ReturnConsumedCapacity"] = "INDEXES"
    if "TableName" in params:  # which table each single-table call goes to
        with _lock:
            by_table[
                f"{model.name} {params['TableName']}{' ' + params['IndexName'] if 'IndexName' in params else ''}"
            ] += 1


def _count(http_response=None, parsed=None, model=None, **_) -> None:
    if model is None:
        return
    service = model.service_model.service_name
    parsed = parsed or {}
    with _lock:
        calls[f"{service}:{model.name}"] += 1
        if "Error" in parsed:
            errors[f"{model.name}:{parsed['Error'].get('Code')}"] += 1
        if service != "dynamodb":
            return
        consumed = parsed.get("ConsumedCapacity")
        kind = "rru" if model.name in READS else "wru"
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            value = float(entry.get("CapacityUnits") or 0)
            units[kind] += value
            units[f"{kind}:{entry.get('TableName', '?')}"] += value


def attach(client) -> None:
    events = client.meta.events
    if client.meta.service_model.service_name == "dynamodb":
        events.register("provide-client-params.dynamodb", _ask_capacity, unique_id="accrual-bench-capacity")
    events.register("after-call", _count, unique_id="accrual-bench-count")


def install() -> None:
    """Every client created from now on is counted."""
    global _installed
    if _installed:
        return
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        attach(client)
        return client

    botocore.session.Session.create_client = create_client
    _installed = True


def snapshot() -> dict:
    with _lock:
        return {"calls": dict(calls), "units": dict(units), "errors": dict(errors), "by_table": dict(by_table)}


def delta(before: dict, after: dict | None = None) -> dict:
    after = after or snapshot()
    out = {}
    for part in ("calls", "units", "errors", "by_table"):
        values = {name: after[part].get(name, 0) - before[part].get(name, 0) for name in after[part]}
        out[part] = {name: round(value, 3) for name, value in values.items() if value}
    return out


def _dump(path: str) -> None:
    with open(path, "w") as out:
        json.dump(snapshot(), out, indent=1, sort_keys=True)


def install_from_environment() -> None:
    path = os.environ.get("ACCRUAL_CALL_METER")
    if path:
        install()
        # `{pid}` in the name: one file per process (a bench that starts several CLI commands)
        atexit.register(_dump, path.replace("{pid}", str(os.getpid())))
