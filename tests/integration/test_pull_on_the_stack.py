"""A pull on the local stack, through the adapters the deployed pull uses: the partners' endpoints, options and
credentials from SSM and Secrets Manager, the pages archived in S3, the cursors and quarantine in the control table
(the pull's logic is tested on fakes in test_pull.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from accrual.composition import composition
from accrual_dev.simulator import running_simulator
from accrual_dev.simulator.local import configure_local_partners
from support.services import RecordingSink

NOW = datetime(2026, 10, 20, tzinfo=UTC)


def test_pull_all_reads_every_configured_partner_through_the_stack(stack):
    with running_simulator(seed=11, days=20, orders_per_day=4, now=NOW) as simulator:
        configure_local_partners(stack, simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates)
        services = composition(stack)
        received: list = []
        sink = RecordingSink(lambda lines: received.extend(lines) or {"lines_received": len(lines)})
        summary = services.puller.pull_all(now=NOW, sink=sink)
    assert summary.failed == [] and sorted(summary.partners) == ["admitad", "aliexpress"]
    assert summary.total("read") == summary.total("accepted") + summary.total("quarantined") > 0
    assert {line.partner for line in received} == {"aliexpress", "admitad"}
    for partner, pulled in summary.partners.items():
        cursor = services.partner_state.cursor(partner)
        assert cursor.last_window_end == NOW and cursor.resume is None
        s3 = stack.client("s3")
        listed = s3.list_objects_v2(Bucket=stack.reports_bucket, Prefix=f"raw/{partner}/")
        assert len(listed.get("Contents", [])) == pulled.pages > 0
    first = NOW - timedelta(days=stack.pull_initial_lookback_days)
    assert summary.partners["aliexpress"].start == first.replace(minute=0, second=0, microsecond=0).isoformat()
