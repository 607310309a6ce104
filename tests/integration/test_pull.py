"""Incremental pulls against the partner simulator over HTTP and the local moto stack: paging and cursors, overlap
re-reads, late status changes, every fault, resuming after a failure, stable archive keys, and CSV drops."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import bind_ledger_tables
from accrual.adapters.partner_state import PartnerState
from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.partners import PartnerOptions
from accrual.partners.http import PartnerApiError, RetryPolicy
from accrual.service.drop import ingest_drop
from accrual.service.ledger import Ledger
from accrual.service.pull import make_client, pull_all, pull_partner
from accrual_dev.simulator import Faults, running_simulator
from accrual_dev.simulator.local import configure_local_partners
from support.ledger import snapshot

NOW = datetime(2026, 10, 20, tzinfo=UTC)
OVERLAP = timedelta(days=5)
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
PAGE_SIZE = 5


class Recorder:
    """Stands in for the ledger: keeps every line handed over, page by page."""

    def __init__(self):
        self.pages: list[list[OrderLine]] = []

    def __call__(self, lines):
        self.pages.append(list(lines))
        return {"lines_received": len(lines)}

    @property
    def lines(self) -> dict[str, OrderLine]:
        return {line.line_id: line for page in self.pages for line in page}


@pytest.fixture
def simulator():
    with running_simulator(seed=11, days=20, orders_per_day=4, now=NOW) as simulator:
        yield simulator


@pytest.fixture
def partners(stack, simulator):
    configure_local_partners(stack, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates)
    return stack


def pull(partner, settings, now=NOW, reconcile=None, **changes):
    options = PartnerOptions(usd_rates={"RUB": "92.50", "EUR": "0.93"})
    client = make_client(partner, settings, options, retry=FAST, page_size=PAGE_SIZE)
    for name, value in changes.pop("client", {}).items():
        setattr(client, name, value)
    return pull_partner(
        partner,
        now=now,
        settings=settings,
        reconcile=reconcile or Recorder(),
        overlap=OVERLAP,
        client=client,
        options=options,
        **changes,
    )


def expected_line_ids(simulator, partner, start, end):
    world, now = simulator.world, simulator.app.now
    if partner == "aliexpress":
        return {
            str(order.fields["sub_order_id"])
            for order in world.aliexpress
            if any(
                (at := order.event_time(kind, now)) and start <= at <= end
                for kind in ("Payment Completed Time", "Buyer Confirmed Receipt Time", "Completed Settlement Time")
            )
        }
    return {
        f"{action.fields['action_id']}#{position['id']}"
        for action in world.admitad
        if (at := action.status_updated(now)) and start <= at <= end
        for position in action.fields["positions"]
    }


def archived(settings, prefix):
    s3 = settings.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings.reports_bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_pull_walks_every_page_and_moves_the_cursor(partners, simulator, partner):
    # Given no cursor yet, when the partner is pulled up to NOW
    recorder = Recorder()
    counts = pull(partner, partners, reconcile=recorder)
    # Then every line of the overlap window arrived, over several pages, and the counts add up
    start = NOW - OVERLAP
    assert set(recorder.lines) == expected_line_ids(simulator, partner, start, NOW)
    assert counts["pages"] > 3 and counts["windows"] == 3
    assert counts["read"] == counts["accepted"] + counts["quarantined"] and counts["quarantined"] == 0
    assert counts["accepted"] == sum(len(page) for page in recorder.pages)
    assert counts["reconciled"]["lines_received"] == counts["accepted"]
    # And each page was archived under its window, and the cursor stands at NOW with no window open
    keys = archived(partners, f"raw/{partner}/")
    assert len(keys) == counts["pages"] and keys[0].startswith(f"raw/{partner}/20261015T000000Z/")
    cursor = PartnerState(partners).cursor(partner)
    assert cursor.last_window_end == NOW and cursor.resume is None


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_overlap_rereads_change_nothing_and_late_changes_arrive(partners, simulator, partner):
    first = Recorder()
    pull(partner, partners, reconcile=first)
    # When the next run comes an hour later, nothing new has happened at the partner
    again = Recorder()
    counts = pull(partner, partners, now=NOW + timedelta(hours=1), reconcile=again)
    # Then it re-read the overlap, and every line it saw is exactly what the first run already handed over
    assert counts["accepted"] > 0
    assert all(first.lines[line_id] == line for line_id, line in again.lines.items())
    # When the partner's clock moves ten days on, a pull from the cursor brings the status changes made meanwhile
    simulator.app.now = NOW + timedelta(days=10)
    later = Recorder()
    pull(partner, partners, now=NOW + timedelta(days=10), reconcile=later)
    changed = [
        line
        for line_id, line in later.lines.items()
        if line_id in first.lines and first.lines[line_id].status != line.status
    ]
    assert changed, "a late status change should arrive through the cursor"


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
@pytest.mark.parametrize("fault", [{"rate_limit": 3}, {"server_error": 2}, {"slow_seconds": 0.3, "slow_requests": 2}])
def test_transient_faults_are_retried_and_change_nothing(partners, simulator, partner, fault):
    clean = Recorder()
    clean_counts = pull(partner, partners, reconcile=clean)
    # The cursor is reset so the faulty run reads the same windows as the clean one
    partners.client("dynamodb").delete_item(
        TableName=partners.control_table, Key={"pk": {"S": "CURSOR"}, "sk": {"S": partner}}
    )
    simulator.app.faults = Faults(**fault)
    faulty = Recorder()
    counts = pull(partner, partners, reconcile=faulty, client={"timeout": 0.15})
    assert faulty.lines == clean.lines
    assert (counts["read"], counts["pages"]) == (clean_counts["read"], clean_counts["pages"])
    assert sum(simulator.app.stats.faults_served.values()) == sum(
        value for name, value in fault.items() if name != "slow_seconds"
    )


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_malformed_lines_are_quarantined_and_the_rest_goes_on(partners, simulator, partner):
    clean = Recorder()
    pull(partner, partners, reconcile=clean)
    partners.client("dynamodb").delete_item(
        TableName=partners.control_table, Key={"pk": {"S": "CURSOR"}, "sk": {"S": partner}}
    )
    simulator.app.faults = Faults(malformed_line=True)
    recorder = Recorder()
    counts = pull(partner, partners, reconcile=recorder)
    assert recorder.lines == clean.lines
    assert counts["quarantined"] > 0 and counts["read"] == counts["accepted"] + counts["quarantined"]
    records = list(PartnerState(partners).quarantined(partner))
    assert len(records) == counts["quarantined"]
    assert all(record.reason and record.raw and record.sk.startswith(f"raw/{partner}/") for record in records)
    objects = archived(partners, f"quarantine/{partner}/")
    assert (
        objects
        and json.loads(partners.client("s3").get_object(Bucket=partners.reports_bucket, Key=objects[0])["Body"].read())[
            "lines"
        ][0]["reason"]
    )


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_a_failed_run_resumes_from_its_cursor(partners, simulator, partner):
    clean = Recorder()
    clean_counts = pull(partner, partners, reconcile=clean)
    partners.client("dynamodb").delete_item(
        TableName=partners.control_table, Key={"pk": {"S": "CURSOR"}, "sk": {"S": partner}}
    )
    # Given the partner fails for good after two pages
    simulator.app.faults = Faults(fail_after_pages=2)
    first = Recorder()
    with pytest.raises(PartnerApiError, match="gave up"):
        pull(partner, partners, reconcile=first)
    assert len(first.pages) <= 2
    cursor = PartnerState(partners).cursor(partner)
    assert cursor.resume is not None and cursor.resume.page_no >= 2 and cursor.window_end is not None
    # When it recovers and the next run starts
    simulator.app.faults = Faults()
    second = Recorder()
    counts = pull(partner, partners, reconcile=second)
    # Then it resumed at the page after the last reconciled one, and together the runs read every page once
    assert counts["resumed"] and counts["pages"] == clean_counts["pages"] - 2
    assert {**first.lines, **second.lines} == clean.lines
    assert PartnerState(partners).cursor(partner).last_window_end == NOW


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_a_page_of_an_unexpected_shape_never_stalls_the_feed(partners, simulator, partner):
    clean = Recorder()
    clean_counts = pull(partner, partners, reconcile=clean)
    partners.client("dynamodb").delete_item(
        TableName=partners.control_table, Key={"pk": {"S": "CURSOR"}, "sk": {"S": partner}}
    )
    # Given the partner serves its first page of the run in a shape it does not document
    simulator.app.faults = Faults(odd_pages=1)
    first = Recorder()
    counts = pull(partner, partners, reconcile=first)
    # Then the page is archived and quarantined whole, counted, the other pages are read and the cursor moves
    assert counts["pages_quarantined"] == 1 and counts["pages"] == clean_counts["pages"]
    assert counts["read"] == counts["accepted"] + counts["quarantined"]
    (record,) = [item for item in PartnerState(partners).quarantined(partner) if "page of an unexpected" in item.reason]
    assert "unexpected" in record.raw
    assert PartnerState(partners).cursor(partner).last_window_end == NOW
    assert set(first.lines) < set(clean.lines)
    # And the next pull goes on (the overlap re-reads the page, now readable): together nothing is missing
    second = Recorder()
    again = pull(partner, partners, now=NOW + timedelta(hours=1), reconcile=second)
    assert again["pages_quarantined"] == 0 and {**first.lines, **second.lines}.keys() == clean.lines.keys()


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_archive_keys_are_stable_across_reruns(partners, simulator, partner):
    pull(partner, partners)
    keys = archived(partners, f"raw/{partner}/")
    partners.client("dynamodb").delete_item(
        TableName=partners.control_table, Key={"pk": {"S": "CURSOR"}, "sk": {"S": partner}}
    )
    pull(partner, partners, now=NOW + timedelta(minutes=20))
    assert archived(partners, f"raw/{partner}/") == keys


def test_refused_credentials_fail_at_once_with_a_clear_error(partners, simulator):
    configure_local_partners(
        partners, simulator.url, replace(simulator.credentials, app_secret="wrong", client_secret="wrong")
    )
    with pytest.raises(PartnerApiError, match="IncompleteSignature"):
        pull("aliexpress", partners)
    with pytest.raises(PartnerApiError, match="token refused"):
        pull("admitad", partners)
    assert simulator.app.stats.refused_signatures == 1


def test_md5_signing_is_accepted_by_the_gateway(partners, simulator):
    recorder = Recorder()
    pull("aliexpress", partners, reconcile=recorder, client={"sign_method": "md5"})
    assert recorder.lines and simulator.app.stats.refused_signatures == 0


def test_pull_all_pulls_every_configured_partner(partners, simulator):
    recorder = Recorder()
    summary = pull_all(now=NOW, settings=partners, reconcile=recorder, overlap=timedelta(days=2))
    assert summary["failed"] == [] and set(summary["partners"]) == {"aliexpress", "admitad"}
    assert summary["read"] == summary["accepted"] + summary["quarantined"] and summary["accepted"] > 0
    assert {line.partner for line in recorder.lines.values()} == {"aliexpress", "admitad"}


def test_csv_drop_is_ingested_with_its_column_map(stack):
    stack.client("ssm").put_parameter(
        Name=f"{stack.partner_parameters_prefix}awin/columns",
        Type="String",
        Value=json.dumps(
            {
                "columns": {
                    "line_id": "Transaction ID",
                    "order_id": "Order",
                    "amount": "Sale",
                    "status": "State",
                    "ordered_at": "Date",
                    "sub_id": "Click Ref",
                },
                "statuses": {"Approved": "settled", "Pending": "paid"},
            }
        ),
    )
    body = (
        "Transaction ID,Order,Sale,State,Date,Click Ref\n"
        "T1,O1,12.50,Pending,2026-10-19T10:00:00Z,c-1\n"
        "T2,O2,-4,Pending,2026-10-19T10:00:00Z,c-2\n"
    )
    key = "drops/awin/2026-10-19.csv"
    stack.client("s3").put_object(Bucket=stack.reports_bucket, Key=key, Body=body.encode())
    recorder = Recorder()
    result = ingest_drop(stack.reports_bucket, key, settings=stack, now=NOW, reconcile=recorder)
    assert (result["read"], result["accepted"], result["quarantined"]) == (2, 1, 1)
    assert recorder.lines["T1"].partner == "awin" and str(recorder.lines["T1"].amount) == "12.50"
    assert archived(stack, "quarantine/awin/") == ["quarantine/awin/drops/2026-10-19.csv.json"]
    [record] = list(PartnerState(stack).quarantined("awin"))
    assert record.reason == "Sale=-4: negative amount" and record.raw.startswith("T2,O2")


def test_overlap_rereads_leave_the_real_ledger_unchanged(partners, simulator):
    # Given the ledger with a configuration and the simulator's clicks
    bind_ledger_tables(partners)
    reference_data.save_config(
        AccrualConfig.model_validate(
            {
                "version": "pull-1",
                "rate_cards": [
                    {
                        "partner": partner,
                        "valid_from": "2026-01-01T00:00:00Z",
                        "default_rate": "0.03",
                        "non_affiliate_rate": "0.01",
                        "hot_product_rate": "0.12",
                        "categories": {"100001": "0.055"},
                    }
                    for partner in ("aliexpress", "admitad")
                ],
                "virtual_categories": ["200001"],
                "fx_rates": {"2026-01-01": {"RUB": "92.50", "UAH": "41.20", "KZT": "480.00", "EUR": "0.93"}},
            }
        ),
        now=NOW - timedelta(days=60),
    )
    reference_data.save_clicks(Click.model_validate(click) for click in simulator.world.clicks)
    ledger = Ledger(partners)
    first = pull("aliexpress", partners, reconcile=lambda lines: ledger.reconcile(lines, now=NOW))
    assert first["reconciled"]["lines_applied"] > 0
    before = snapshot()
    # When the next run re-reads the overlap an hour later
    later = NOW + timedelta(hours=1)
    again = pull("aliexpress", partners, now=later, reconcile=lambda lines: ledger.reconcile(lines, now=later))
    # Then nothing the ledger owns has changed
    assert again["accepted"] > 0 and again["reconciled"].get("lines_applied", 0) == 0
    assert snapshot() == before
