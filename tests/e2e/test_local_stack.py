"""`accrual stack up` (what `make local` runs) as an operator uses it: start it, paste its exports into another shell,
load the configuration and the simulator's clicks, and `accrual run` pulls the partner simulator, not the real APIs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from support.cli import CLI

ROOT = Path(__file__).resolve().parents[2]


def test_stack_up_points_the_partners_at_the_simulator_and_run_works(tmp_path):
    clicks = tmp_path / "clicks.jsonl"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "ACCRUAL_")) and not name.endswith(("_TABLE", "_PREFIX"))
    }
    stack = subprocess.Popen(
        [str(CLI), "stack", "up", "--days", "3", "--orders-per-day", "4", "--clicks", str(clicks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**environment, "ACCRUAL_STACK": "upstack"},
        start_new_session=True,
    )
    try:
        printed = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = stack.stdout.readline()
            assert line, "".join(printed)
            printed.append(line)
            if line.startswith("# Ctrl-C"):
                break
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", "".join(printed), re.MULTILINE))
        assert exports["ACCRUAL_STACK"] == "upstack" and exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        simulator = re.search(r"^# partner simulator at (http://127\.0\.0\.1:\d+)", "".join(printed), re.MULTILINE)
        assert simulator and "/upstack/partners/aliexpress/endpoint" in "".join(printed)
        shell = {**environment, **exports}

        def accrual(*args):
            done = subprocess.run([str(CLI), *map(str, args)], env=shell, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
            return done

        accrual("config", "load", ROOT / "events" / "demo-config.json")
        accrual("clicks", "load", clicks)
        run = accrual("run", "--progress")
        summary = json.loads(run.stdout)
        assert summary["ok"] and summary["pull"]["failed"] == []
        assert set(summary["pull"]["partners"]) == {"aliexpress", "admitad"}
        assert summary["pull"]["accepted"] > 0
        # the pull's progress on stderr: the orders reconciled so far, of the pages read so far
        assert "run: pull partners" in run.stderr and "order" in run.stderr
        assert "all agree" in accrual("audit").stdout
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=60)
