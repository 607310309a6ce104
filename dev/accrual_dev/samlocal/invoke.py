"""`sam local invoke` of every function that has an event in `events/`, against the local stack.

Which event a function gets: `events/<folder>.json`, where `<folder>` is the last part of the function's `CodeUri`
(`functions/outbox_relay/` -> `events/outbox_relay.json`); `EVENT_FILES` names the exceptions. A function without an
event is listed as skipped; a new function with its event is invoked without any change here.

Where the local stack is: the SAM CLI (1.170) starts the Lambda container on Docker's default bridge network whatever
`--docker-network` says (it only connects the container to a network other than `host`), so the container cannot
reach the host's loopback. The local stack (moto) and the partner simulator therefore listen on the bridge's gateway
address, an address of this machine that both the host and the containers reach, and the `--env-vars` file points
every function there (`AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from accrual_dev.samlocal import SetupError, repository_root
from accrual_dev.samlocal.build import ENDPOINT_VARIABLE, functions, sam_cli, sam_environment

# Functions whose event file does not follow the CodeUri folder's name: logical id -> file name under events/.
EVENT_FILES: dict[str, str] = {}
# Files in events/ that are not a function's event.
NOT_EVENTS = {"demo-config.json"}
START_LINE = re.compile(r"START RequestId: (\S+)")
# Docker 20.10 (Debian's docker.io) can lose the first line a container prints when the SAM CLI attaches to it at that
# very moment (the daemon replays the log file, then follows the live output; a line written in between is lost), and
# that line is the emulator's START. The container's own log (`docker logs --follow`, read while SAM runs it) keeps
# every line, so a START missing from SAM's stream is looked up there, and the output says so.


@dataclass
class Invocation:
    function: str
    event: Path


@dataclass
class Outcome:
    function: str
    event: str
    seconds: float = 0.0
    start_source: str = "SAM's output"
    request_id: str | None = None
    response: Any = None
    stdout: str = ""
    stderr: str = ""
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def event_file(logical_id: str, properties: dict[str, Any], events_dir: Path) -> Path:
    """The event a function is invoked with (it may not exist)."""
    if logical_id in EVENT_FILES:
        return events_dir / EVENT_FILES[logical_id]
    code_uri = properties.get("CodeUri")
    folder = Path(str(code_uri)).name if isinstance(code_uri, str) else logical_id
    return events_dir / f"{folder}.json"


def discover(template: dict[str, Any], events_dir: Path) -> tuple[list[Invocation], list[str]]:
    """The functions with an event (in template order), and those without one."""
    found, missing = [], []
    for logical_id, properties in functions(template).items():
        event = event_file(logical_id, properties, events_dir)
        if event.is_file():
            found.append(Invocation(logical_id, event))
        else:
            missing.append(logical_id)
    return found, missing


def bridge_gateway() -> str:
    """The address of this machine on Docker's default bridge (what a container reaches the host at)."""
    answer = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if answer.returncode:
        raise SetupError(f"docker network inspect bridge failed: {answer.stderr.strip()[-200:]}")
    for config in json.loads(answer.stdout or "[]") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
        if config.get("Subnet"):
            network = ipaddress.ip_network(config["Subnet"], strict=False)
            if network.version == 4:
                return str(next(network.hosts()))
    raise SetupError("Docker's bridge network has no IPv4 gateway: the functions could not reach the local stack")


def function_environments(
    template: dict[str, Any], resources: dict[str, str], endpoint: str, region: str
) -> dict[str, dict[str, str]]:
    """The `--env-vars` document: each function's environment as the local stack resolved it (the same variables
    template.yaml gives it in AWS, with this stack's names), plus AWS_ENDPOINT_URL pointing at the stack."""
    lambda_client = boto3.client("lambda", region_name=region, endpoint_url=endpoint)
    environments: dict[str, dict[str, str]] = {}
    for logical_id in functions(template):
        physical = resources.get(logical_id)
        if not physical:
            raise SetupError(f"{logical_id} is not in the local stack: provision it from the same template")
        configuration = lambda_client.get_function_configuration(FunctionName=physical)
        variables = dict(configuration.get("Environment", {}).get("Variables", {}))
        variables[ENDPOINT_VARIABLE] = endpoint
        environments[logical_id] = variables
    return environments


