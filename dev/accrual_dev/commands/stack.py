"""`accrual stack up | provision`: the embedded local stack for operators and developers.

`stack up` (and `make local`) start everything `accrual run` needs: the local AWS provisioned from template.yaml (moto,
or the emulator ACCRUAL_EMULATOR names: `make local` runs DynamoDB Local beside moto), and the partner simulator with
the stack's partner endpoints and secrets pointing at it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import command_group

if TYPE_CHECKING:
    from accrual_dev.local.provision import Provisioned


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, stack = command_group(subparsers, "stack", "the embedded local AWS stack")
    up = stack.add_parser(
        "up",
        help="start the local stack (moto + partner simulator), provision template.yaml, wait for Ctrl-C",
        description="Start a moto server on a free port (ACCRUAL_EMULATOR=dynamodb-local: AWS's DynamoDB Local for "
        "DynamoDB beside it, as `make local` does; =ministack: ministack), provision template.yaml on it, start the partner "
        "simulator beside it and point the partners' endpoints (SSM) and credentials (Secrets Manager) "
        "at the simulator. Prints the `export` lines for another shell, where `accrual config load`, "
        "`clicks load` and `run` then work against the simulator. Runs until Ctrl-C (which forgets "
        "everything).",
    )
    up.add_argument(
        "--no-simulator",
        dest="simulator",
        action="store_false",
        help="leave the partners' endpoints and secrets as the template sets them (the real APIs)",
    )
    up.add_argument("--seed", type=int, default=1, help="the simulator's seeded world (default 1)")
    up.add_argument("--days", type=int, default=30, help="days of simulated orders, ending today (default 30)")
    up.add_argument("--orders-per-day", type=int, default=8, help="simulated orders a day (default 8)")
    up.add_argument(
        "--clicks",
        default=None,
        metavar="FILE",
        help="where to write the simulator's clicks as JSON Lines (default: a file in the temporary "
        "directory, named in the output)",
    )
    stack.add_parser(
        "provision",
        help="provision template.yaml's resources at AWS_ENDPOINT_URL",
        description="Provision template.yaml's resources under ACCRUAL_STACK on the emulator at AWS_ENDPOINT_URL "
        "(a moto server started another way); prints the resource names. Not for AWS: deploy with SAM.",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    return {"up": up, "provision": provision}[args.stack_command](args)


def _print_resources(provisioned: Provisioned, prefix: str = "") -> None:
    print(f"{prefix}stack {provisioned.stack} {provisioned.action} in {provisioned.seconds:.1f} s")
    for key, value in sorted(provisioned.outputs.items()):
        print(f"{prefix}{key}: {value}")
    if provisioned.held_back:
        print(f"{prefix}not emulated (moto): {', '.join(provisioned.held_back)}")


def provision(args: argparse.Namespace) -> int:
    """Provision template.yaml's resources at AWS_ENDPOINT_URL under ACCRUAL_STACK; print the resource names."""
    from accrual_dev.local.provision import provision as provision_stack

    if not os.environ.get("AWS_ENDPOINT_URL"):
        print(
            "AWS_ENDPOINT_URL is not set: `stack provision` targets a local emulator "
            "(deploy to AWS with `sam build && sam deploy`)",
            file=sys.stderr,
        )
        return 2
    _print_resources(provision_stack())
    return 0


def up(args: argparse.Namespace) -> int:
    """Start the local AWS (ACCRUAL_EMULATOR, moto unless set), provision the stack on it, start the partner simulator
    beside it and point the partners' endpoints and secrets at it, print the exports, and keep running until Ctrl-C."""
    from accrual.settings import RESOURCE_VARIABLES
    from accrual_dev.local.emulators import EMULATORS, emulator_name
    from accrual_dev.local.provision import provision as provision_stack
    from accrual_dev.local.server import ENDPOINT_VARIABLES, LOCAL_ENVIRONMENT

    stack = os.environ.get("ACCRUAL_STACK", "accrual")
    try:
        emulator = emulator_name()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with EMULATORS[emulator]() as server, ExitStack() as simulator_lifetime:
        for name in (*RESOURCE_VARIABLES, *ENDPOINT_VARIABLES):  # a shell of another stack must not redirect this one
            os.environ.pop(name, None)
        os.environ.update({**LOCAL_ENVIRONMENT, **server.endpoints, "ACCRUAL_STACK": stack})
        provisioned = provision_stack(stack)
        where = ", ".join(f"{name} {pid}" for name, pid in server.pids.items())
        print(f"# local AWS ({emulator}) at {server.url} (processes: {where}): paste these into another shell")
        for name, value in {
            **server.endpoints,
            "ACCRUAL_STACK": stack,
            **LOCAL_ENVIRONMENT,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }.items():
            print(f"export {name}={value}")
        _print_resources(provisioned, prefix="# ")
        if getattr(args, "simulator", True):
            simulator_lifetime.enter_context(_simulated_partners(args, stack))
        print("# Ctrl-C stops the server (and forgets everything in it)", flush=True)
        try:
            while not stopped.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    print("# stopped", flush=True)
    return 0


@contextmanager
def _simulated_partners(args: argparse.Namespace, stack: str) -> Iterator[None]:
    """The partner simulator on a free port, serving orders of the last `days` days as of now, with the stack's
    partner endpoints (SSM), credentials (Secrets Manager) and currency rates (partner options) pointing at it."""
    from accrual.settings import Settings
    from accrual_dev.local.provision import default_template_path
    from accrual_dev.simulator import launch
    from accrual_dev.simulator.local import configure_local_partners

    now = datetime.now(UTC)
    days = max(1, int(getattr(args, "days", 30)))
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    simulator = launch(
        seed=getattr(args, "seed", 1),
        start=start,
        days=days,
        orders_per_day=getattr(args, "orders_per_day", 8),
        now=now,
    )
    try:
        settings = Settings.from_env()
        endpoints = configure_local_partners(
            settings, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates
        )
        clicks = Path(getattr(args, "clicks", None) or Path(tempfile.gettempdir()) / f"accrual-{stack}-clicks.jsonl")
        clicks.write_text(simulator.world.clicks_jsonl(), encoding="utf-8")
        print(
            f"# partner simulator at {simulator.url}: {len(simulator.world.clicks)} clicks, orders from "
            f"{start.date().isoformat()} to now (seed {getattr(args, 'seed', 1)})"
        )
        for partner, endpoint in sorted(endpoints.items()):
            print(
                f"#   {partner}: endpoint {endpoint} (SSM {settings.partner_parameters_prefix}{partner}/endpoint), "
                f"credentials in the secret {settings.partner_secrets_prefix}{partner}"
            )
        print("# then, in that shell:")
        print(f"#   accrual config load {default_template_path().parent / 'events' / 'demo-config.json'}")
        print(f"#   accrual clicks load {clicks}")
        print("#   accrual run          # pulls the simulator, reconciles, confirms, notifies")
        print("#   accrual audit", flush=True)
        yield
    finally:
        simulator.stop()
