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


def _size(group) -> int:
    change_items = sum(1 + len(change.entries) + len(change.outbox) for _, _, change, _ in group)
    return change_items + len({balance.user_id for _, _, change, _ in group for balance in change.balances})


@given(changes)
def test_every_change_is_written_once_within_the_item_limit_a_shopper_s_together_when_they_fit(drawn):
    ready = [(n, None, _change(*spec), None) for n, spec in enumerate(drawn)]
    groups = list(_transactions(ready))
    assert sorted(n for group in groups for n, _, _, _ in group) == list(range(len(ready)))
    assert all(group for group in groups)
    for group in groups:
        assert _size(group) <= ITEMS_TOGETHER or len(group) == 1
    for shoppers in {spec[0] for spec in drawn}:
        mine = [n for n, spec in enumerate(drawn) if spec[0] == shoppers]
        holding = [[n for n, _, _, _ in group if n in mine] for group in groups]
        holding = [ns for ns in holding if ns]
        assert [n for ns in holding for n in ns] == mine  # in their order
        whole = len(shoppers) + sum(
            1 + entries + notes for spec_shoppers, entries, notes in drawn if spec_shoppers == shoppers
        )
        if whole <= ITEMS_TOGETHER:
            assert len(holding) == 1  # the balance updated once for all of them
