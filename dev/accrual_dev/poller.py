"""The reconcile workers on the operator's machine: a small poller that does what Lambda's SQS event source does.

It receives a batch from the work queue, builds the SQS event Lambda would send (same record shape), invokes the
real handler of `functions/reconcile/app.py` with it, deletes the messages the handler did not report as failed and
makes the failed ones visible again (Lambda would leave them for the visibility timeout; locally that would only
wait). SQS counts the receives and moves a unit to the dead-letter queue after the template's maxReceiveCount.
A poller that dies between the handler and the delete leaves its messages to be received again: the units are
idempotent, so nothing is doubled.

A command waits for its own run's units only: the worker logs each unit's outcome under its run (the handler keeps
nothing for the poller), the poller stops once its runs' units are all done, and another command's units it happens
to receive are left on the queue for their owner and named.

`drain(settings, workers)` runs the pollers the way Lambda runs concurrent instances of the function: each its own
process. A process's threads share one core (the GIL), and a worker's CPU per line (botocore's serialising and
signing, mostly) is what bounds it once the waits on DynamoDB overlap, so N workers are spread over one poller process
per core (at most one per unit of work), each with its share of the N threads.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from accrual.composition import composition
from accrual.ports import QueuedMessage
from accrual.service.work import WorkUnit
from accrual.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
BATCH_SIZE = 4  # template.yaml, ReconcileFunction's SQS event: BatchSize
VISIBILITY_SECONDS = 120
HOLD_SECONDS = (
    6 * 3600
)  # another command's unit is hidden this long at most (under SQS's 12 hours), released at the end


@dataclass
class LocalContext:
    """What a handler reads from Lambda's context."""

    function_name: str = "ReconcileFunction"
    memory_limit_in_mb: int = 1769
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:ReconcileFunction"
    aws_request_id: str = ""
    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_function(folder: str) -> ModuleType:
    """A function's app.py as the Lambda runtime imports it (registered in sys.modules before it runs)."""
    name = f"accrual_function_{folder}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / folder / "app.py")
    assert spec is not None and spec.loader is not None, folder
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sqs_event(messages: list[QueuedMessage], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for these received messages."""
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": message.message_id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": str(message.receives),
                    "SentTimestamp": str(message.sent_at_ms) if message.sent_at_ms else now_ms,
                    "SenderId": "AIDAEXAMPLELOCAL",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(message.body.encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class LocalPoller:
    """Runs the real reconcile handler over the work queue. With `runs` (run id -> the number of units it handed on)
    it does only those runs' units and stops once every one of them is done (or failed on its last allowed
    receive); another command's units it receives are hidden from it until it ends, then made visible again for
    their owner, and named in its answer. Without `runs` it works the whole queue off."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int,
        batch_size: int = BATCH_SIZE,
        visibility_seconds: int = VISIBILITY_SECONDS,
        runs: Mapping[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.batch_size = batch_size
        self.visibility_seconds = visibility_seconds
        services = composition(settings)
        self.queue = services.work_queue
        self.work = services.work
        self.queue_arn = self.queue.arn()
        self.max_receives = self.queue.max_receives()
        self.runs = dict(runs) if runs is not None else None
        self.seen_runs: set[str] = set()
        self.others: dict[str, str] = {}  # another command's units: message id -> what the unit is
        self._held: list[str] = []
        os.environ["RECONCILE_WORKERS"] = str(workers)  # the function's environment variable (template.yaml)
        load_settings.cache_clear()  # the handler reads it at its "cold start": this poller's
        self.handler = load_function("reconcile")

    def invoke(self, messages: list[QueuedMessage]) -> set[str]:
        """One invocation of the real handler; the ids of the messages it reported failed."""
        event = sqs_event(messages, self.queue_arn, self.settings.region)
        context = LocalContext(aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + 300)
        # the handler's metrics (EMF) go to stdout in Lambda; on the terminal stdout carries the command's JSON
        with contextlib.redirect_stdout(sys.stderr):
            try:
                answer = self.handler.lambda_handler(event, context)
            except Exception:  # noqa: BLE001 - an invocation error fails the whole batch, as on Lambda
                answer = {"batchItemFailures": [{"itemIdentifier": message.message_id} for message in messages]}
        return {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}

    def _run_of(self, message: QueuedMessage) -> str | None:
        try:
            return str(json.loads(message.body).get("run_id"))
        except (ValueError, AttributeError):
            return None

    def poll_once(self) -> tuple[int, int] | None:
        """Receive one batch and run this poller's units of it; None when nothing was visible. Returns (done,
        failed)."""
        messages = self.queue.receive(limit=self.batch_size, wait_seconds=0, visibility_timeout=self.visibility_seconds)
        if not messages:
            return None
        own = [message for message in messages if self.runs is None or self._run_of(message) in self.runs]
        others = [message for message in messages if message not in own]
        if others:
            self.queue.hide((message.receipt_handle for message in others), HOLD_SECONDS)
            self._held += [message.receipt_handle for message in others]
            self.others.update({message.message_id: _unit_label(message.body) for message in others})
        if not own:
            return 0, 0
        self.seen_runs.update(run for run in map(self._run_of, own) if run)
        failed = self.invoke(own)
        self.queue.delete(message.receipt_handle for message in own if message.message_id not in failed)
        # retried at once; SQS moves a unit past its maxReceiveCount to the dead-letter queue
        self.queue.release(message.receipt_handle for message in own if message.message_id in failed)
        return len(own) - len(failed), len(failed)

    def finished(self) -> bool:
        """Every unit of the runs waited for is done, or failed on its last allowed receive (dead-lettered)."""
        assert self.runs is not None
        for run_id, units in self.runs.items():
            over = [
                outcome
                for outcome in self.work.outcomes(run_id)
                if outcome.done or (self.max_receives is not None and outcome.receives >= self.max_receives)
            ]
            if len(over) < units:
                return False
        return True

    def _idle_and_done(self) -> bool:
        if self.runs is not None:
            return self.finished()
        depth = self.queue.depth()
        return not depth.visible and not depth.in_flight

    def drain(self, *, timeout: float = 3600.0) -> dict[str, Any]:
        """Run batches until this poller's units are done (waiting out messages a dead poller left in flight)."""
        tally: Counter[str] = Counter()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                polled = self.poll_once()
                if polled is None:
                    if self._idle_and_done():
                        break
                    time.sleep(0.5)
                    continue
                done, failed = polled
                tally["batches"] += 1
                tally["units_done"] += done
                tally["unit_failures"] += failed
        finally:
            self.queue.release(self._held)  # another command's units: visible again for their owner
        runs = sorted(self.seen_runs) if self.runs is None else list(self.runs)
        return {
            "fanout": {"workers": self.workers, **tally},
            "runs": runs,
            "others": self.others,
            "results": results_of(self.settings, runs),
        }


def _unit_label(body: str) -> str:
    try:
        return WorkUnit.model_validate_json(body).label()
    except ValueError:
        return body[:200]


def results_of(settings: Settings, runs: Iterable[str]) -> list[dict[str, Any]]:
    """What the runs' units did, as their workers logged it."""
    work = composition(settings).work
    return [json.loads(outcome.detail) for run in runs for outcome in work.outcomes(run) if outcome.done]


def poller_processes(workers: int, units: int) -> int:
    """How many poller processes share `workers` threads: one per core at most (a process's threads share one core;
    ACCRUAL_POLLER_PROCESSES sets another bound), never more than there are workers or units to share."""
    cores = int(os.environ.get("ACCRUAL_POLLER_PROCESSES", 0)) or os.cpu_count() or 1
    return max(1, min(cores, workers, units))


def drain(
    settings: Settings, workers: int, *, runs: Mapping[str, int] | None = None, timeout: float = 3600.0
) -> dict[str, Any]:
    """Work off `runs`' units (run id -> units handed on; None: the whole queue) with `workers` threads in all,
    spread over `poller_processes` processes: this one and children started with the same environment (the stack,
    the endpoint). Answers the pollers' tallies merged, the results the runs' units logged, and the other
    commands' units seen and left queued."""
    units = sum(runs.values()) if runs is not None else composition(settings).work_queue.depth().visible
    processes = poller_processes(workers, units)
    threads = math.ceil(workers / processes)
    # a batch no larger than an even share, so every process gets units (Lambda's batches are "up to" BatchSize too)
    batch_size = max(1, min(BATCH_SIZE, units // processes)) if processes > 1 else BATCH_SIZE
    children = []
    with tempfile.TemporaryDirectory(prefix="accrual-pollers-") as folder:
        try:
            for number in range(1, processes):
                answer = Path(folder) / f"poller-{number}.json"
                command = [sys.executable, "-m", "accrual_dev.poller", "--threads", str(threads)]
                command += ["--batch-size", str(batch_size), "--timeout", str(timeout), "--answer", str(answer)]
                for run_id, count in (runs or {}).items():
                    command += ["--run", f"{run_id}={count}"]
                children.append(
                    (subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL), answer)
                )
            poller = LocalPoller(settings, workers=threads, batch_size=batch_size, runs=runs)
            drained = poller.drain(timeout=timeout)
            for child, answer in children:
                if child.wait() != 0 or not answer.exists():
                    raise RuntimeError(f"a poller process ended with exit code {child.returncode}")
                theirs = json.loads(answer.read_text())
                drained["runs"] = sorted({*drained["runs"], *theirs["runs"]})
                drained["others"].update(theirs["others"])
                for name, value in theirs["fanout"].items():
                    if name != "workers":
                        drained["fanout"][name] = drained["fanout"].get(name, 0) + value
        finally:
            for child, _ in children:
                if child.poll() is None:
                    child.terminate()
    drained["fanout"].update(workers=workers, processes=processes, threads_per_process=threads)
    if drained["others"]:
        # units other commands handed on: left on the queue for them (or the deployed workers), named here
        drained["fanout"]["others_left_queued"] = sorted(set(drained["others"].values()))
    if children:
        drained["results"] = results_of(settings, drained["runs"])
    return drained


def main(argv: list[str] | None = None) -> int:
    """A poller process of `drain`: drain the stack's work queue (the environment names the stack and endpoint)
    and write the results as JSON to --answer."""
    parser = argparse.ArgumentParser(prog="python -m accrual_dev.poller", description=main.__doc__)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--answer", type=Path, required=True)
    parser.add_argument("--run", action="append", default=None, help="RUN_ID=UNITS: a run whose units to do")
    args = parser.parse_args(argv)
    runs = None if args.run is None else {run: int(count) for run, count in (item.split("=") for item in args.run)}
    from accrual.adapters.ledger_tables import bind_ledger_tables

    settings = Settings.from_env()
    bind_ledger_tables(settings)
    poller = LocalPoller(settings, workers=args.threads, batch_size=args.batch_size, runs=runs)
    drained = poller.drain(timeout=args.timeout)
    args.answer.write_text(json.dumps(drained, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
