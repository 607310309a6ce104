"""`make invoke FN=<function> EVENT=events/<file>.json`: one function's real handler with an event, in this process,
with the environment template.yaml gives that function, against the local stack.

FN is the function's logical id (`ReconcileFunction`) or its folder under functions/ (`reconcile`). With
AWS_ENDPOINT_URL set, the stack ACCRUAL_STACK on that endpoint is used as it is (`make local`); without it, an
embedded moto server is started with a stack provisioned from template.yaml, the demo configuration loaded and the
partner simulator behind the partners' endpoints, and stopped afterwards. The objects an event names (a dropped
file, an archived page) are uploaded from events/objects/ when the stack's bucket lacks them, and an S3 event's
bucket is the stack's reports bucket. Prints the handler's answer as JSON; exits 1 when the handler raises.
With Docker, `sam local invoke` does the same in a Lambda container (docs/sam-local.md).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from accrual_dev.poller import ROOT, LocalContext, load_function

OBJECTS = ROOT / "events" / "objects"


def function_folder(name: str) -> tuple[str, str]:
    """(logical id, folder) of a function named either way."""
    from accrual_dev.local.provision import load_template

    functions = {
        logical_id: resource["Properties"]["CodeUri"].strip("/").split("/")[-1]
        for logical_id, resource in load_template(ROOT / "template.yaml")["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    for logical_id, folder in functions.items():
        if name in (logical_id, folder):
            return logical_id, folder
    raise SystemExit(f"no function {name!r}; the functions are {', '.join(sorted(functions))}")


def referenced_objects(event: dict[str, Any]) -> list[str]:
    keys = []
    for record in event.get("Records", []):
        if "s3" in record:
            keys.append(unquote_plus(record["s3"]["object"]["key"]))
        elif record.get("eventSource") == "aws:sqs":
            body = json.loads(record["body"])
            if body.get("key"):
                keys.append(body["key"])
    return keys


def prepare(event: dict[str, Any], settings) -> dict[str, Any]:
    """Point an S3 event at the stack's bucket; upload the objects the event names that the bucket lacks."""
    from accrual.adapters.report_archive import S3ReportArchive

    archive = S3ReportArchive(settings)
    for record in event.get("Records", []):
        if "s3" in record:
            record["s3"]["bucket"]["name"] = archive.bucket
            record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{archive.bucket}"
    s3 = settings.client("s3")
    for key in referenced_objects(event):
        try:
            s3.head_object(Bucket=archive.bucket, Key=key)
        except s3.exceptions.ClientError:
            sample = OBJECTS / key
            if sample.is_file():
                archive.put_object(key, sample.read_bytes())
                print(f"uploaded events/objects/{key} to s3://{archive.bucket}/{key}", file=sys.stderr)
    return event


def embedded_stack(resources: ExitStack) -> None:
    """An embedded moto server, a stack from template.yaml, the demo configuration and the partner simulator."""
    from accrual_dev.local.provision import provision
    from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer

    server = resources.enter_context(MotoServer())
    os.environ.update(
        {
            **LOCAL_ENVIRONMENT,
            "AWS_ENDPOINT_URL": server.url,
            "ACCRUAL_STACK": os.environ.get("ACCRUAL_STACK", "invoke"),
        }
    )
    provision(os.environ["ACCRUAL_STACK"], template_path=ROOT / "template.yaml")

    from accrual.adapters import reference_data
    from accrual.adapters.ledger_tables import bind_ledger_tables
    from accrual.domain.models import AccrualConfig, Click
    from accrual.settings import Settings
    from accrual_dev.simulator import running_simulator
    from accrual_dev.simulator.local import configure_local_partners

    settings = Settings.from_env()
    bind_ledger_tables(settings)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    config = AccrualConfig.model_validate_json((ROOT / "events" / "demo-config.json").read_text())
    reference_data.save_config(config, now=start)
    simulator = resources.enter_context(
        running_simulator(seed=3, start=start, days=5, orders_per_day=4, now=start + timedelta(days=5))
    )
    configure_local_partners(settings, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates)
    reference_data.save_clicks((Click.model_validate(click) for click in simulator.world.clicks), now=start)
    print(
        f"embedded local stack {settings.stack} at {server.url}; partner simulator at {simulator.url}", file=sys.stderr
    )


def function_environment(logical_id: str) -> dict[str, str]:
    """The environment the stack gives the function (template.yaml's Globals and its own variables)."""
    import boto3

    stack = os.environ.get("ACCRUAL_STACK", "accrual")
    pages = boto3.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack)
    (name,) = [
        item["PhysicalResourceId"]
        for page in pages
        for item in page["StackResourceSummaries"]
        if item["LogicalResourceId"] == logical_id
    ]
    configuration = boto3.client("lambda").get_function(FunctionName=name)["Configuration"]
    return configuration.get("Environment", {}).get("Variables", {})


def main(argv: list[str] | None = None) -> int:
    arguments = argv if argv is not None else sys.argv[1:]
    if len(arguments) != 2:
        print("usage: python -m accrual_dev.invoke FUNCTION EVENT_FILE", file=sys.stderr)
        return 2
    logical_id, folder = function_folder(arguments[0])
    event = json.loads(Path(arguments[1]).read_text())
    saved = dict(os.environ)  # the function's environment is set for the call only
    try:
        return _invoke(logical_id, folder, event)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _invoke(logical_id: str, folder: str, event: dict[str, Any]) -> int:
    with ExitStack() as resources:
        if not os.environ.get("AWS_ENDPOINT_URL"):
            embedded_stack(resources)
        from accrual import settings as settings_module
        from accrual.settings import Settings

        os.environ.update(function_environment(logical_id))
        os.environ["POWERTOOLS_SERVICE_NAME"] = os.environ.get("POWERTOOLS_SERVICE_NAME", "accrual")
        for value in vars(settings_module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
        event = prepare(event, Settings.from_env())
        handler = load_function(folder)
        context = LocalContext(
            function_name=logical_id,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{logical_id}",
        )
        import time

        context.deadline = time.monotonic() + 900
        try:
            answer = handler.lambda_handler(event, context)
        except Exception as error:  # noqa: BLE001 - reported as Lambda reports it: the error type and message
            print(json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}, indent=2))
            return 1
    print(json.dumps(answer, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
