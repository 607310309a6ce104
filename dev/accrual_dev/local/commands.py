"""`accrual stack up` and `accrual stack provision`: the embedded local stack for operators and developers."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from accrual_dev.local.provision import Provisioned, provision
from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer


def _print_resources(provisioned: Provisioned, prefix: str = "") -> None:
    print(f"{prefix}stack {provisioned.stack} {provisioned.action} in {provisioned.seconds:.1f} s")
    for key, value in sorted(provisioned.outputs.items()):
        print(f"{prefix}{key}: {value}")
    if provisioned.held_back:
        print(f"{prefix}not emulated (moto): {', '.join(provisioned.held_back)}")


def stack_provision(args: argparse.Namespace) -> int:
    """Provision template.yaml's resources at AWS_ENDPOINT_URL under ACCRUAL_STACK; print the resource names."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("AWS_ENDPOINT_URL is not set: `stack provision` targets a local emulator "
              "(deploy to AWS with `sam build && sam deploy`)", file=sys.stderr)
        return 2
    _print_resources(provision())
    return 0


def stack_up(args: argparse.Namespace) -> int:
    """Start a moto server, provision the stack on it, print the exports, and keep running until Ctrl-C."""
    stack = os.environ.get("ACCRUAL_STACK", "accrual")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with MotoServer() as server:
        os.environ.update({**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": server.url, "ACCRUAL_STACK": stack})
        provisioned = provision(stack)
        print(f"# local AWS (moto) at {server.url}: paste these into another shell")
        for name, value in {"AWS_ENDPOINT_URL": server.url, "ACCRUAL_STACK": stack, **LOCAL_ENVIRONMENT}.items():
            print(f"export {name}={value}")
        _print_resources(provisioned, prefix="# ")
        print("# Ctrl-C stops the server (and forgets everything in it)", flush=True)
        try:
            while not stopped.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    print("# stopped", flush=True)
    return 0
