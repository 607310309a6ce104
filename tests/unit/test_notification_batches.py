"""A sweep's batch of notifications split into PublishBatch calls within SNS's payload limit: every message once, in
order, each call within 256 KiB (a message alone may be larger: SNS answers it, one message per call), as few calls
as the limit allows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from accrual.adapters.notifications import BATCH_PAYLOAD_BYTES, payload_calls, payload_size


def _event(number: int, size: int) -> dict:
    return {"event_id": f"e{number}", "body": "x" * size, "attributes": {"event_type": "cashback.pending", "state": ""}}


@given(st.lists(st.integers(min_value=1, max_value=BATCH_PAYLOAD_BYTES + 10), min_size=0, max_size=10))
def test_each_call_holds_what_the_limit_allows_and_every_message_goes_once_in_order(sizes):
    events = [_event(number, size) for number, size in enumerate(sizes)]
    calls = payload_calls(events)
    assert [event for call in calls for event in call] == events
    for call in calls:
        assert len(call) == 1 or sum(payload_size(event) for event in call) <= BATCH_PAYLOAD_BYTES
    for first, second in zip(calls, calls[1:], strict=False):  # no two neighbours could have been one call
        assert sum(payload_size(event) for event in first + second) > BATCH_PAYLOAD_BYTES


def test_a_day_of_small_notifications_goes_ten_to_a_call():
    assert [len(call) for call in payload_calls([_event(number, 1500) for number in range(10)])] == [10]


def test_the_size_counts_the_body_and_the_attributes_sent():
    event = {"event_id": "e", "body": "héllo", "attributes": {"event_type": "cashback.pending", "partner": ""}}
    assert payload_size(event) == len("héllo".encode()) + len("event_type") + len("String") + len("cashback.pending")
