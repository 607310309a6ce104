"""Hostile report files through the whole ingest path on the local stack: whatever the readers accept and the
configuration lets through, the ledger reconciles it, the counts hold and the audit stays clean.

The files come from the reader fuzzer's JSON Lines strategy (good lines mixed with mutated ones, duplicated line ids
with other content, values that are not objects), with clicks for some of their sub-ids and a configuration that
knows one of their partners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from test_reader_fuzz import LONG, jsonl_files

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import bind_ledger_tables
from accrual.domain.models import Click
from support.ledger import load_reference_data
from support.readers import audit
from support.services import ingest_report

NOW = datetime(2026, 11, 10, tzinfo=UTC)


@settings(
    max_examples=200 if LONG else 12,
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(file=jsonl_files())
def test_hostile_files_leave_a_ledger_the_audit_agrees_with(stack, file):
    bind_ledger_tables(stack)
    if not reference_data.find_click("c0"):
        load_reference_data(stack, users={}, fx_rates={"2026-01-01": {"EUR": "0.90", "KZT": "480"}})
        reference_data.save_clicks(
            (
                Click(
                    sub_id=f"c{index}",
                    user_id=f"u{index % 2}",
                    clicked_at=NOW - timedelta(days=30),
                    partner="aliexpress",
                    account_currency="USD",
                )
                for index in range(0, 6, 2)
            ),
            now=NOW,
        )
    data, _ = file
    result = ingest_report(data, "normalized", partner="normalized", source="fuzz.jsonl", settings=stack, now=NOW)
    assert result["read"] == result["accepted"] + result["quarantined"]
    reconciled = result["reconciled"]
    assert not reconciled.get("orders_failed") and not reconciled.get("journal_conflicts"), reconciled
    checked = audit(stack)
    assert checked["ok"], checked["differences"]
