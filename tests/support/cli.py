"""The operator's console script against a test's stack.

Each command a test checks runs as its own process, as an operator types it. The configuration and clicks every test
starts from are loaded through the same CLI code in the test's process: two process starts (about 2.5 s) saved per
test, while `config load` and `clicks load` themselves are tested through the console script.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from accrual.settings import Settings
from accrual_dev import cli

CLI = Path(sys.executable).parent / "accrual"

Run = Callable[..., subprocess.CompletedProcess[str]]


def operator_cli(stack: Settings, folder: Path, config: dict[str, Any], clicks: Iterable[dict[str, Any]]) -> Run:
    """`run(*args, expect=0, environment=None)`: the console script, its exit code checked; the stack starts with
    `config` as its current configuration and `clicks` stored."""
    env = {**os.environ, "ACCRUAL_STACK": stack.stack}

    def run(*args: object, expect: int = 0, environment: dict[str, str] | None = None):
        result = subprocess.run(
            [str(CLI), *map(str, args)], env={**env, **(environment or {})}, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == expect, (args, result.stdout[-2000:], result.stderr[-2000:])
        return result

    (folder / "config.json").write_text(json.dumps(config))
    (folder / "clicks.jsonl").write_text("".join(json.dumps(click) + "\n" for click in clicks))
    for command in (["config", "load", str(folder / "config.json")], ["clicks", "load", str(folder / "clicks.jsonl")]):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert cli.main(command) == 0, printed.getvalue()
    return run
