"""The operator's mistakes and missing things, each named in one line with the documented exit code: a configuration
that would make orders earn nothing, a mistyped key, an unknown shopper, order or claim, a time range backwards,
missing credentials and an unset endpoint."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import time
from datetime import UTC, datetime

import pytest
from test_cli import CLICKS, CONFIG

from accrual_dev import cli
from support.cli import CLI, operator_cli

ORDERED_AT = "2026-11-03T18:00:00Z"
LINE = {
    "partner": "admitad",
    "line_id": "k-1",
    "order_id": "K-1",
    "sub_id": "click-2",
    "status": "paid",
    "status_at": ORDERED_AT,
    "ordered_at": ORDERED_AT,
    "paid_at": ORDERED_AT,
    "amount": "100.00",
    "currency": "USD",
    "commission": "4.00",
    "shop_id": "s1",
}


def accrual(*args: object) -> tuple[int, str, str]:
    """The command in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


def written(folder, name: str, document: dict) -> str:
    (folder / name).write_text(json.dumps(document))
    return str(folder / name)


@pytest.fixture
def loaded(stack, tmp_path):
    """The stack with test_cli's configuration and clicks, and one pending admitad order of shop s1."""
    operator_cli(stack, tmp_path, CONFIG, CLICKS)
    (tmp_path / "lines.jsonl").write_text(json.dumps(LINE) + "\n")
    code, _, err = accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", "--now", ORDERED_AT)
    assert code == 0, err
    return tmp_path


def test_a_configuration_that_makes_orders_earn_nothing_needs_force_and_a_reason(loaded):
    capped = written(loaded, "capped.json", {**CONFIG, "version": "cli-cap-0", "cap_usd": "0"})
    code, _, err = accrual("config", "load", capped)
    assert code == 2 and "cap_usd: caps every order's cashback at 0 (value: 0)" in err and "--force --reason" in err

    days = (datetime.now(UTC) - datetime.fromisoformat(ORDERED_AT)).days + 2  # the order is among the last days
    code, out, _ = accrual("config", "diff", capped, "--json", "--days", days)
    result = json.loads(out)
    assert code == 0 and [problem["field"] for problem in result["implausible"]] == ["cap_usd"]
    assert (result["orders"]["checked"], result["orders"]["change_cashback"]) == (1, 1)

    excluding = written(loaded, "excluding.json", {**CONFIG, "version": "cli-no-s1", "excluded_shops": ["s1"]})
    code, out, _ = accrual("config", "diff", excluding, "--days", days)
    assert code == 0 and "1 would change state, 1 would change cashback (pending → declined: 1)" in out
    code, out, _ = accrual("config", "diff", excluding, "--days", 0)  # the orders are not looked at
    assert "0 decided again" in out
    assert json.loads(accrual("explain", "K-1", "--json")[1])["state"] == "pending"  # diff wrote nothing

    assert accrual("config", "load", capped, "--force")[0] == 2  # no reason
    code, out, _ = accrual("config", "load", capped, "--force", "--reason", "payouts paused for the audit")
    assert code == 0 and "cli-cap-0 stored" in out and "forced (--force, reason: payouts paused for the audit)" in out


def test_a_mistyped_key_is_refused_with_the_key_it_resembles(loaded):
    document = {key: value for key, value in CONFIG.items() if key != "excluded_shops"}
    code, _, err = accrual("config", "load", written(loaded, "typo.json", {**document, "excluded_shop": ["s1"]}))
    assert code == 2 and "excluded_shop: unknown key; did you mean 'excluded_shops'?" in err
    assert "Value error" not in err and "Extra inputs" not in err


def test_what_does_not_exist_exits_3_and_a_backward_range_is_refused(loaded, capsys):
    code, _, err = accrual("balance", "nobody")
    assert code == 3 and "no shopper 'nobody'" in err
    code, out, _ = accrual("balance", "masha", "--json")  # a shopper with clicks and an order
    assert code == 0 and json.loads(out)["account_currency"] == "RUB"
    assert accrual("explain", "nope")[0] == 3
    assert accrual("review", "nope", "--decline")[0] == 3
    assert accrual("claim", "show", "no-such-claim")[0] == 3
    assert accrual("claim", "resolve", "no-such-claim", "--reject", "--reason", "none")[0] == 3
    code, _, err = accrual("redecide", "nope")
    assert code == 3 and "no order 'nope'" in err

    with pytest.raises(SystemExit) as refused:
        cli.main(["redecide", "--since", "2026-11-05", "--until", "2026-11-01"])
    assert refused.value.code == 2
    assert "is not before --until" in capsys.readouterr().err


def _script(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - started


def _bare_environment(tmp_path) -> dict[str, str]:
    """No AWS variable but the region, no credentials file, no instance metadata."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {
        **env,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def test_an_unset_endpoint_and_missing_credentials_are_named_in_one_line(aws_endpoint, tmp_path):
    with socket.socket() as probe:  # a proxy nobody listens on: AWS itself is out of reach, at once
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = {**_bare_environment(tmp_path), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    result, seconds = _script({**env, "HTTPS_PROXY": closed, "HTTP_PROXY": closed}, "balance", "masha")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and seconds < 10, (result.stderr, seconds)
    assert "AWS_ENDPOINT_URL is not set" in lines[0] and "make local" in lines[0]
    assert "Error:" not in lines[0]

    result, _ = _script({**_bare_environment(tmp_path), "AWS_ENDPOINT_URL": aws_endpoint}, "audit")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "accrual audit: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any "
        "values do for the local stack)"
    ]


def test_a_malformed_setting_is_named_with_its_value(tmp_path):
    env = {**_bare_environment(tmp_path), "AWS_MAX_ATTEMPTS": "many"}
    result, _ = _script(env, "explain", "A-1")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "accrual explain: AWS_MAX_ATTEMPTS: Input should be a valid integer, unable to parse string as an integer "
        '(value: "many")'
    ]
