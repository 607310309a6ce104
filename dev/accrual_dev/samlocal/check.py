"""`make test-sam-local`: every function with an event, run by `sam local invoke` in a Lambda container against a
fresh local stack and the partner simulator, and what each did read back from the stack.

Per event (by its file name) a scenario prepares the stack, adapts the event to it (this stack's bucket, the
simulator's clock) and checks the outcome in the stack; a function whose event has no scenario yet is still invoked
and must start (the SAM CLI's `START RequestId`) and end without an `errorType`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from accrual_dev.samlocal import SetupError, repository_root
from accrual_dev.samlocal.invoke import (
    Invocation,
    Outcome,
    bridge_gateway,
    discover,
    function_environments,
    sam_local_invoke,
    write_env_vars,
)

STACK = "samlocal"
REGION = "us-east-1"
SEED = 5
START = datetime.fromisoformat("2026-10-01T00:00:00+00:00")
# A small world (moto settles each order in a transaction that copies whole tables): five days, as the first pull of
# a fresh cursor reads only the five days before the cycle's time.
DAYS = 5
ORDERS_PER_DAY = 3
CYCLE_AT = START + timedelta(days=DAYS)
DROP_ORDER = "SAMLOCAL-DROP-1"
DROP_KEY = "drops/aliexpress/samlocal-drop.jsonl"
# Confirmation runs three weeks after the pull: the partners' hold periods have passed.
CONFIRM_AT = CYCLE_AT + timedelta(days=21)


@dataclass
class Context:
    endpoint: str
    env: dict[str, dict[str, str]]  # logical id -> the function's environment
    outputs: dict[str, str]
    simulator: Any
    workdir: Path
    relay_ids: list[str] = field(default_factory=list)  # outbox events the relay scenario expects published
    before: dict[str, int] = field(default_factory=dict)  # counts read before an invocation
    receipts: list[str] = field(default_factory=list)  # work-queue messages handed to the reconcile worker

    def client(self, service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def variable(self, name: str) -> str:
        for variables in self.env.values():
            if variables.get(name):
                return variables[name]
        raise KeyError(name)


Prepare = Callable[[Context, dict[str, Any]], dict[str, Any]]
Verify = Callable[[Context, Outcome], None]


def _scan(context: Context, table: str) -> list[dict[str, Any]]:
    dynamodb = context.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return items


def _keys(context: Context, bucket: str, prefix: str) -> list[str]:
    s3 = context.client("s3")
    return [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def _expect(outcome: Outcome, condition: bool, what: str) -> None:
    (outcome.checked if condition else outcome.problems).append(what)


# -- the scheduled cycle: pull (archive pages), reconcile, confirm, notify ------------------------------------------


def prepare_cycle(context: Context, event: dict[str, Any]) -> dict[str, Any]:
    # The schedule's time is the cycle's "now": the simulator's, so the pull finds its orders.
    return {**event, "scheduled_time": CYCLE_AT.isoformat().replace("+00:00", "Z")}


def verify_cycle(context: Context, outcome: Outcome) -> None:
    bucket = context.variable("REPORTS_BUCKET")
    pages = _keys(context, bucket, "raw/")
    _expect(outcome, len(pages) > 0, f"{len(pages)} raw partner pages archived under raw/")
    orders = [item for item in _scan(context, context.variable("ORDERS_TABLE")) if item["sk"]["S"] == "ORDER"]
    partners = sorted({item["pk"]["S"].split("#", 1)[0] for item in orders})
    world = context.simulator.world
    _expect(
        outcome,
        len(orders) > 0 and partners == ["admitad", "aliexpress"],
        f"{len(orders)} orders reconciled in the orders table from {', '.join(partners) or 'no partner'} "
        f"(the simulator serves {len(world.aliexpress)} AliExpress sub-orders, {len(world.admitad)} Admitad "
        "actions)",
    )
    response = outcome.response or {}
    pulled = response.get("pull", {}) if isinstance(response, dict) else {}
    _expect(
        outcome,
        pulled.get("read", 0) > 0 and not pulled.get("failed"),
        f"the cycle's answer: {pulled.get('read')} lines read, failed partners {pulled.get('failed')}",
    )


# -- a report file dropped under drops/ --------------------------------------------------------------------------


def _drop_lines(context: Context) -> list[dict[str, Any]]:
    click = next(click for click in context.simulator.world.clicks if click["partner"] == "aliexpress")
    ordered = datetime.fromisoformat(click["clicked_at"].replace("Z", "+00:00")) + timedelta(minutes=30)
    common = {
        "partner": "aliexpress",
        "order_id": DROP_ORDER,
        "sub_id": click["sub_id"],
        "status": "paid",
        "status_at": ordered.isoformat(),
        "ordered_at": ordered.isoformat(),
        "paid_at": ordered.isoformat(),
        "shipping": "0",
        "currency": "USD",
        "category_id": "300003",
        "shop_id": "samlocal-shop",
        "is_affiliate": True,
        "is_hot": False,
    }
    return [
        {**common, "line_id": f"{DROP_ORDER}-1", "amount": "40.00"},
        {**common, "line_id": f"{DROP_ORDER}-2", "amount": "15.50"},
    ]


def prepare_drop(context: Context, event: dict[str, Any]) -> dict[str, Any]:
    bucket = context.variable("REPORTS_BUCKET")
    key = DROP_KEY
    context.before["queued"] = _queued(context)
    body = "".join(json.dumps(line) + "\n" for line in _drop_lines(context)).encode()
    context.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    event = json.loads(json.dumps(event))
    for record in event["Records"]:
        record["eventTime"] = CYCLE_AT.isoformat().replace("+00:00", "Z")
        record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
        record["s3"]["object"].update(key=key, size=len(body))
    return event


def verify_drop(context: Context, outcome: Outcome) -> None:
    response = outcome.response if isinstance(outcome.response, dict) else {}
    if "handed_on" in response:  # split into page units for the reconcile workers
        units = sum(item.get("units", 0) for item in response["handed_on"])
        _expect(outcome, units >= 1, f"the handler read the dropped file and handed on {units} page unit(s)")
        queued = _queued(context) - context.before["queued"]
        _expect(outcome, queued == units, f"{queued} unit(s) of the drop wait on the work queue")
        return
    ingested = response.get("ingested", [])
    read = sum(result.get("read", 0) for result in ingested)
    _expect(outcome, read == 2, f"the handler read {read} of the 2 lines of the dropped file")
    orders = [item for item in _scan(context, context.variable("ORDERS_TABLE")) if DROP_ORDER in json.dumps(item)]
    _expect(outcome, len(orders) > 0, f"{len(orders)} items of order {DROP_ORDER} (from the drop) in the orders table")


# -- the fan-out: scheduled pull per partner, reconcile workers on the work queue, scheduled confirm ---------------


def _orders(context: Context) -> list[dict[str, Any]]:
    return [item for item in _scan(context, context.variable("ORDERS_TABLE")) if item["sk"]["S"] == "ORDER"]


def _queued(context: Context) -> int:
    """Messages waiting on the work queue (visible and in flight), 0 when the stack has no work queue."""
    try:
        queue = context.variable("WORK_QUEUE_URL")
    except KeyError:
        return 0
    attributes = context.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def prepare_pull(context: Context, event: dict[str, Any]) -> dict[str, Any]:
    event = {**event, "scheduled_time": CYCLE_AT.isoformat().replace("+00:00", "Z")}
    context.before["pages"] = len(_keys(context, context.variable("REPORTS_BUCKET"), "raw/"))
    context.before["queued"] = _queued(context)
    return event


def verify_pull(context: Context, outcome: Outcome) -> None:
    response = outcome.response if isinstance(outcome.response, dict) else {}
    partners: dict[str, dict[str, Any]] = response.get("partners", {})
    partner, result = next(iter(partners.items()), ("?", {}))
    pages = len(_keys(context, context.variable("REPORTS_BUCKET"), "raw/")) - context.before["pages"]
    _expect(outcome, pages > 0, f"{pages} raw {partner} pages archived under raw/ from the simulator")
    queued = _queued(context) - context.before["queued"]
    _expect(
        outcome,
        queued > 0 and queued == result.get("handed_on") and not response.get("failed"),
        f"{queued} archived pages handed on to the work queue ({result.get('handed_on')} by the answer)",
    )


def prepare_reconcile(context: Context, event: dict[str, Any]) -> dict[str, Any]:
    """A real SQS batch: the units the pull and the drop left on the work queue, in the event file's shape."""
    sqs, queue = context.client("sqs"), context.variable("WORK_QUEUE_URL")
    template = event["Records"][0]
    records: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=900, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            records.append(
                {
                    **template,
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "md5OfBody": message["MD5OfBody"],
                    "attributes": {**template.get("attributes", {}), **message.get("Attributes", {})},
                }
            )
    context.before["orders"] = len(_orders(context))
    context.before["batch"] = len(records)
    context.receipts = [record["receiptHandle"] for record in records]
    return {**event, "Records": records} if records else event


