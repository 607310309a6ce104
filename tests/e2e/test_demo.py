"""`make run` as a fresh machine runs it: the demo module in its own process starts and stops its own moto server and
partner simulator, and prints a summary whose checks all hold."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_make_run_demo_exits_0_with_a_clean_audit() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "accrual_dev.local.demo"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=480,
    )
    output = done.stdout

    assert done.returncode == 0, f"{output[-3000:]}\n{done.stderr[-3000:]}"
    assert output.rstrip().endswith("demo OK")
    # Both cycles pulled both partners and every line read was either accepted or quarantined.
    pulled = re.findall(
        r"^  (aliexpress|admitad) .* lines read +(\d+) = accepted +(\d+) \+ quarantined +(\d+)  ok$",
        output,
        re.MULTILINE,
    )
    assert sorted(partner for partner, *_ in pulled) == ["admitad", "admitad", "aliexpress", "aliexpress"]
    assert all(int(read) == int(accepted) + int(quarantined) > 0 for _, read, accepted, quarantined in pulled)
    assert re.search(r"cashback\.confirmed \d+", output)
    assert "post " in output and "pending " in output
    assert re.search(r"^  \d+ orders, \d+ balances, \d+ journal entries: all agree$", output, re.MULTILINE)
    # One order explained in plain words, in English and in Russian.
    assert "--lang en" in output and "In short:" in output
    assert "--lang ru" in output and "Кратко:" in output
