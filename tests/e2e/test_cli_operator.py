"""The operator's day through the CLI: a CSV of a named partner, quarantined partners and currencies, one-line errors
that name the file, line, field and value, progress, and the counts of an interrupted ingest."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from test_cli import CLICKS, CONFIG, aliexpress_order, aliexpress_page

from accrual_dev import cli
from support.cli import operator_cli
from support.services import ingest_drop


@pytest.fixture
def accrual(stack, tmp_path):
    """The console script against this test's stack, with test_cli's configuration and clicks loaded."""
    return operator_cli(stack, tmp_path, CONFIG, CLICKS)


CSV_HEADER = "line_id,order_id,sub_id,status,ordered_at,paid_at,amount,currency,commission\n"


def normalized(**overrides):
    line = {
        "partner": "admitad",
        "line_id": "n-1",
        "order_id": "N-1",
        "sub_id": "click-2",
        "status": "paid",
        "status_at": "2026-11-03T18:00:00Z",
        "ordered_at": "2026-11-03T18:00:00Z",
        "paid_at": "2026-11-03T18:00:00Z",
        "amount": "100.00",
        "currency": "USD",
        "commission": "4.00",
    }
    line.update(overrides)
    return json.dumps(line)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ---- CSV and normalised input with a partner -------------------------------------------------------------------


# in this process, and the deployed way (the work queue and the reconcile handler): both read `--as` the same way
PATHS = pytest.mark.parametrize("path", [(), ("--workers", "2")], ids=["in-process", "workers"])


@PATHS
def test_a_csv_named_as_a_partner_is_credited_to_that_partner(accrual, tmp_path, path):
    (tmp_path / "admitad.csv").write_text(
        CSV_HEADER + "c-1,C-100,click-2,paid,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,100.00,USD,4.00\n"
    )
    result = json.loads(
        accrual("ingest", tmp_path / "admitad.csv", "--partner", "csv", "--as", "admitad", *path).stdout
    )
    assert (result["partner"], result["read"], result["accepted"], result["quarantined"]) == ("admitad", 1, 1, 0)
    explained = json.loads(accrual("explain", "C-100", "--json").stdout)
    assert explained["partner"] == "admitad" and explained["state"] == "pending"
    # the admitad rate card's default 4% of 100.00 USD
    assert explained["cashback_usd"] == "4.00"


def test_workers_spread_a_file_over_poller_processes_and_credit_every_line_once(accrual, tmp_path):
    rows = [
        f"w-{n},W-{n},click-2,paid,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,{10 + n}.00,USD,0\n" for n in range(120)
    ]
    (tmp_path / "many.csv").write_text(CSV_HEADER + "".join(rows))
    two = {"ACCRUAL_POLLER_PROCESSES": "2"}
    arguments = ("ingest", tmp_path / "many.csv", "--partner", "csv", "--as", "admitad", "--workers", "4")
    first = json.loads(accrual(*arguments, environment=two).stdout)
    assert first["units"] >= 2 and first["fanout"]["units_done"] == first["units"]
    assert (first["fanout"]["processes"], first["fanout"]["threads_per_process"]) == (2, 2)
    assert first["reconciled"]["lines_applied"] == first["reconciled"]["orders_changed"] == 120
    again = json.loads(accrual(*arguments, environment=two).stdout)
    assert again["reconciled"]["lines_unchanged"] == 120 and again["reconciled"].get("lines_applied", 0) == 0
    explained = json.loads(accrual("explain", "W-7", "--json").stdout)
    assert explained["cashback_usd"] == "0.68"  # 4% of 17.00 USD, credited once
    assert json.loads(accrual("audit", "--json").stdout)["ok"] is True


def test_workers_keep_each_order_in_one_unit_and_announce_it_once(accrual, stack, tmp_path):
    from support.subscriber import received

    # Given 60 orders of 1 to 3 lines (120 lines) split into units of about 30 lines: many orders straddle a boundary
    rows = [
        f"s-{n}-{k},S-{n},click-2,paid,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,{10 + k}.00,USD,0\n"
        for n in range(60)
        for k in range(1 + n % 3)
    ]
    (tmp_path / "orders.csv").write_text(CSV_HEADER + "".join(rows))
    two = {"ACCRUAL_POLLER_PROCESSES": "2"}
    arguments = ("ingest", tmp_path / "orders.csv", "--partner", "csv", "--as", "admitad", "--workers", "4")
    result = json.loads(accrual(*arguments, environment=two).stdout)
    # Then every order was decided once, by one unit, and announced once, as when the file is ingested whole
    assert result["units"] >= 3 and result["read"] == len(rows) == 120
    assert result["reconciled"]["orders_changed"] == 60 and result["reconciled"].get("moves_adjust", 0) == 0
    announced = Counter(body.get("order_id") for body, _ in received(stack))
    assert len(announced) == 60 and set(announced.values()) == {1}


def test_threads_reconcile_a_streamed_file_concurrently_and_credit_every_line_once(accrual, tmp_path):
    rows = [
        f"t-{n},T-{n},click-2,paid,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,{10 + n}.00,USD,0\n" for n in range(120)
    ]
    (tmp_path / "many.csv").write_text(CSV_HEADER + "".join(rows))
    arguments = ("ingest", tmp_path / "many.csv", "--partner", "csv", "--as", "admitad", "--threads", "4")
    first = json.loads(accrual(*arguments).stdout)
    assert first["reconciled"]["lines_applied"] == first["reconciled"]["orders_changed"] == 120
    assert first["reconciled"].get("orders_failed", 0) == 0
    again = json.loads(accrual(*arguments).stdout)
    assert again["reconciled"]["lines_unchanged"] == 120 and again["reconciled"].get("lines_applied", 0) == 0
    assert json.loads(accrual("explain", "T-7", "--json").stdout)["cashback_usd"] == "0.68"  # 4% of 17.00 USD
    assert json.loads(accrual("audit", "--json").stdout)["ok"] is True


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (("--threads", "0"), "threads must be 1..256"),
        (("--threads", "many"), "invalid literal"),
        (("--threads", "4", "--workers", "2"), "--threads is for the command in this process"),
    ],
)
def test_threads_out_of_range_or_beside_workers_are_refused(tmp_path, capsys, arguments, says):
    (tmp_path / "r.jsonl").write_text(normalized() + "\n")
    with pytest.raises(SystemExit) as refused:
        cli.main(["ingest", str(tmp_path / "r.jsonl"), "--partner", "normalized", *arguments])
    assert refused.value.code == 2
    assert says in capsys.readouterr().err


@PATHS
def test_a_csv_without_a_named_partner_or_with_an_unknown_one_is_refused_in_one_line(accrual, tmp_path, path):
    (tmp_path / "r.csv").write_text(CSV_HEADER + "c-1,C-1,click-2,paid,2026-11-03T18:00:00Z,,1.00,USD,0\n")
    assert "--as NAME" in one_line(accrual("ingest", tmp_path / "r.csv", "--partner", "csv", *path, expect=2).stderr)
    refused = one_line(
        accrual("ingest", tmp_path / "r.csv", "--partner", "csv", "--as", "AliExpress", *path, expect=2).stderr
    )
    assert "'AliExpress'" in refused and "did you mean 'aliexpress'" in refused
    assert "'ebay'" in one_line(
        accrual("ingest", tmp_path / "r.csv", "--partner", "csv", "--as", "ebay", *path, expect=2).stderr
    )


def test_normalised_lines_of_unknown_partners_and_currencies_are_quarantined_with_their_reason(accrual, tmp_path):
    (tmp_path / "lines.jsonl").write_text(
        "\n".join(
            [
                normalized(),
                normalized(partner="ebay", line_id="n-2", order_id="N-2"),
                normalized(currency="XYZ", line_id="n-3", order_id="N-3"),
            ]
        )
        + "\n"
    )
    # two of three lines quarantined: mostly unread, so the command exits 1 (the lines read are reconciled all the same)
    ingested = accrual("ingest", tmp_path / "lines.jsonl", "--partner", "normalized", expect=1)
    result = json.loads(ingested.stdout)
    assert (result["read"], result["accepted"], result["quarantined"]) == (3, 1, 2)
    assert "2 of 3 lines quarantined, more than 50%" in ingested.stderr
    reasons = result["quarantine_reasons"]
    assert reasons[0].startswith("2: partner='ebay'") and "not a partner" in reasons[0]
    assert reasons[1].startswith("3: currency='XYZ'")
    assert result["reconciled"]["lines_received"] == 1
    accrual("explain", "N-2", expect=3)


def test_a_csv_in_its_own_formats_reads_through_its_map_and_a_mostly_unread_one_exits_1(stack, accrual, tmp_path):
    (tmp_path / "moscow.csv").write_text(
        "Номер;Заказ;Клик;Статус;Дата;Сумма\n"
        "m-1;M-1;click-2;Оплачен;28.11.2026 12:00;1 234,50\n"
        "m-2;M-2;click-2;Оплачен;28.11.2026 13:00;100,00\n",
        encoding="cp1251",
    )
    arguments = ("ingest", tmp_path / "moscow.csv", "--partner", "csv", "--as", "admitad")
    # Without its map the file is not described: refused whole, naming the map's parameter and how to set it
    refused = one_line(accrual(*arguments, expect=2).stderr)
    parameter = f"{stack.partner_parameters_prefix}admitad/columns"
    assert "lacks required columns" in refused and parameter in refused and "aws ssm put-parameter" in refused
    # With a map of its columns only, every time and amount is quarantined: exit 1 with the top reasons
    columns = {"line_id": "Номер", "order_id": "Заказ", "sub_id": "Клик", "status": "Статус"}
    columns |= {"ordered_at": "Дата", "amount": "Сумма"}
    document = {"columns": columns, "statuses": {"Оплачен": "paid"}, "delimiter": ";", "encoding": "cp1251"}
    ssm = stack.client("ssm")
    ssm.put_parameter(Name=parameter, Type="String", Overwrite=True, Value=json.dumps(document))
    unread = accrual(*arguments, expect=1)
    assert json.loads(unread.stdout)["quarantined"] == 2
    assert (
        "2 of 2 lines quarantined" in unread.stderr and "2 lines: Сумма=…: not an amount written with" in unread.stderr
    )
    assert parameter in unread.stderr
    # With its date format, time zone and number format the file reads
    document |= {"date_format": "%d.%m.%Y %H:%M", "timezone": "Europe/Moscow"}
    document |= {"decimal_separator": ",", "thousands_separator": " "}
    ssm.put_parameter(Name=parameter, Type="String", Overwrite=True, Value=json.dumps(document))
    result = json.loads(accrual(*arguments).stdout)
    assert (result["read"], result["accepted"], result["quarantined"]) == (2, 2, 0)
    explained = json.loads(accrual("explain", "M-1", "--json").stdout)
    assert explained["lines"][0]["amount"] == "1234.50"
    assert explained["lines"][0]["status_at"].startswith("2026-11-28T09:00:00")


def test_a_drop_under_an_unknown_partner_folder_is_quarantined_by_the_ledger(stack, accrual):
    body = CSV_HEADER + "d-1,D-1,click-2,paid,2026-11-03T18:00:00Z,,10.00,USD,0.40\n"
    key = "drops/ebay/2026-11-03.csv"
    stack.client("s3").put_object(Bucket=stack.reports_bucket, Key=key, Body=body.encode())
    from datetime import datetime

    result = ingest_drop(stack.reports_bucket, key, settings=stack, now=datetime(2026, 11, 4, tzinfo=UTC))
    assert (result["partner"], result["accepted"], result["quarantined"]) == ("ebay", 0, 1)
    assert "partner='ebay'" in result["quarantine_reasons"][0]


# ---- errors in one line ------------------------------------------------------------------------------------------


def test_an_aliexpress_amount_is_quoted_as_written(accrual, tmp_path):
    page = json.dumps(aliexpress_page(aliexpress_order(8000123456791))).replace(
        '"paid_amount": 12000', '"paid_amount": 1e400'
    )
    (tmp_path / "page.json").write_text(page)
    result = json.loads(accrual("ingest", tmp_path / "page.json", "--partner", "aliexpress", expect=1).stdout)
    assert result["quarantine_reasons"] == ["1: paid_amount=1e400: not a plausible amount in minor units"]


@pytest.mark.parametrize(
    "command",
    [
        ("config", "load"),
        ("config", "diff"),
        ("clicks", "load"),
        ("ingest", "--partner", "aliexpress"),
        ("ingest", "--partner", "csv", "--as", "admitad"),
        ("ingest", "--partner", "normalized"),
    ],
)
def test_a_binary_file_is_named(tmp_path, capsys, command):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(range(256)))
    words, options = (command[:1], list(command[1:])) if command[0] == "ingest" else (command, [])
    assert cli.main([*words, str(tmp_path / "photo.jpg"), *options]) == 2
    error = one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'photo.jpg'}: " in error and ("not UTF-8" in error or "binary file" in error)


def test_a_missing_file_is_named(tmp_path, capsys):
    assert cli.main(["clicks", "load", str(tmp_path / "nowhere.jsonl")]) == 2
    assert one_line(capsys.readouterr().err) == f"accrual clicks load: {tmp_path / 'nowhere.jsonl'}: no such file"


def test_a_configuration_error_shows_the_value_not_an_ellipsis(accrual, tmp_path):
    bad = {
        **CONFIG,
        "version": "cli-bad",
        "rate_cards": [{**CONFIG["rate_cards"][0], "unexpected": {"a": 1}}],
        "fx_rates": {"2026-10-01": "abc"},
        "hold_days": {"aliexpress": -1},
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    stderr = accrual("config", "load", tmp_path / "bad.json", expect=2).stderr
    assert "{…}" not in stderr
    assert "fx_rates.2026-10-01" in stderr and '"abc"' in stderr
    assert "hold_days.aliexpress" in stderr and "(value: -1)" in stderr


def test_review_of_an_unknown_order_says_so(accrual):
    assert "no order 'nope'" in one_line(accrual("review", "nope", "--release", expect=3).stderr)


def test_now_that_is_not_a_time_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["confirm", "--now", "yesterday"])
    assert raised.value.code == 2
    error = one_line(capsys.readouterr().err)
    assert "'yesterday' is not an ISO-8601 time" in error and error.startswith("accrual confirm: argument --now")


def test_an_unreachable_endpoint_is_one_line_within_seconds(monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert cli.main(["balance", "masha"]) == 2
    assert time.monotonic() - started < 5
    error = one_line(capsys.readouterr().err)
    assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{port} does not answer" in error and "make local" in error


def test_a_stale_endpoint_without_the_stack_is_one_line(moto_endpoint, monkeypatch, capsys):
    monkeypatch.setenv("ACCRUAL_STACK", "never-provisioned")
    assert cli.main(["audit"]) == 2
    assert "stack 'never-provisioned' is not provisioned" in one_line(capsys.readouterr().err)


def test_every_command_describes_its_arguments_and_the_environment():
    parser = cli.build_parser()
    seen = []

    def walk(current, words):
        actions = [action for action in current._actions if action.choices and hasattr(action, "_name_parser_map")]
        if not actions:
            seen.append(words)
            text = current.format_help()
            assert "AWS_ENDPOINT_URL" in text and "ACCRUAL_STACK" in text, words
            assert current.description, words
            for action in current._actions:
                assert action.help, (words, action.dest)
            return
        for name, sub in actions[0]._name_parser_map.items():
            walk(sub, [*words, name])

    walk(parser, [])
    assert ["ingest"] in seen and ["config", "diff"] in seen and len(seen) >= 12
    assert "--as" in parser._subparsers._group_actions[0].choices["ingest"].format_help()


# ---- progress and interruption -----------------------------------------------------------------------------------


def _many_orders(path, count):
    rows = [
        f"p-{n},P-{n},click-2,paid,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,{n % 90 + 10}.00,USD,0.40"
        for n in range(count)
    ]
    path.write_text(CSV_HEADER + "\n".join(rows) + "\n")


def test_progress_goes_to_stderr(accrual, tmp_path):
    _many_orders(tmp_path / "many.csv", 30)
    result = accrual("ingest", tmp_path / "many.csv", "--partner", "csv", "--as", "admitad", "--progress")
    size = (tmp_path / "many.csv").stat().st_size
    assert f"{size / 1000:.2f}k/{size / 1000:.2f}k" in result.stderr and "orders=30" in result.stderr
    assert json.loads(result.stdout)["reconciled"]["lines_received"] == 30


def test_the_ingest_bar_counts_the_file_against_its_whole_size(stack, accrual, tmp_path):
    from accrual.composition import composition
    from accrual.service.ingest_stream import ingest_file_streamed
    from accrual_dev.progress import ProgressSink

    path = tmp_path / "many.csv"
    _many_orders(path, 12)
    size = path.stat().st_size
    services = composition(stack)
    sink = ProgressSink(
        services.concurrent_ledger(), datetime.now(UTC), enabled=True, label="many.csv", total_bytes=size
    )
    seen = []
    reconcile = sink.ledger.reconcile

    def watched(lines, *, now):
        seen.append((sink._bar.n, sink._bar.total))
        return reconcile(lines, now=now)

    sink.ledger.reconcile = watched
    ingest_file_streamed(
        path, "csv", partner="admitad", ingest=services.ingest, sink=sink, now=datetime.now(UTC), part_lines=3
    )
    final = sink._bar.n
    sink.close()
    # the total is the file's size from the first part on; the bytes read grow part by part to the whole file
    assert [total for _, total in seen] == [size] * len(seen) and len(seen) >= 4
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and seen[0][0] < size / 2
    assert final == size


def test_an_interrupted_ingest_prints_its_counts(accrual, tmp_path, monkeypatch, capsys):
    from accrual.service.ledger import Ledger
    from accrual_dev import progress

    _many_orders(tmp_path / "many.csv", 5)
    monkeypatch.setattr(progress, "ORDERS_PER_SLICE", 2)
    reconcile, calls = Ledger.reconcile, []

    def interrupted_on_the_second_slice(self, lines, *, now):
        calls.append(len(lines))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return reconcile(self, lines, now=now)

    monkeypatch.setattr(Ledger, "reconcile", interrupted_on_the_second_slice)
    assert cli.main(["ingest", str(tmp_path / "many.csv"), "--partner", "csv", "--as", "admitad"]) == 130
    out, err = capsys.readouterr()
    counts = json.loads(out)
    assert counts["interrupted"] is True and counts["orders_reconciled"] == 2 and counts["lines_reconciled"] == 2
    assert "interrupted; 2 lines of 2 orders reconciled" in err


def test_an_interrupted_confirm_prints_its_counts_and_confirming_again_finishes(accrual, tmp_path, monkeypatch, capsys):
    import signal

    from accrual.service.ledger import Ledger
    from accrual_dev.commands import confirm

    rows = [
        f"u-{n},U-{n},click-2,awaiting_payment,2026-11-03T18:00:00Z,,{n + 10}.00,USD,0.40" for n in range(5)
    ]  # never paid: each is due for expiry three days after it was ordered
    (tmp_path / "unpaid.csv").write_text(CSV_HEADER + "\n".join(rows) + "\n")
    accrual("ingest", tmp_path / "unpaid.csv", "--partner", "csv", "--as", "admitad", "--now", "2026-11-03T19:00:00Z")
    monkeypatch.setattr(confirm, "CONFIRM_STEP", 2)
    confirm_orders, steps = Ledger.confirm_orders, []

    def ctrl_c_during_the_second_step(self, keys, *, now):
        steps.append(list(keys))
        if len(steps) == 2:
            signal.raise_signal(signal.SIGINT)  # the operator's Ctrl-C: the step being confirmed finishes
        return confirm_orders(self, keys, now=now)

    monkeypatch.setattr(Ledger, "confirm_orders", ctrl_c_during_the_second_step)
    assert cli.main(["confirm", "--now", "2026-11-10T00:00:00Z", "--progress"]) == 130
    out, err = capsys.readouterr()
    counts = json.loads(out)
    assert counts["interrupted"] is True and counts["orders_due"] == 4 and len(steps) == 2
    assert "confirm" in err and "/5" in err  # the bar's total: the due orders counted first
    assert "interrupted" in err.splitlines()[-1]

    # what was confirmed is no longer due: the same command again finishes the rest
    assert cli.main(["confirm", "--now", "2026-11-10T00:00:00Z"]) == 0
    assert json.loads(capsys.readouterr().out)["orders_due"] == 1


def test_audit_shows_its_progress_on_request_and_not_with_json(accrual):
    shown = accrual("audit", "--progress")
    assert "audit" in shown.stderr and "item" in shown.stderr
    assert "audit" not in accrual("audit", "--json", "--progress").stderr


# ---- quarantine and notifications --------------------------------------------------------------------------------


def test_quarantined_lines_are_listed_and_replayed_once_after_a_map_fix(accrual, stack, tmp_path):
    (tmp_path / "admitad.csv").write_text(
        CSV_HEADER
        + "q-1,Q-1,click-2,Approved,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,100.00,USD,4.00\n"
        + "q-2,Q-2,click-2,paid,2026-11-03T18:00:00Z,2026-11-03T18:00:00Z,50.00,USD,2.00\n"
    )
    ingested = json.loads(accrual("ingest", tmp_path / "admitad.csv", "--partner", "csv", "--as", "admitad").stdout)
    assert (ingested["accepted"], ingested["quarantined"]) == (1, 1)
    (waiting,) = json.loads(accrual("quarantine", "list", "--json").stdout)
    assert waiting["partner"] == "admitad" and waiting["position"] == 1 and "Approved" in waiting["reason"]
    assert "Approved" in accrual("quarantine", "list", "--partner", "admitad").stdout
    assert json.loads(accrual("quarantine", "list", "--json", "--since", "2100-01-01").stdout) == []
    accrual("quarantine", "replay", expect=2)  # neither ids nor a partner: one line saying what to give

    stack.client("ssm").put_parameter(
        Name=f"/{stack.stack}/partners/admitad/columns",
        Value=json.dumps({"statuses": {"Approved": "settled"}}),
        Type="String",
        Overwrite=True,
    )
    dry = json.loads(accrual("quarantine", "replay", "--partner", "admitad", "--dry-run").stdout)
    assert (dry["selected"], dry["accepted"], dry["reconciled"]) == (1, 1, {})
    assert len(json.loads(accrual("quarantine", "list", "--json").stdout)) == 1
    accrual("notifications", "tail")  # the ingest's own notification, out of the way

    done = json.loads(accrual("quarantine", "replay", waiting["id"]).stdout)
    assert (done["selected"], done["accepted"], done["still_quarantined"]) == (1, 1, 0)
    assert done["notified"] == {"published": 1}
    assert json.loads(accrual("explain", "Q-1", "--json").stdout)["state"] == "pending"
    assert json.loads(accrual("quarantine", "list", "--json").stdout) == []
    replayed = json.loads(accrual("quarantine", "list", "--json", "--all").stdout)
    assert [line["id"] for line in replayed] == [waiting["id"]] and replayed[0]["replayed_at"]
    # once: a second replay selects nothing, and nothing more is announced
    again = json.loads(accrual("quarantine", "replay", "--partner", "admitad").stdout)
    assert (again["selected"], again["notified"]) == (0, {"published": 0})
    tail = accrual("notifications", "tail", "--json").stdout.splitlines()
    assert [json.loads(line)["order_id"] for line in tail] == ["Q-1"]


def test_notifications_tail_follows_until_ctrl_c(accrual, stack, tmp_path):
    import os
    import signal
    import subprocess

    from support.cli import CLI

    follow = subprocess.Popen(
        [str(CLI), "notifications", "tail", "--follow", "--user", "masha"],
        env={**os.environ, "ACCRUAL_STACK": stack.stack},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (tmp_path / "one.jsonl").write_text(normalized(order_id="F-1", line_id="f-1") + "\n")
        accrual("ingest", tmp_path / "one.jsonl", "--partner", "normalized")
        line = follow.stdout.readline()  # printed as it arrives
        assert "cashback.pending" in line and "user masha" in line and "admitad#F-1" in line
    finally:
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0


def test_an_interrupted_clicks_load_prints_what_it_stored(accrual, tmp_path, monkeypatch, capsys):
    import signal

    from accrual.adapters import reference_data
    from accrual_dev.commands import clicks

    new = [{**CLICKS[0], "sub_id": f"late-{n}", "user_id": f"late-{n}"} for n in range(3)]
    (tmp_path / "late.jsonl").write_text("".join(json.dumps(click) + "\n" for click in new))
    monkeypatch.setattr(clicks, "CLICKS_STEP", 1)
    store, steps = reference_data.store_clicks, []

    def ctrl_c_during_the_second_step(batch, *, now):
        steps.append(batch)
        if len(steps) == 2:
            signal.raise_signal(signal.SIGINT)
        return store(batch, now=now)

    monkeypatch.setattr(reference_data, "store_clicks", ctrl_c_during_the_second_step)
    assert cli.main(["clicks", "load", str(tmp_path / "late.jsonl")]) == 130
    counts = json.loads(capsys.readouterr().out)
    assert (counts["interrupted"], counts["read"], counts["stored"]) == (True, 3, 2)
    # loading the file again finishes it: the two stored count as unchanged
    assert cli.main(["clicks", "load", str(tmp_path / "late.jsonl")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["stored"], again["unchanged"]) == (1, 2)
