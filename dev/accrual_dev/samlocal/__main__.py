"""python -m accrual_dev.samlocal setup | test | up | env-vars | stop-docker

setup        a Docker daemon, the python3.12 Lambda base image, the functions built for this machine (make sam-local)
test         setup, then every function with an event through `sam local invoke` against a fresh local stack and
             the partner simulator, checked in the stack (make test-sam-local); stops a dockerd it started
up           a local stack and the partner simulator that Lambda containers reach, .aws-sam/local/env.json for
             them, until Ctrl-C (then type the `sam local invoke` commands it prints)
env-vars     write .aws-sam/local/env.json for the stack at AWS_ENDPOINT_URL named ACCRUAL_STACK
stop-docker  stop the dockerd that `setup` started
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from accrual_dev.samlocal import SetupError
from accrual_dev.samlocal.daemon import Daemon


def _setup() -> tuple[Daemon, float]:
    from accrual_dev.samlocal.build import build_functions
    from accrual_dev.samlocal.daemon import ensure_daemon
    from accrual_dev.samlocal.image import ensure_base_image, lambda_architecture

    started = time.monotonic()
    architecture = lambda_architecture()
    daemon = ensure_daemon()
    print(
        f"sam-local: Docker {daemon.version} "
        f"({'dockerd started, pid ' + str(daemon.started_pid) if daemon.started_here else 'already running'})",
        flush=True,
    )
    image = ensure_base_image(architecture)
    print(
        f"sam-local: base image {image.name}: {image.kind}, {image.action}"
        f"{f' in {image.seconds:.0f} s' if image.seconds else ''}",
        flush=True,
    )
    build = build_functions(architecture)
    print(f"sam-local: functions built for {build.architecture} in {build.seconds:.0f} s: {build.template}", flush=True)
    return daemon, time.monotonic() - started


def setup(args: argparse.Namespace) -> int:
    daemon, seconds = _setup()
    print(f"sam-local: ready in {seconds:.0f} s", flush=True)
    if daemon.started_here:
        print(
            "sam-local: dockerd keeps running for your `sam local invoke`s; "
            "`python -m accrual_dev.samlocal stop-docker` stops it"
        )
    return 0


def test(args: argparse.Namespace) -> int:
    from accrual_dev.local.provision import default_template_path
    from accrual_dev.samlocal.build import local_template
    from accrual_dev.samlocal.check import install_signal_handlers, run_checks, summary_line
    from accrual_dev.samlocal.daemon import stop_started_daemon

    install_signal_handlers()
    started = time.monotonic()
    daemon = None
    try:
        daemon, seconds = _setup()
        print(f"sam-local: setup took {seconds:.0f} s", flush=True)
        assert local_template().is_file()
        outcomes = run_checks(default_template_path())
    finally:
        if daemon is not None and daemon.started_here and not args.keep_docker:
            stop_started_daemon(daemon.started_pid)
            print("sam-local: stopped the dockerd this run started", flush=True)
    print(f"sam-local: {len(outcomes)} functions invoked by sam local invoke in {time.monotonic() - started:.0f} s")
    print(f"sam-local: {summary_line(outcomes)}")
    return 0 if outcomes and all(outcome.ok for outcome in outcomes) else 1


def up(args: argparse.Namespace) -> int:
    import signal
    import threading

    from accrual_dev.local.provision import load_template
    from accrual_dev.samlocal import repository_root
    from accrual_dev.samlocal.build import local_template
    from accrual_dev.samlocal.check import local_stack
    from accrual_dev.samlocal.invoke import default_env_vars_path, discover

    if not local_template().is_file():
        print("no local build: run `make sam-local` first", file=sys.stderr)
        return 2
    template = load_template(local_template())
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with local_stack(template, default_env_vars_path()) as (context, path):
        root = repository_root()
        print(f"# --env-vars file: {path.relative_to(root)}; in another shell, for example:")
        for invocation in discover(template, root / "events")[0]:
            print(
                f".tools/venv/bin/sam local invoke {invocation.function} -t {local_template().relative_to(root)} "
                f"-e events/{invocation.event.name} --env-vars {path.relative_to(root)} --skip-pull-image"
            )
        print(
            f"export AWS_ENDPOINT_URL={context.endpoint} ACCRUAL_STACK={os.environ['ACCRUAL_STACK']}  "
            "# the operator CLI on the same stack",
            flush=True,
        )
        print("# Ctrl-C stops the stack and the simulator", flush=True)
        try:
            while not stopped.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def env_vars(args: argparse.Namespace) -> int:
    from accrual_dev.local.provision import load_template
    from accrual_dev.samlocal.build import local_template
    from accrual_dev.samlocal.invoke import (
        default_env_vars_path,
        function_environments,
        region_of_environment,
        stack_resources,
        write_env_vars,
    )

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("AWS_ENDPOINT_URL is not set: point it at the local stack first", file=sys.stderr)
        return 2
    stack, region = os.environ.get("ACCRUAL_STACK", "accrual"), region_of_environment()
    resources = stack_resources(stack, region, endpoint)
    path = write_env_vars(
        Path(args.output) if args.output else default_env_vars_path(),
        function_environments(load_template(local_template()), resources, endpoint, region),
    )
    print(path)
    return 0


def stop_docker(args: argparse.Namespace) -> int:
    from accrual_dev.samlocal.daemon import stop_started_daemon

    print("stopped" if stop_started_daemon() else "no dockerd started by `make sam-local` is running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accrual_dev.samlocal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="Docker, the base image, the local build").set_defaults(run=setup)
    checked = commands.add_parser("test", help="invoke every function with its event and check the stack")
    checked.add_argument("--keep-docker", action="store_true", help="leave a dockerd this run started running")
    checked.set_defaults(run=test)
    commands.add_parser("up", help="a local stack the Lambda containers reach, until Ctrl-C").set_defaults(run=up)
    written = commands.add_parser("env-vars", help="the --env-vars file for the stack at AWS_ENDPOINT_URL")
    written.add_argument("--output", help="where to write it (default .aws-sam/local/env.json)")
    written.set_defaults(run=env_vars)
    commands.add_parser("stop-docker", help="stop the dockerd `setup` started").set_defaults(run=stop_docker)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SetupError as error:
        print(f"sam-local: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sam-local: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
