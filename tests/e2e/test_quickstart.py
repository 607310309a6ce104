"""docs/quickstart.md as written: its first command block is run line by line, each `accrual` command as its own
process against a stack provisioned from the template (as `make local` provisions one), from the repository's root so
that the paths to `examples/` resolve. What the steps promise is checked on what they print."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from support.cli import CLI

ROOT = Path(__file__).resolve().parents[2]


def quick_start() -> list[str]:
    """The first fenced block of docs/quickstart.md, without its comments."""
    text = (ROOT / "docs" / "quickstart.md").read_text()
    block = re.search(r"^```\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert block, "docs/quickstart.md has no command block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def test_the_quick_start_runs_as_written(stack):
    commands = quick_start()
    assert commands[0] == "make local"  # the stack: here the test's own, provisioned from the same template
    environment = {**os.environ, "ACCRUAL_STACK": stack.stack}
    printed: dict[str, subprocess.CompletedProcess[str]] = {}
    for command in commands[1:]:
        words = shlex.split(command)
        assert words[0] == "accrual", command
        done = subprocess.run(
            [str(CLI), *words[1:]], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        printed[command] = done

    ingested = json.loads(printed["accrual ingest examples/report.jsonl --partner normalized"].stdout)
    assert (ingested["read"], ingested["accepted"], ingested["quarantined"]) == (4, 4, 0)
    assert ingested["notified"] == {"published": 3}

    # one message per change, each shown once
    first = printed["accrual notifications tail"].stdout.splitlines()
    assert sorted(re.search(r"(cashback\.\w+)\s+user (\S+)", line).groups() for line in first) == [
        ("cashback.declined", "u-chen"),
        ("cashback.pending", "u-anna"),
        ("cashback.pending", "u-ben"),
    ]
    confirmed = printed["accrual notifications tail --type cashback.confirmed"].stdout.splitlines()
    assert len(confirmed) == 1 and "u-anna" in confirmed[0] and "8100200301" in confirmed[0]

    explained = printed["accrual explain 8100200301 --lang en"].stdout
    assert "confirmed" in explained.splitlines()[0] and "RUB" in explained.splitlines()[0]
    assert "pending 0.00 RUB" in printed["accrual balance u-anna"].stdout
