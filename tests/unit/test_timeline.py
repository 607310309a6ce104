"""The explanation's timeline follows the facts' times (the report's status time, the claim's time, when the order
fell due), not the `now` of the command that read them: a claw-back never appears before the confirmation it undoes."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from support.ledger import T0, line
from support.memory import memory_ledger
from support.readers import explain

DAY = timedelta(days=1)


def history(ledger, number: str = "A") -> list[str]:
    text = explain(ledger.store, number)["explanation"]
    return [entry.strip(" -") for entry in text.split("What happened:")[1].splitlines() if entry.startswith("  - ")]


@settings(max_examples=20, deadline=None)
@given(read_back=st.integers(min_value=-20, max_value=20))
def test_a_claw_back_read_with_an_earlier_now_comes_after_the_confirmation(read_back):
    ledger = memory_ledger()
    settled_at = T0 + DAY
    ledger.reconcile([line("A", status="settled", at=settled_at)], now=settled_at)
    ledger.confirm(now=settled_at + 3 * DAY)  # posted: due a day after settlement
    refund_at = settled_at + 4 * DAY
    # the refund is read by a command whose --now is anywhere around it, even before the confirmation ran
    ledger.reconcile([line("A", status="invalid", at=refund_at)], now=refund_at + read_back * timedelta(hours=6))

    events = history(ledger)
    kinds = [("confirmed" in event and "clawed" not in event, "clawed back" in event) for event in events]
    assert [event for event, _ in kinds].index(True) < [event for _, event in kinds].index(True)
    times = [event.split(": ")[0] for event in events]
    assert times == sorted(times)
    assert times[-1] == refund_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # the refund's own status time