def verify_reconcile(context: Context, outcome: Outcome) -> None:
    response = outcome.response if isinstance(outcome.response, dict) else {}
    failures = response.get("batchItemFailures")
    _expect(
        outcome, failures == [], f"the batch of {context.before['batch']} units settled without failures ({failures})"
    )
    orders = len(_orders(context))
    _expect(
        outcome,
        orders > context.before["orders"],
        f"{orders - context.before['orders']} orders reconciled from the archived pages ({orders} in all)",
    )
    # The event source mapping deletes what succeeded; here that is done after the invocation.
    sqs, queue = context.client("sqs"), context.variable("WORK_QUEUE_URL")
    for receipt in context.receipts:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)


def prepare_confirm(context: Context, event: dict[str, Any]) -> dict[str, Any]:
    context.before["queued"] = _queued(context)
    return {**event, "scheduled_time": CONFIRM_AT.isoformat().replace("+00:00", "Z")}


def verify_confirm(context: Context, outcome: Outcome) -> None:
    response = outcome.response if isinstance(outcome.response, dict) else {}
    shards = response.get("shards_handed_on", 0)
    queued = _queued(context) - context.before["queued"]
    _expect(
        outcome,
        shards > 0 and queued == shards,
        f"{shards} due shards handed on as confirm units ({queued} more on the work queue)",
    )