def stack_resources(stack: str, region: str, endpoint: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint)
    return {
        summary["LogicalResourceId"]: summary["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        for summary in page["StackResourceSummaries"]
    }


def write_env_vars(path: Path, environments: dict[str, dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(environments, indent=2, sort_keys=True) + "\n")
    return path


class ContainerLogs:
    """Follows the log of every container started while it is open (`docker events`, then `docker logs -f`)."""

    def __init__(self) -> None:
        self._since = str(int(time.time()) - 1)
        self._events: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self._followers: list[subprocess.Popen[str]] = []
        self.logs: dict[str, str] = {}

    def __enter__(self) -> ContainerLogs:
        self._events = subprocess.Popen(
            [
                "docker",
                "events",
                "--since",
                self._since,
                "--filter",
                "type=container",
                "--filter",
                "event=start",
                "--format",
                "{{.ID}}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        self._threads.append(watcher)
        return self

    def _watch(self) -> None:
        assert self._events is not None and self._events.stdout is not None
        for line in self._events.stdout:
            container = line.strip()
            if container and container not in self.logs:
                self.logs[container] = ""
                follower = threading.Thread(target=self._follow, args=(container,), daemon=True)
                follower.start()
                self._threads.append(follower)

    def _follow(self, container: str) -> None:
        follower = subprocess.Popen(
            ["docker", "logs", "--follow", container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        self._followers.append(follower)
        assert follower.stdout is not None
        for line in follower.stdout:
            self.logs[container] += line

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # the last lines of a container that has just stopped
        for process in [self._events, *self._followers]:
            if process is not None and process.poll() is None:
                process.terminate()
        for thread in self._threads:
            thread.join(timeout=5)

    def text(self) -> str:
        return "".join(self.logs.values())


def sam_local_invoke(
    function: str, template: Path, event: Path, env_vars: Path, region: str, timeout: float = 960.0
) -> Outcome:
    """Run `sam local invoke` as a user would; the response is SAM's stdout, the container's output its stderr."""
    outcome = Outcome(function=function, event=event.name)
    command = [
        str(sam_cli()),
        "local",
        "invoke",
        function,
        "--template",
        str(template),
        "--event",
        str(event),
        "--env-vars",
        str(env_vars),
        "--skip-pull-image",
        "--region",
        region,
    ]
    environment = {**sam_environment(), "AWS_DEFAULT_REGION": region}
    started = time.monotonic()
    with ContainerLogs() as containers:
        done = subprocess.run(
            command,
            cwd=repository_root(),
            capture_output=True,
            text=True,
            env=environment,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    outcome.seconds = time.monotonic() - started
    outcome.stdout, outcome.stderr = done.stdout, done.stderr
    started_line = START_LINE.search(done.stderr) or START_LINE.search(done.stdout)
    if not started_line:
        started_line = START_LINE.search(containers.text())
        if started_line:
            outcome.start_source = "the container's log (Docker lost it from SAM's attached stream)"
    outcome.request_id = started_line.group(1) if started_line else None
    if done.returncode:
        outcome.problems.append(f"sam local invoke exited {done.returncode}: {_tail(done.stderr)}")
    if not started_line:
        outcome.problems.append("no 'START RequestId': no Lambda container ran the function")
    if "errorType" in done.stdout or "errorType" in done.stderr:
        outcome.problems.append(f"the invocation reported an errorType: {_tail(done.stdout or done.stderr)}")
    try:
        outcome.response = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    except json.JSONDecodeError:
        outcome.problems.append(f"the response is not JSON: {done.stdout.strip()[-300:]}")
    return outcome


def _tail(text: str, lines: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])[-600:]


def default_env_vars_path() -> Path:
    return repository_root() / ".aws-sam" / "local" / "env.json"


def region_of_environment() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
