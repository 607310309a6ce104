"""Run every bench and print their tables: rules, moto's time growth, ledger (moto), then the extrapolation. Figures go to
bench/results.json (not committed).

    .venv/bin/python bench/run.py            # or: make bench
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = (["rules.py"], ["moto_growth.py"], ["ledger.py"], ["cost.py"])


def main() -> int:
    started = time.monotonic()
    for step in STEPS:
        answer = subprocess.run([sys.executable, str(HERE / step[0]), *step[1:]], cwd=HERE.parent)
        if answer.returncode:
            print(f"bench/{step[0]} failed ({answer.returncode})", file=sys.stderr)
            return answer.returncode
    print(f"\nall benches: {time.monotonic() - started:.0f} s; figures in {HERE / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