# -- the outbox relay: stream records of the outbox table, published to SNS ------------------------------------------


def prepare_relay(context: Context, event: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(json.dumps(event))
    table = context.variable("OUTBOX_TABLE")
    dynamodb = context.client("dynamodb")
    context.relay_ids.clear()
    for number, record in enumerate(event["Records"]):
        image = record["dynamodb"].get("NewImage")
        if image is None:  # the REMOVE of a published event: nothing to put, nothing to publish
            continue
        event_id = f"{image['event_id']['S']}:samlocal-{number}"
        image["event_id"] = {"S": event_id}
        record["dynamodb"]["Keys"] = {"event_id": {"S": event_id}}
        body = json.loads(image["body"]["S"])
        image["body"] = {"S": json.dumps({**body, "event_id": event_id})}
        # The outbox holds what the stream says was written: new records unpublished, the earlier form's MODIFY as
        # published.
        dynamodb.put_item(TableName=table, Item=image)
        if not image.get("published_at"):
            context.relay_ids.append(event_id)
    return event


def verify_relay(context: Context, outcome: Outcome) -> None:
    response = outcome.response or {}
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    _expect(outcome, failures == [], f"partial-batch answer without failures ({failures})")
    table = context.variable("OUTBOX_TABLE")
    dynamodb = context.client("dynamodb")
    expected = set(context.relay_ids)
    gone = {
        event_id
        for event_id in expected
        if "Item" not in dynamodb.get_item(TableName=table, Key={"event_id": {"S": event_id}}, ConsistentRead=True)
    }
    _expect(
        outcome,
        bool(expected) and gone == expected,
        f"{len(gone)} of {len(expected)} new outbox records published and gone from the outbox",
    )
    queue = context.outputs["LocalNotificationsQueueUrl"]
    sqs = context.client("sqs")
    arrived: set[str] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not expected <= arrived:
        for message in sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
        ).get("Messages", []):
            envelope = json.loads(message["Body"])
            arrived.add(json.loads(envelope.get("Message", "{}")).get("event_id", ""))
    _expect(
        outcome,
        bool(expected) and expected <= arrived,
        f"the subscriber queue received {len(expected & arrived)} of {len(expected)} published notifications via SNS",
    )


