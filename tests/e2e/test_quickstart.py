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


def blocks() -> list[list[str]]:
    """The fenced blocks of docs/quickstart.md as commands: comments dropped, continued lines joined."""
    text = (ROOT / "docs" / "quickstart.md").read_text()
    found = []
    for block in re.findall(r"^```\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        joined = block.replace("\\\n", " ")
        found.append([line.split("#", 1)[0].strip() for line in joined.splitlines() if line.split("#", 1)[0].strip()])
    return found


def quick_start() -> list[str]:
    """The first block: the quick start itself."""
    return blocks()[0]


def run(command: str, stack) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    assert words[0] == "accrual", command
    done = subprocess.run(
        [str(CLI), *words[1:]],
        cwd=ROOT,
        env={**os.environ, "ACCRUAL_STACK": stack.stack},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    return done


def test_the_quick_start_runs_as_written(stack):
    commands = quick_start()
    assert commands[0] == "make local"  # the stack: here the test's own, provisioned from the same template
    printed = {command: run(command, stack) for command in commands[1:]}

    ingested = json.loads(printed["accrual ingest examples/report.jsonl --partner normalized"].stdout)
    assert (ingested["read"], ingested["accepted"], ingested["quarantined"]) == (4, 4, 0)
    assert ingested["notified"] == {"published": 3}
    assert ingested["reconciled"].get("orders_negative_margin", 0) == 0  # the examples pay out less than they earn

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
    # the first line gives the state; the explanation's own header gives the amounts, in roubles for anna
    assert "confirmed" in explained.splitlines()[0]
    assert "RUB" in explained and "promotion" in explained.lower()
    assert "pending 0.00 RUB" in printed["accrual balance u-anna"].stdout


def test_the_partner_csv_section_runs_as_written(stack):
    """The second block: the column map stored as the partner's parameter (the `aws` line, done here through boto3
    as it is written), then the CSV ingested through it."""
    put, *commands = blocks()[1]
    words = shlex.split(put)
    assert words[:3] == ["aws", "ssm", "put-parameter"], put
    options, rest = {}, words[3:]
    while rest:
        option = rest.pop(0)
        options[option] = rest.pop(0) if rest and not rest[0].startswith("--") else ""
    assert "--overwrite" in options
    name = options["--name"].replace("$ACCRUAL_STACK", stack.stack)
    value = (ROOT / options["--value"].removeprefix("file://")).read_text()
    stack.client("ssm").put_parameter(Name=name, Value=value, Type=options["--type"], Overwrite=True)
    for command in quick_start()[1:3]:  # the configuration and the clicks
        run(command, stack)
    (ingest,) = commands
    ingested = json.loads(run(ingest, stack).stdout)
    # Moscow times and decimal commas read through the map: every line taken in
    assert (ingested["partner"], ingested["read"], ingested["accepted"], ingested["quarantined"]) == ("awin", 2, 2, 0)
    explained = json.loads(run("accrual explain RU-55002 --json", stack).stdout)
    assert explained["user_id"] == "u-anna" and explained["state"] == "pending"
