"""Import time of each Lambda handler in a fresh interpreter (the cold start's share that the code controls), with
the heaviest imports named.

Each handler module (functions/<name>/app.py, with the layer's package on the path as Lambda puts it) is imported
in a new `python -X importtime` process, --repeat times; the figure is the median wall time of the import, and the
heaviest packages are read from the import-time log of the median run (the self time of every module, added up
by its top-level package). The Lambda environment variables the handlers read at import are set to
harmless local values; nothing calls AWS.

    .venv/bin/python bench/coldstart.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from collections import Counter

from _common import ROOT, save_results, table

FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_SERVICE_NAME": "accrual",
    "POWERTOOLS_METRICS_NAMESPACE": "Accrual",
    "ACCRUAL_STACK": "coldstart",
    # as in Lambda: the handlers trace there (outside Lambda they skip the X-Ray recorder and its import)
    "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
    "LAMBDA_TASK_ROOT": str(ROOT),
}
PROBE = (
    "import time, importlib.util, sys; started = time.perf_counter(); "
    "spec = importlib.util.spec_from_file_location('app', sys.argv[1]); module = importlib.util.module_from_spec(spec); "
    "spec.loader.exec_module(module); print('IMPORT_SECONDS', time.perf_counter() - started)"
)
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def measure(function: str) -> tuple[float, Counter]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ACCRUAL_"))}
    environment.update(ENVIRONMENT)
    environment["PYTHONPATH"] = str(ROOT / "layers" / "accrual")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, str(ROOT / "functions" / function / "app.py")],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT / "functions" / function,
        timeout=120,
    )
    if done.returncode:
        raise SystemExit(f"importing functions/{function}/app.py failed:\n{done.stderr[-3000:]}")
    seconds = float(done.stdout.split("IMPORT_SECONDS")[1])
    packages: Counter = Counter()
    for line in done.stderr.splitlines():
        match = LINE.match(line)
        if match:  # each module's own time, added up by the distribution's top-level package
            packages[match.group(4).split(".")[0]] += int(match.group(1))
    return seconds, packages


def run(repeat: int) -> dict:
    out = {}
    for function in FUNCTIONS:
        runs = sorted((measure(function) for _ in range(repeat)), key=lambda item: item[0])
        seconds, packages = runs[len(runs) // 2]
        out[function] = {
            "import_ms_median": round(seconds * 1000),
            "import_ms_min": round(runs[0][0] * 1000),
            "import_ms_max": round(runs[-1][0] * 1000),
            "heaviest_imports_ms": {name: round(us / 1000) for name, us in packages.most_common(6)},
        }
    return {
        "repeat": repeat,
        "python": sys.version.split()[0],
        "functions": out,
        "median_of_medians_ms": round(statistics.median(item["import_ms_median"] for item in out.values())),
    }


def report(result: dict) -> str:
    rows = [
        [
            name,
            figures["import_ms_median"],
            f"{figures['import_ms_min']}–{figures['import_ms_max']}",
            ", ".join(f"{package} {ms}" for package, ms in figures["heaviest_imports_ms"].items()),
        ]
        for name, figures in result["functions"].items()
    ]
    return table(
        rows,
        ["handler", "import ms (median)", "range", "heaviest imports (ms, self time by package)"],
        title=f"\n== Cold start: handler import in a fresh interpreter ({result['repeat']} runs each) ==",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    result = run(args.repeat)
    save_results("coldstart", result)
    print(report(result))


if __name__ == "__main__":
    main()
