"""How the ledger packs planned order changes into shared transactions (`accrual.service.settle._transactions`)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from accrual.service.settle import ITEMS_TOGETHER, _transactions


def _change(shoppers: tuple[str, ...], entries: int, notifications: int) -> SimpleNamespace:
    return SimpleNamespace(
        balances=tuple(SimpleNamespace(user_id=user) for user in shoppers),
        entries=(None,) * entries,
        outbox=(None,) * notifications,
    )


changes = st.lists(
    st.tuples(
        st.sampled_from([(), ("alice",), ("bob",), ("carol",), ("dan",), ("alice", "bob")]),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
    max_size=40,
)


def _one_each(messages) -> int:
    return len(messages)


def _shared_by_ten(messages) -> int:
    return -(-len(messages) // 10)


def _size(group, outbox_items) -> int:
    change_items = sum(1 + len(change.entries) for _, _, change, _ in group)
    notifications = outbox_items([message for _, _, change, _ in group for message in change.outbox])
    return (
        change_items
        + notifications
        + len({balance.user_id for _, _, change, _ in group for balance in change.balances})
    )


@given(changes, st.sampled_from([_one_each, _shared_by_ten]))
def test_every_change_is_written_once_within_the_item_limit_a_shopper_s_together_when_they_fit(drawn, outbox_items):
    """Whether the store keeps each notification in an item of its own or shares one among ten."""
    ready = [(n, None, _change(*spec), None) for n, spec in enumerate(drawn)]
    groups = list(_transactions(ready, outbox_items))
    assert sorted(n for group in groups for n, _, _, _ in group) == list(range(len(ready)))
    assert all(group for group in groups)
    for group in groups:
        assert _size(group, outbox_items) <= ITEMS_TOGETHER or len(group) == 1
    for shoppers in {spec[0] for spec in drawn}:
        mine = [n for n, spec in enumerate(drawn) if spec[0] == shoppers]
        holding = [[n for n, _, _, _ in group if n in mine] for group in groups]
        holding = [ns for ns in holding if ns]
        assert [n for ns in holding for n in ns] == mine  # in their order
        theirs = [spec for spec in drawn if spec[0] == shoppers]
        whole = (
            len(shoppers)
            + sum(1 + entries for _, entries, _ in theirs)
            + outbox_items([None for _, _, notes in theirs for _ in range(notes)])
        )
        if whole <= ITEMS_TOGETHER:
            assert len(holding) == 1  # the balance updated once for all of them
