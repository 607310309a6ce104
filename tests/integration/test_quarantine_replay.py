"""Quarantined lines replayed after a fix (a CSV column map, the configuration), through the normal ingest path:
counted, each accepted line leaving the list, and a second replay changing nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from accrual.adapters.ledger_tables import OrderRecord
from accrual.composition import composition
from accrual.service.quarantine import QuarantineReplay, quarantine_id
from accrual.service.quarantine import waiting as waiting_in
from accrual.settings import Settings
from support.ledger import T0, load_reference_data, snapshot
from support.services import ingest_file_streamed

HEADER = "line_id,order_id,sub_id,status,ordered_at,paid_at,amount,currency,commission,category_id\n"
WHEN = T0.isoformat()


def row(order: str, status: str = "paid", currency: str = "USD") -> str:
    return f"{order}-1,{order},c-alice,{status},{WHEN},{WHEN},100.00,{currency},1.00,tools\n"


def fresh(stack: Settings, now) -> QuarantineReplay:
    """A replay as a new command makes it (the partner parameters' cache starts empty)."""
    services = composition(Settings.from_env())
    return QuarantineReplay(services.ingest, services.sink(now), now)


def waiting(stack: Settings, **selection):
    return waiting_in(composition(stack).partner_state, **selection)


def orders() -> set[str]:
    return {record.pk for record in OrderRecord.scan(OrderRecord.sk == "ORDER")}


def test_replay_after_a_map_and_a_configuration_fix(stack, tmp_path):
    load_reference_data(stack)
    report = tmp_path / "aliexpress.csv"
    # Q-1's status word is not one the reader knows; Q-3 is in a currency the configuration has no rate for
    report.write_text(HEADER + row("Q-1", status="Approved") + row("Q-2") + row("Q-3", currency="GBP"))
    now = T0 + timedelta(minutes=5)
    ingested = ingest_file_streamed(report, "csv", partner="aliexpress", settings=stack, now=now)
    assert (ingested["accepted"], ingested["quarantined"]) == (1, 2)
    assert orders() == {"aliexpress#Q-2"}
    listed = waiting(stack, partner="aliexpress")
    assert [record.position for record in listed] == [1, 3]
    assert waiting(stack, since=now + timedelta(seconds=1)) == []

    # nothing fixed yet: a dry run says both would stay, and writes nothing
    dry = fresh(stack, now).replay(listed, dry_run=True)
    assert (dry["selected"], dry["accepted"], dry["still_quarantined"]) == (2, 0, 2)

    # the partner's map now reads its status word; the dry run sees it, and still writes nothing
    columns = {"statuses": {"Approved": "paid"}}
    stack.client("ssm").put_parameter(
        Name=f"/{stack.stack}/partners/aliexpress/columns", Value=json.dumps(columns), Type="String", Overwrite=True
    )
    before = snapshot()
    dry = fresh(stack, now).replay(waiting(stack), dry_run=True)
    assert (dry["accepted"], dry["still_quarantined"]) == (1, 1)
    assert "GBP" in next(line["reason_now"] for line in dry["lines"] if line["outcome"] == "still_quarantined")
    assert snapshot() == before and len(waiting(stack)) == 2

    # replay the map's line by its id: credited, and it leaves the list
    (approved,) = [record for record in waiting(stack) if record.position == 1]
    done = fresh(stack, now).replay(waiting(stack, ids=[quarantine_id(approved)]))
    assert (done["selected"], done["accepted"], done["still_quarantined"]) == (1, 1, 0)
    assert done["reconciled"]["orders_changed"] == 1
    assert orders() == {"aliexpress#Q-2", "aliexpress#Q-1"}
    assert [record.position for record in waiting(stack)] == [3]

    # the configuration gains the rate: the last line goes through too; the replayed ones are kept, marked
    load_reference_data(stack, version="ledger-2", fx_rates={"2026-01-01": {"EUR": "0.90", "GBP": "0.80"}})
    done = fresh(stack, now).replay(waiting(stack))
    assert (done["selected"], done["accepted"]) == (1, 1)
    assert orders() == {"aliexpress#Q-1", "aliexpress#Q-2", "aliexpress#Q-3"}
    assert waiting(stack) == []
    assert all(record.replayed_at is not None for record in waiting(stack, replayed=True))

    # a second replay finds nothing to do and changes nothing
    after = snapshot()
    again = fresh(stack, now).replay(waiting(stack, partner="aliexpress"))
    assert (again["selected"], again["accepted"], again["reconciled"]) == (0, 0, {})
    assert snapshot() == after
    with pytest.raises(LookupError, match=quarantine_id(approved)):
        waiting(stack, ids=[quarantine_id(approved)])


def test_replay_of_a_file_in_its_own_encoding_and_number_format_after_its_map_is_fixed(stack, tmp_path):
    load_reference_data(stack)
    report = tmp_path / "aliexpress.csv"
    header = HEADER.replace("amount", "Сумма").replace(",", ";")
    body = f"R-1-1;R-1;c-alice;paid;{WHEN};{WHEN};1 234,50;USD;1,00;tools\n"
    report.write_bytes((header + body).encode("cp1251"))
    parameter = f"/{stack.stack}/partners/aliexpress/columns"
    document = {"delimiter": ";", "encoding": "cp1251", "columns": {"amount": "Сумма"}}
    ssm = stack.client("ssm")
    ssm.put_parameter(Name=parameter, Value=json.dumps(document), Type="String", Overwrite=True)
    now = T0 + timedelta(minutes=5)
    ingested = ingest_file_streamed(report, "csv", partner="aliexpress", settings=Settings.from_env(), now=now)
    assert (ingested["accepted"], ingested["quarantined"]) == (0, 1)
    assert ingested["top_reasons"][0]["reason"].startswith("Сумма=…: not an amount written with")
    # the map learns the file's number format: the line replays through it, header read in the file's encoding
    document |= {"decimal_separator": ",", "thousands_separator": " "}
    ssm.put_parameter(Name=parameter, Value=json.dumps(document), Type="String", Overwrite=True)
    done = fresh(stack, now).replay(waiting(stack, partner="aliexpress"))
    assert (done["selected"], done["accepted"]) == (1, 1)
    assert orders() == {"aliexpress#R-1"}


def test_a_replayed_admitad_position_keeps_its_own_line_id(stack):
    from accrual.adapters.ledger_store import DynamoLedgerStore
    from accrual.adapters.report_archive import S3ReportArchive
    from support.services import ingest_report

    load_reference_data(stack)
    action = {
        "action_id": 555001,
        "order_id": "AD-1",
        "status": "pending",
        "currency": "USD",
        "subid": "c-alice",
        "action_date": T0.strftime("%Y-%m-%d %H:%M:%S"),
        # two positions without ids: lines 555001#1 and 555001#2; the second's amount needs a thousands separator
        "positions": [{"amount": "100.00", "payment": "1"}, {"amount": "1,234.00", "payment": "1"}],
    }
    page = json.dumps({"results": [action], "_meta": {"count": 1}}).encode()
    source = S3ReportArchive(stack).put_object("raw/admitad/test/p.json", page)
    now = T0 + timedelta(minutes=5)
    first = ingest_report(page, "admitad", partner="admitad", source=source, settings=stack, now=now)
    assert (first["accepted"], first["quarantined"]) == (1, 1)
    stack.client("ssm").put_parameter(
        Name=f"/{stack.stack}/partners/admitad/options",
        Value=json.dumps({"thousands_separator": ","}),
        Type="String",
        Overwrite=True,
    )
    done = fresh(stack, now).replay(waiting(stack, partner="admitad"))
    assert (done["selected"], done["accepted"]) == (1, 1)
    stored = DynamoLedgerStore(stack).load_order("admitad#AD-1").lines
    lines = {json.loads(item.body)["line_id"] for item in stored}
    assert sorted(lines) == ["555001#1", "555001#2"]  # never the first position's id again
