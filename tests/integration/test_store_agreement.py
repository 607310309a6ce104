"""Each fake of a port behaves as its adapter, so the services' tests on the fakes say what the stack does.

The in-memory ledger store and the DynamoDB store: one scenario (new orders, an adjustment, a line that moves to
another order, a refused transition, a confirmation, a review, a re-decision) run on both leaves the same snapshot,
read through the port; a claims scenario on the claims table and on the in-memory claims store ends with the same
claims, orders, journal and outbox. The report archive (S3), the partner state (the control table), the work queue
(SQS) and the unit log: the same calls answer the same on the fake and on the stack."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

from accrual.adapters.claims_table import DynamoClaimsStore, claim_rules_of
from accrual.adapters.ledger_store import DynamoLedgerStore
from accrual.composition import composition
from accrual.domain.claims import ClaimRequest
from accrual.domain.lifecycle import ReviewVerdict
from accrual.partners import QuarantinedLine
from accrual.partners.http import PagePosition
from accrual.ports import PartnerState, ReportArchive, UnitLog, WorkQueue
from accrual.service.claims import ClaimService
from accrual.service.ledger import Ledger
from support.claims import memory_claims
from support.fakes.ledger_store import InMemoryLedgerStore
from support.fakes.ports import FakeArchive, FakePartnerState, FakeUnitLog, FakeWorkQueue
from support.ledger import T0, line, load_reference_data
from support.memory import clicks, config, store_snapshot
from support.readers import audit

USERS = {"alice": "EUR", "bob": "USD"}


def scenario(ledger: Ledger) -> list:
    settled_at = T0 + timedelta(days=10)
    counts = [
        ledger.reconcile(
            [
                line("A"),
                line("B", amount="40.00", user="bob"),
                line("C", "X-1"),
                line("R", new_user_coupon=True, buyer_account="acc-1"),
                line("S", new_user_coupon=True, buyer_account="acc-2"),
            ],
            now=T0,
        ),
        ledger.reconcile(
            [line("A", amount="60.00", at=T0 + timedelta(hours=1)), line("D", "X-1", at=T0 + timedelta(hours=1))],
            now=T0 + timedelta(hours=1),
        ),
        ledger.reconcile([line("B", amount="40.00", user="bob", status="settled", at=settled_at)], now=settled_at),
        ledger.confirm(now=settled_at + timedelta(days=1)),
        ledger.reconcile(
            [line("B", amount="40.00", user="bob", status="paid", at=settled_at + timedelta(days=2))],
            now=settled_at + timedelta(days=2),
        ),
    ]
    ledger.review("aliexpress#S", ReviewVerdict.RELEASED, now=settled_at + timedelta(days=2))
    results, _ = ledger.redecide(["aliexpress#A", "aliexpress#B"], now=settled_at + timedelta(days=3))
    return [counts, [item.to_dict() for item in results]]


def test_one_scenario_on_the_dynamodb_and_the_in_memory_store_ends_in_the_same_state(stack):
    load_reference_data(stack, users=USERS)
    dynamo = DynamoLedgerStore(stack)
    memory = InMemoryLedgerStore()
    memory.save_config(config())
    memory.save_clicks(clicks(USERS))

    assert scenario(Ledger(dynamo)) == scenario(Ledger(store=memory))
    assert store_snapshot(dynamo) == store_snapshot(memory)
    assert audit(dynamo) == audit(memory) and audit(memory)["ok"]


def archive_story(archive: ReportArchive, tmp_path) -> list:
    window = T0.astimezone(UTC)
    raw = archive.put_raw("aliexpress", window, "page-1", b'{"page": 1}')
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    filed = archive.put_file("csv", window, "report-1", path, "text/csv")
    quarantined = archive.put_quarantine(
        raw, [QuarantinedLine(3, "amount=x: not a number", '{"amount": "x"}')], run_id="r1", partner="aliexpress"
    )
    part = archive.put_object("raw/csv/drops/report.csv/part-00001.csv", b"a,b\n3,4\n")
    return [
        raw,
        filed,
        quarantined,
        part,
        archive.get(raw),
        archive.get(filed),
        archive.head(filed, 4),
        archive.content_type(filed),
        [line["reason"] for line in json.loads(archive.get(quarantined))["lines"]],
        archive.get(part),
    ]


def partner_state_story(state: PartnerState) -> list:
    window_start, window_end = T0, T0 + timedelta(days=2)
    told = [state.cursor("aliexpress")]
    state.page_done("aliexpress", window_start, window_end, PagePosition("paid", "idx-2", 2), T0)
    told.append(state.cursor("aliexpress"))
    state.page_done("aliexpress", window_start, window_end, PagePosition(None), T0)
    told.append(state.cursor("aliexpress"))
    lines = [QuarantinedLine(2, "status=weird: unknown", "raw two"), QuarantinedLine(5, "x" * 600, "r" * 3000)]
    told.append(state.quarantine("aliexpress", "raw/aliexpress/page-1.json", lines, run_id="r1", now=T0, raw_key="q"))
    stored = list(state.quarantined("aliexpress"))
    state.replayed(stored[0], run_id="r2", now=T0 + timedelta(hours=1))
    state.still_quarantined(stored[1], "still no good")
    after = sorted(state.every_quarantined(), key=lambda entry: entry.position)
    told.append(
        [(e.position, e.reason, e.raw, e.raw_bytes, e.raw_sha256, e.raw_key, e.run_id, e.replayed_at) for e in after]
    )
    return told


def work_queue_story(queue: WorkQueue) -> list:
    told: list = [queue.send(["one", "two", "three"])]
    first = queue.receive(limit=2, visibility_timeout=60)
    told.append(sorted(message.body for message in first))
    told.append(queue.depth())
    queue.delete([first[0].receipt_handle])
    queue.release([first[1].receipt_handle])
    again = queue.receive(limit=10, visibility_timeout=60)
    told.append(sorted((message.body, message.receives) for message in again))
    queue.delete(message.receipt_handle for message in again)
    told.append(queue.depth())
    return told


def unit_log_story(log: UnitLog) -> list:
    log.record("m-1", '{"kind": "page"}', "KeyError: " + "k" * 2000, receives=2)
    log.record("m-1", '{"kind": "page"}', "RuntimeError: again", receives=3)
    found = log.reason("m-1")
    return [found.reason if found else None, found.at.endswith("receive 3") if found else None, log.reason("m-2")]


def test_each_fake_answers_as_its_adapter_on_the_stack(stack, tmp_path):
    services = composition(stack)
    (tmp_path / "s3").mkdir()
    (tmp_path / "fake").mkdir()
    assert archive_story(services.archive, tmp_path / "s3") == archive_story(FakeArchive(), tmp_path / "fake")
    assert partner_state_story(services.partner_state) == partner_state_story(FakePartnerState())
    assert work_queue_story(services.work_queue) == work_queue_story(FakeWorkQueue())
    assert unit_log_story(services.unit_log) == unit_log_story(FakeUnitLog())


def claims_scenario(claims: ClaimService) -> list:
    """Claims through the claims store: credited with evidence, waiting without, rival claimants, an agent's verdicts,
    a claim of a shopper without clicks, a repeated filing."""
    ledger, at = claims.ledger, T0 + timedelta(days=20)
    lost = [line("K1", sub_id="lost-1"), line("K2", sub_id="lost-2"), line("K3", sub_id="lost-3")]
    ledger.reconcile(lost, now=at)
    claims.after_reconcile(lost, now=at)
    evidence = {"ordered_at": T0.isoformat(), "amount": "100", "currency": "USD"}

    def file(user: str, number: str, **data) -> str:
        claim, _ = claims.file(ClaimRequest.model_validate({"user_id": user, "order_number": number, **data}), now=at)
        return claim.claim_id

    credited, bare = file("alice", "K1", **evidence), file("alice", "K2")
    rival_a, rival_b = file("alice", "K3", **evidence), file("bob", "K3", **evidence)
    file("stranger", "K1", **evidence)
    file("alice", "K1", **evidence)
    claims.resolve(bare, approve=True, reason="receipt", now=at + timedelta(hours=1))
    claims.resolve(rival_a, approve=False, reason="not hers", now=at + timedelta(hours=2))
    claims.sweep(now=at + timedelta(days=30))
    return [claim.to_dict() for claim in claims.list_claims()] + [credited, rival_b]


def test_the_claims_store_on_dynamodb_and_in_memory_ends_in_the_same_state(stack):
    load_reference_data(stack, users=USERS)
    dynamo = ClaimService(DynamoClaimsStore(stack), Ledger(DynamoLedgerStore(stack)), claim_rules_of(stack))
    memory_ledger = InMemoryLedgerStore()
    memory_ledger.save_config(config())
    memory_ledger.save_clicks(clicks(USERS))
    memory = memory_claims(Ledger(store=memory_ledger), claim_rules_of(stack))

    assert claims_scenario(dynamo) == claims_scenario(memory)
    assert store_snapshot(dynamo.ledger.store) == store_snapshot(memory_ledger)
    assert audit(memory_ledger)["ok"]


def test_a_claim_rejected_when_filed_is_stored_with_its_notification_or_not_at_all(stack):
    """Filing a claim of a shopper who never clicked stores the claim and its notification in one transaction: a
    notification that cannot be written (its id taken) leaves no claim behind, and a claim filed twice sends one."""
    from dataclasses import replace

    from accrual.adapters.ledger_tables import OutboxRecord

    load_reference_data(stack, users=USERS)
    claims = ClaimService(DynamoClaimsStore(stack), Ledger(DynamoLedgerStore(stack)), claim_rules_of(stack))
    request = ClaimRequest.model_validate({"user_id": "stranger", "order_number": "Z-1"})
    claim, new = claims.file(request, now=T0)
    assert new and claim.state.value == "rejected"
    [written] = list(OutboxRecord.scan())
    assert json.loads(written.body)["event_type"] == written.event_type and written.user_id == "stranger"
    assert claims.file(request, now=T0 + timedelta(hours=1)) == (claim, False)
    assert [record.event_id for record in OutboxRecord.scan()] == [written.event_id]  # none sent twice

    store = DynamoClaimsStore(stack)
    other = replace(claim, claim_id=claim.claim_id + "-2")
    taken = claims._message(claim, None, 1, T0)  # an event id already in the outbox
    assert taken.event_id == written.event_id
    assert store.create(other, taken) is False
    assert store.get(other.claim_id) is None  # all or nothing: no claim without its notification
