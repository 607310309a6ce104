"""A month of a mid-size service through `accrual ingest` on the embedded local stack: time and peak memory.

Starts the embedded moto server exactly as `make local` does (`accrual_dev.local.server.MotoServer`, the item-level
transaction rollback of `accrual_dev.local.moto_serial`), provisions the stack, loads the demo configuration and one
click per shopper, writes a CSV of ORDERS single-line orders spread over 30 days (a few shoppers each with many
orders, USD and RUB, some above the cap) and runs `accrual ingest FILE --partner csv --as admitad` as an operator
would, in a subprocess. Prints the wall time, orders per second, the peak RSS of the CLI and of the moto server, and
the items the tables hold. `--stock-transactions` runs moto's own whole-table copy per transaction item to compare
(keep ORDERS small then: it grows quadratically).

    .venv/bin/python bench/embedded_volume.py [--orders 100000] [--stock-transactions]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 10, 1, tzinfo=UTC)
USERS = 2000


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a live process (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_inputs(folder: Path, orders: int, seed: int = 11) -> tuple[Path, Path]:
    rng = random.Random(seed)
    clicks = folder / "clicks.jsonl"
    with clicks.open("w") as handle:
        for user in range(USERS):
            handle.write(
                json.dumps(
                    {
                        "sub_id": f"s-{user}",
                        "user_id": f"u-{user}",
                        "partner": "admitad",
                        "clicked_at": (START - timedelta(days=1)).isoformat(),
                        "account_currency": "RUB" if user % 3 == 0 else "USD",
                        "country": "RU" if user % 3 == 0 else "DE",
                    }
                )
                + "\n"
            )
    report = folder / "month.csv"
    with report.open("w") as handle:
        handle.write("line_id,order_id,sub_id,status,ordered_at,paid_at,amount,currency,commission,category_id\n")
        for number in range(orders):
            at = (START + timedelta(seconds=rng.randrange(30 * 86400))).isoformat()
            currency = "RUB" if number % 5 == 0 else "USD"
            amount = rng.choice((9.99, 25.0, 80.5, 240.0, 1800.0)) * (92 if currency == "RUB" else 1)
            handle.write(
                f"L{number},O{number},s-{rng.randrange(USERS)},paid,{at},{at},{amount:.2f},{currency},"
                f"0,{rng.choice(('100001', '44', '66', '3'))}\n"
            )
    return clicks, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--stock-transactions", action="store_true")
    args = parser.parse_args()

    from accrual_dev.local import server as local_server
    from accrual_dev.local.provision import provision

    if args.stock_transactions:  # the server's own switch, passed through its command line
        original = local_server.MotoServer._launch

        def launch_stock(self, port):
            command = [
                sys.executable,
                "-m",
                "accrual_dev.local.moto_serial",
                "-H",
                self.host,
                "-p",
                str(port),
                "--stock-transactions",
            ]
            environment = {**os.environ, **local_server.LOCAL_ENVIRONMENT}
            environment.pop("AWS_ENDPOINT_URL", None)
            self._log = tempfile.TemporaryFile()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
            self._bound_port = port
            return self._wait_ready()

        local_server.MotoServer._launch = launch_stock  # type: ignore[method-assign]
        del original

    cli = [str(Path(sys.executable).parent / "accrual")]
    with tempfile.TemporaryDirectory() as folder, local_server.MotoServer() as server:
        os.environ.update(
            {
                **local_server.LOCAL_ENVIRONMENT,
                "AWS_ENDPOINT_URL": server.url,
                "ACCRUAL_STACK": "volume",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        provision("volume")
        clicks, report = write_inputs(Path(folder), args.orders)
        for command in (["config", "load", str(ROOT / "events" / "demo-config.json")], ["clicks", "load", str(clicks)]):
            subprocess.run([*cli, *command], check=True, capture_output=True)
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        done = subprocess.run(
            [
                *cli,
                "ingest",
                str(report),
                "--partner",
                "csv",
                "--as",
                "admitad",
                "--now",
                "2026-11-02T00:00:00Z",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        cli_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        moto_peak = peak_rss_mib(server._process.pid)  # noqa: SLF001 - the bench measures the server process
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(done.stdout)
        import boto3

        items = sum(
            boto3.client("dynamodb").describe_table(TableName=f"volume-{name}")["Table"]["ItemCount"]
            for name in ("orders", "balances", "outbox")
        )
    figures = {
        "orders": args.orders,
        "emulator": "moto " + ("stock transactions" if args.stock_transactions else "item-level rollback"),
        "seconds": round(seconds, 1),
        "orders_per_second": round(args.orders / seconds, 1),
        "cli_peak_rss_mib": round(cli_peak / 1024, 1) if before < cli_peak else "(as earlier child)",
        "moto_peak_rss_mib": round(moto_peak, 1),
        "items_in_tables": items,
        "read": result["read"],
        "accepted": result["accepted"],
        "quarantined": result["quarantined"],
        "reconciled": result["reconciled"],
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
