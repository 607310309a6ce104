"""`accrual stack up` with ACCRUAL_EMULATOR=dynamodb-local (what `make local` runs): the ledger's tables live in
DynamoDB Local, every other service on moto, and an operator's ingest, confirm, balance and audit work on it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from accrual_dev.local import dynamodb_local
from support.cli import CLI

ROOT = Path(__file__).resolve().parents[2]
HEADER = "line_id,order_id,sub_id,status,ordered_at,paid_at,amount,currency,commission,category_id\n"

# started by the DynamoDB Local run of the conformance suites (ACCRUAL_EMULATOR=dynamodb-local), which installs it
pytestmark = pytest.mark.skipif(
    os.environ.get("ACCRUAL_EMULATOR") != "dynamodb-local" or not dynamodb_local.available(),
    reason="the DynamoDB Local suite only (ACCRUAL_EMULATOR=dynamodb-local, make dynamodb-local)",
)


def test_stack_up_on_dynamodb_local_serves_the_operators_commands(tmp_path: Path) -> None:
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text(
        "".join(
            json.dumps(
                {
                    "sub_id": f"s-{number}",
                    "user_id": "u-1",
                    "partner": "admitad",
                    "clicked_at": "2026-10-20T10:00:00+00:00",
                    "account_currency": "USD",
                    "country": "DE",
                }
            )
            + "\n"
            for number in range(3)
        )
    )
    rows = [
        f"L{n},O{n},s-{n},{{status}},2026-10-20T10:05:00+00:00,2026-10-20T10:05:00+00:00,80.50,USD,0,44\n"
        for n in range(3)
    ]
    report, settlement = tmp_path / "day.csv", tmp_path / "settlement.csv"
    report.write_text(HEADER + "".join(row.format(status="paid") for row in rows))
    settlement.write_text(HEADER + "".join(row.format(status="settled") for row in rows))
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "ACCRUAL_")) and not name.endswith(("_TABLE", "_PREFIX"))
    }
    stack = subprocess.Popen(
        [str(CLI), "stack", "up", "--days", "1", "--orders-per-day", "1", "--clicks", str(tmp_path / "sim.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**environment, "ACCRUAL_STACK": "ddblocal", "ACCRUAL_EMULATOR": "dynamodb-local"},
        start_new_session=True,
    )
    try:
        printed: list[str] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = stack.stdout.readline()
            assert line, "".join(printed)
            printed.append(line)
            if line.startswith("# Ctrl-C"):
                break
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", "".join(printed), re.MULTILINE))
        assert exports["AWS_ENDPOINT_URL_DYNAMODB"] != exports["AWS_ENDPOINT_URL"]
        assert "(dynamodb-local)" in "".join(printed)
        shell = {**environment, **exports}

        def accrual(*args: object) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([str(CLI), *map(str, args)], env=shell, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
            return done

        accrual("config", "load", ROOT / "events" / "demo-config.json")
        accrual("clicks", "load", clicks)
        first = json.loads(accrual("ingest", report, "--partner", "csv", "--as", "admitad").stdout)
        assert first["accepted"] == 3
        accrual("ingest", settlement, "--partner", "csv", "--as", "admitad", "--now", "2026-10-21T00:00:00Z")
        accrual("confirm", "--now", "2026-11-01T00:00:00Z")
        balance = json.loads(accrual("balance", "u-1", "--json").stdout)
        assert "all agree" in accrual("audit").stdout

        # the ledger is in DynamoDB Local only: moto's copies of the tables (its CloudFormation made them) stay empty
        credentials = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        local = boto3.client("dynamodb", endpoint_url=exports["AWS_ENDPOINT_URL_DYNAMODB"], **credentials)
        moto = boto3.client("dynamodb", endpoint_url=exports["AWS_ENDPOINT_URL"], **credentials)
        assert local.scan(TableName="ddblocal-balances")["Count"] == 1
        assert moto.scan(TableName="ddblocal-balances")["Count"] == 0
        # three settled orders of 80.50 USD in category 44 (1.5 %), confirmed after the hold: nothing left pending
        assert Decimal(str(balance["pending"])) == 0 and Decimal(str(balance["confirmed"])) > 0
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=60)