# Scenarios by event file name (without .json), run in this order (a pull and a drop leave the units the reconcile
# worker then settles); events without a scenario run last.
SCENARIOS: dict[str, tuple[Prepare, Verify]] = {
    "cycle": (prepare_cycle, verify_cycle),
    "pull": (prepare_pull, verify_pull),
    "report_drop": (prepare_drop, verify_drop),
    "drop": (prepare_drop, verify_drop),
    "reconcile": (prepare_reconcile, verify_reconcile),
    "confirm": (prepare_confirm, verify_confirm),
    "outbox_relay": (prepare_relay, verify_relay),
    "relay": (prepare_relay, verify_relay),
}
ORDER = list(SCENARIOS)


def _accrual(*arguments: str) -> str:
    script = Path(sys.executable).parent / "accrual"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "accrual_dev.cli"]
    done = subprocess.run([*command, *arguments], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    if done.returncode:
        raise SetupError(f"accrual {' '.join(arguments)} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return done.stdout


def upload_event_objects(s3: Any, bucket: str, events: Path) -> list[str]:
    """Put the files under events/objects into the stack's bucket (the S3 keys the events name) and into each bucket
    an S3 event of events/ names (created: the example bucket exists only locally), so that `sam local invoke` with
    an event as written finds its object. A drop is not put in the stack's bucket: there it would be a new drop.
    Returns the s3:// locations written."""
    objects = events / "objects"
    buckets = {bucket}
    for path in sorted(events.glob("*.json")):
        for record in json.loads(path.read_text()).get("Records", []):
            if "s3" in record:
                buckets.add(record["s3"]["bucket"]["name"])
    written = []
    for name in sorted(buckets):
        if name != bucket:
            s3.create_bucket(Bucket=name)  # the local emulator only: an event's example bucket
        for path in sorted(item for item in objects.rglob("*") if item.is_file()):
            key = path.relative_to(objects).as_posix()
            if name == bucket and key.startswith("drops/"):
                continue
            s3.put_object(Bucket=name, Key=key, Body=path.read_bytes())
            written.append(f"s3://{name}/{key}")
    return written


@contextmanager
def local_stack(template: dict[str, Any], env_vars: Path | None = None) -> Iterator[tuple[Context, Path]]:
    """The local stack (moto, provisioned from template.yaml) and the partner simulator, both on Docker's bridge
    address, with the configuration and the simulator's clicks loaded, and the `--env-vars` file written."""
    from accrual_dev.local.provision import provision
    from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer
    from accrual_dev.simulator import running_simulator
    from accrual_dev.simulator.local import configure_local_partners

    host = bridge_gateway()
    with ExitStack() as resources:
        workdir = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="sam-local-")))
        server = resources.enter_context(MotoServer(host=host))
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            {
                **LOCAL_ENVIRONMENT,
                "AWS_ENDPOINT_URL": server.url,
                "ACCRUAL_STACK": STACK,
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        # Provisioned from template.yaml itself: the local build's template is the same one, built.
        provisioned = provision(STACK)
        print(f"local stack {STACK} at {server.url} ({provisioned.action} in {provisioned.seconds:.1f} s)", flush=True)
        uploaded = upload_event_objects(
            boto3.client("s3", region_name=REGION),
            provisioned.outputs["ReportsBucketName"],
            repository_root() / "events",
        )
        print(f"uploaded events/objects: {', '.join(uploaded)}", flush=True)
        from accrual.settings import Settings

        simulator = resources.enter_context(
            running_simulator(seed=SEED, start=START, days=DAYS, orders_per_day=ORDERS_PER_DAY, now=CYCLE_AT, host=host)
        )
        configure_local_partners(
            Settings.from_env(), simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates
        )
        _accrual("config", "load", str(repository_root() / "events" / "demo-config.json"))
        clicks = workdir / "clicks.jsonl"
        clicks.write_text(simulator.world.clicks_jsonl(), encoding="utf-8")
        _accrual("clicks", "load", str(clicks))
        print(
            f"partner simulator at {simulator.url}: {len(simulator.world.aliexpress)} AliExpress sub-orders, "
            f"{len(simulator.world.admitad)} Admitad actions, {len(simulator.world.clicks)} clicks loaded",
            flush=True,
        )
        environments = function_environments(template, provisioned.resources, server.url, REGION)
        path = write_env_vars(env_vars or workdir / "env.json", environments)
        yield (
            Context(
                endpoint=server.url, env=environments, outputs=provisioned.outputs, simulator=simulator, workdir=workdir
            ),
            path,
        )


def run_checks(template_path: Path) -> list[Outcome]:
    """Start the local stack and the simulator, invoke every function with its event, check each in the stack."""
    from accrual_dev.local.provision import load_template
    from accrual_dev.samlocal.build import local_template

    template = load_template(template_path)
    invocations, without_event = discover(template, repository_root() / "events")
    if not invocations:
        raise SetupError("no function has an event in events/")
    invocations.sort(key=lambda item: ORDER.index(item.event.stem) if item.event.stem in ORDER else len(ORDER))
    outcomes: list[Outcome] = []
    with local_stack(template) as (context, env_vars):
        for invocation in invocations:
            outcomes.append(_invoke_and_check(context, invocation, local_template(), env_vars))
    for function in without_event:
        print(f"- {function}: no event in events/ (not invoked)")
    return outcomes


def _invoke_and_check(context: Context, invocation: Invocation, template: Path, env_vars: Path) -> Outcome:
    name = invocation.event.stem
    prepare, verify = SCENARIOS.get(name, (None, None))
    event = json.loads(invocation.event.read_text())
    if prepare:
        event = prepare(context, event)
    event_path = context.workdir / invocation.event.name
    event_path.write_text(json.dumps(event))
    print(f"$ sam local invoke {invocation.function} -e events/{invocation.event.name} ...", flush=True)
    outcome = sam_local_invoke(invocation.function, template, event_path, env_vars, REGION)
    outcome.event = invocation.event.name
    if verify and not outcome.problems:
        try:
            verify(context, outcome)
        except Exception as error:  # noqa: BLE001 - a failed check is reported with the others
            outcome.problems.append(f"checking the stack failed: {type(error).__name__}: {error}")
    elif not verify:
        outcome.checked.append("no stack check is defined for this event yet (started and ended cleanly)")
    _print_outcome(outcome)
    return outcome


def _print_outcome(outcome: Outcome) -> None:
    status = "ok" if outcome.ok else "FAILED"
    print(
        f"  {status}: START RequestId {outcome.request_id or '-'} ({outcome.seconds:.1f} s)"
        + (f", read from {outcome.start_source}" if outcome.start_source != "SAM's output" else "")
    )
    for line in outcome.checked:
        print(f"    + {line}")
    for line in outcome.problems:
        print(f"    ! {line}")
    if not outcome.ok:
        print("    --- SAM output (tail) ---")
        for line in (outcome.stderr.strip().splitlines() + outcome.stdout.strip().splitlines())[-25:]:
            print(f"    | {line[:300]}")
    sys.stdout.flush()


def summary_line(outcomes: list[Outcome]) -> str:
    passed = sum(outcome.ok for outcome in outcomes)
    return f"{passed} passed, {len(outcomes) - passed} failed"


def install_signal_handlers() -> None:
    # SIGTERM unwinds like Ctrl-C, so the moto server, the simulator and a started dockerd are stopped either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
