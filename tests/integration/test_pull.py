"""Incremental pulls against the partner simulator over HTTP, on fakes of the pull's ports (archive, partner state
and directory): paging and cursors, overlap re-reads, late status changes, every fault, resuming after a failure,
stable archive keys. (test_pull_on_the_stack.py pulls through the stack's parameters, secrets,
bucket and control table.)"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from accrual.domain.models import AccrualConfig, Click, OrderLine
from accrual.partners import PartnerOptions
from accrual.partners.http import PartnerApiError, RetryPolicy
from accrual.service.pull import Puller, make_client
from accrual_dev.simulator import Credentials, Faults, running_simulator
from support.fakes.world import FakeWorld
from support.memory import store_snapshot
from support.services import RecordingSink

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


def configure_partners(world: FakeWorld, simulator_url: str, credentials: Credentials) -> None:
    """The simulator's endpoints and credentials, as the local stack's parameters and secrets hold them."""
    world.partners.endpoints.update(aliexpress=f"{simulator_url}/sync", admitad=simulator_url)
    world.partners.credentials_by_partner.update(
        aliexpress={"app_key": credentials.app_key, "app_secret": credentials.app_secret, "sign_method": "sha256"},
        admitad={"client_id": credentials.client_id, "client_secret": credentials.client_secret},
    )


@pytest.fixture
def partners(simulator) -> FakeWorld:
    world = FakeWorld()
    configure_partners(world, simulator.url, simulator.credentials)
    return world


def forget_cursor(world: FakeWorld, partner: str) -> None:
    world.partner_state.cursors.pop(partner, None)


def pull(partner, world: FakeWorld, now=NOW, reconcile=None, **changes):
    options = PartnerOptions(usd_rates={"RUB": "92.50", "EUR": "0.93"})
    client = make_client(partner, world.partners, options, retry=FAST, page_size=PAGE_SIZE)
    for name, value in changes.pop("client", {}).items():
        setattr(client, name, value)
    puller = Puller(world.ingest, world.partners, overlap=OVERLAP)
    sink = RecordingSink(reconcile or Recorder())
    return puller.pull_partner(partner, now=now, sink=sink, client=client, options=options, **changes).as_dict()


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


def archived(world: FakeWorld, prefix: str) -> list[str]:
    return sorted(key for _, key in world.archive.objects if key.startswith(prefix))


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
    cursor = partners.partner_state.cursor(partner)
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
    forget_cursor(partners, partner)
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
    forget_cursor(partners, partner)
    simulator.app.faults = Faults(malformed_line=True)
    recorder = Recorder()
    counts = pull(partner, partners, reconcile=recorder)
    assert recorder.lines == clean.lines
    assert counts["quarantined"] > 0 and counts["read"] == counts["accepted"] + counts["quarantined"]
    records = list(partners.partner_state.quarantined(partner))
    assert len(records) == counts["quarantined"]
    assert all(record.reason and record.raw and record.source.startswith(f"raw/{partner}/") for record in records)
    objects = archived(partners, f"quarantine/{partner}/")
    assert objects and json.loads(partners.archive.get(objects[0]))["lines"][0]["reason"]


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_a_failed_run_resumes_from_its_cursor(partners, simulator, partner):
    clean = Recorder()
    clean_counts = pull(partner, partners, reconcile=clean)
    forget_cursor(partners, partner)
    # Given the partner fails for good after two pages
    simulator.app.faults = Faults(fail_after_pages=2)
    first = Recorder()
    with pytest.raises(PartnerApiError, match="gave up"):
        pull(partner, partners, reconcile=first)
    assert len(first.pages) <= 2
    cursor = partners.partner_state.cursor(partner)
    assert cursor.resume is not None and cursor.resume.page_no >= 2 and cursor.window_end is not None
    # When it recovers and the next run starts
    simulator.app.faults = Faults()
    second = Recorder()
    counts = pull(partner, partners, reconcile=second)
    # Then it resumed at the page after the last reconciled one, and together the runs read every page once
    assert counts["resumed"] and counts["pages"] == clean_counts["pages"] - 2
    assert {**first.lines, **second.lines} == clean.lines
    assert partners.partner_state.cursor(partner).last_window_end == NOW


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_a_page_of_an_unexpected_shape_never_stalls_the_feed(partners, simulator, partner):
    clean = Recorder()
    clean_counts = pull(partner, partners, reconcile=clean)
    forget_cursor(partners, partner)
    # Given the partner serves its first page of the run in a shape it does not document
    simulator.app.faults = Faults(odd_pages=1)
    first = Recorder()
    counts = pull(partner, partners, reconcile=first)
    # Then the page is archived and quarantined whole, counted, the other pages are read and the cursor moves
    assert counts["pages_quarantined"] == 1 and counts["pages"] == clean_counts["pages"]
    assert counts["read"] == counts["accepted"] + counts["quarantined"]
    quarantined = partners.partner_state.quarantined(partner)
    (record,) = [item for item in quarantined if "page of an unexpected" in item.reason]
    assert "unexpected" in record.raw
    assert partners.partner_state.cursor(partner).last_window_end == NOW
    assert set(first.lines) < set(clean.lines)
    # And the next pull goes on (the overlap re-reads the page, now readable): together nothing is missing
    second = Recorder()
    again = pull(partner, partners, now=NOW + timedelta(hours=1), reconcile=second)
    assert again["pages_quarantined"] == 0 and {**first.lines, **second.lines}.keys() == clean.lines.keys()


@pytest.mark.parametrize("partner", ["aliexpress", "admitad"])
def test_archive_keys_are_stable_across_reruns(partners, simulator, partner):
    pull(partner, partners)
    keys = archived(partners, f"raw/{partner}/")
    forget_cursor(partners, partner)
    pull(partner, partners, now=NOW + timedelta(minutes=20))
    assert archived(partners, f"raw/{partner}/") == keys


def test_refused_credentials_fail_at_once_with_a_clear_error(partners, simulator):
    configure_partners(
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
    puller = Puller(partners.ingest, partners.partners, overlap=timedelta(days=2))
    summary = puller.pull_all(now=NOW, sink=RecordingSink(recorder)).as_dict()
    assert summary["failed"] == [] and set(summary["partners"]) == {"aliexpress", "admitad"}
    assert summary["read"] == summary["accepted"] + summary["quarantined"] and summary["accepted"] > 0
    assert {line.partner for line in recorder.lines.values()} == {"aliexpress", "admitad"}


def test_overlap_rereads_leave_the_real_ledger_unchanged(partners, simulator):
    # Given the ledger with a configuration and the simulator's clicks
    partners.store.save_config(
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
        )
    )
    partners.store.save_clicks(Click.model_validate(click) for click in simulator.world.clicks)
    ledger = partners.ledger()
    first = pull("aliexpress", partners, reconcile=lambda lines: ledger.reconcile(lines, now=NOW))
    assert first["reconciled"]["lines_applied"] > 0
    before = store_snapshot(partners.store)
    # When the next run re-reads the overlap an hour later
    later = NOW + timedelta(hours=1)
    again = pull("aliexpress", partners, now=later, reconcile=lambda lines: ledger.reconcile(lines, now=later))
    # Then nothing the ledger owns has changed
    assert again["accepted"] > 0 and again["reconciled"].get("lines_applied", 0) == 0
    assert store_snapshot(partners.store) == before
