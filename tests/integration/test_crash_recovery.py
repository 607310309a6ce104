"""A run stopped at every AWS call in turn, then rerun, ends exactly where a clean run ends: no double credit, no lost
or duplicated notification.

The stop is a process death seen from the inside: an exception that nothing in the code catches, raised either before
the call reaches the endpoint (the request never happened) or after it returned (the request happened, the answer is
lost) — the two ways a Lambda timeout or a crash cuts a run. Messages may repeat (same event ids) only when the stop
falls between SNS accepting a batch of them and the outbox deleting the last of them: at most a batch's.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import botocore.endpoint
import pytest

from accrual.composition import composition
from accrual.ports.notify import PUBLISH_BATCH
from support.ledger import T0, line, load_reference_data, snapshot, wipe_ledger
from support.readers import audit
from support.subscriber import received


class Crash(BaseException):
    """Not an Exception: no handler in the code under test may swallow a process death."""


class CrashAt:
    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls = 0
        self.crash_at: int | None = None
        self.after = False
        self.operations: list[str] = []
        original = botocore.endpoint.Endpoint.make_request

        def make_request(endpoint, operation_model, request_dict):
            self.calls += 1
            self.operations.append(operation_model.name)
            if self.calls == self.crash_at and not self.after:
                raise Crash(f"before call {self.calls} ({operation_model.name})")
            response = original(endpoint, operation_model, request_dict)
            if self.calls == self.crash_at and self.after:
                raise Crash(f"after call {self.calls} ({operation_model.name})")
            return response

        monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", make_request)

    def arm(self, call: int | None, *, after: bool = False) -> None:
        self.calls, self.crash_at, self.after, self.operations = 0, call, after, []

    def in_the_publish_window(self) -> bool:
        """Stopped between SNS accepting a batch of messages and the outbox deleting the last of them: the
        one place messages may repeat (the module docstring of accrual.service.outbox says why)."""
        if "PublishBatch" not in self.operations:
            return False
        since = self.operations[len(self.operations) - self.operations[::-1].index("PublishBatch") :]
        if not since:  # stopped at the batch itself: it reached SNS only if stopped after it
            return self.after
        return all(operation == "BatchWriteItem" for operation in since)  # the deletes, 25 to a call


def run_once(stack) -> None:
    """The scenario: a report, a later report that settles one order and invalidates a sub-order, the confirmation
    cycle, and the notifications."""
    ledger = composition(stack).ledger()
    ledger.reconcile([line("A"), line("B", "B-1", amount="60.00"), line("B", "B-2", amount="40.00")], now=T0)
    settled_at = T0 + timedelta(days=2)
    ledger.reconcile(
        [line("A", status="settled", at=settled_at), line("B", "B-2", status="invalid", amount="40.00", at=settled_at)],
        now=settled_at,
    )
    ledger.confirm(now=settled_at + timedelta(days=1))
    composition(stack).relay.publish_unpublished(now=settled_at + timedelta(days=1))


def delivered(stack) -> Counter[str]:
    """Event ids delivered to the local notifications queue (drained)."""
    return Counter(body["event_id"] for body, _ in received(stack))


@pytest.mark.slow
@pytest.mark.parametrize("after", [False, True], ids=["before-the-call", "after-the-call"])
def test_a_run_stopped_at_any_aws_call_and_rerun_ends_where_a_clean_run_ends(stack, monkeypatch, after):
    load_reference_data(stack)
    crash = CrashAt(monkeypatch)
    run_once(stack)  # warms the clients' table descriptions, so that every run below makes the same calls
    wipe_ledger(stack)
    delivered(stack)
    crash.arm(None)
    run_once(stack)
    clean_calls = crash.calls
    clean, clean_events = snapshot(), delivered(stack)
    # four notifications delivered, and the outbox empty: each left it once published
    assert len(clean_events) == 4 and clean["outbox"] == []

    for call in range(1, clean_calls + 1):
        wipe_ledger(stack)
        crash.arm(call, after=after)
        with pytest.raises(Crash):
            run_once(stack)
        may_repeat = crash.in_the_publish_window()
        crash.arm(None)
        run_once(stack)
        assert snapshot() == clean, f"stopped {'after' if after else 'before'} call {call}"
        events = delivered(stack)
        assert set(events) == set(clean_events), f"lost a notification when stopped at call {call}"
        if not may_repeat:
            assert max(events.values()) == 1, f"duplicated a notification when stopped at call {call}"
        assert sum(events.values()) <= len(clean_events) + PUBLISH_BATCH
    assert audit(stack)["ok"]
