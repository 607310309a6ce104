"""Which shopper an order belongs to (docs/rules.md, "Identity and integrity"): the one its lines' clicks name.

Pure: the ledger and the audit both call `attribute` with the order's lines and the clicks their sub-ids find, so the
audit recomputes exactly what the ledger decided.

* A line whose sub-id matches no click does not un-attribute an order that its other lines attribute.
* Lines naming different shoppers make an attribution conflict: the order is held for review and holds nothing.
* `pinned_user` fixes the shopper: an order whose money was already posted (confirmed, reversed) stays with the
  shopper it was posted to, and an operator's verdict on a conflict names the shopper the order goes to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from accrual.domain.models import Click, OrderLine


@dataclass(frozen=True)
class Attribution:
    click: Click | None  # the click the order is decided by (None: unattributed or in conflict)
    conflict: tuple[str, ...] = ()  # the shoppers the lines name, sorted, when they disagree
    unmatched_sub_ids: tuple[str, ...] = ()  # sub-ids of lines that found no click

    @property
    def user_id(self) -> str | None:
        return self.click.user_id if self.click is not None else None

    @property
    def in_conflict(self) -> bool:
        return self.click is None and bool(self.conflict)


def attribute(
    lines: Mapping[str, OrderLine], clicks: Mapping[str, Click | None], *, pinned_user: str | None = None
) -> Attribution:
    """The order's shopper from its lines (a mapping line_id -> line) and the clicks found for their sub-ids. The
    click used is the one of the first line, by line_id, that names the chosen shopper."""
    matched: list[Click] = []
    unmatched: set[str] = set()
    for line_id in sorted(lines):
        sub_id = lines[line_id].sub_id
        click = clicks.get(sub_id) if sub_id else None
        if click is None:
            if sub_id:
                unmatched.add(sub_id)
        else:
            matched.append(click)
    users = sorted({click.user_id for click in matched})
    conflict = tuple(users) if len(users) > 1 else ()
    if pinned_user is not None:
        mine = [click for click in matched if click.user_id == pinned_user]
        if mine:
            return Attribution(mine[0], conflict, tuple(sorted(unmatched)))
    if not users:
        return Attribution(None, (), tuple(sorted(unmatched)))
    if conflict:
        return Attribution(None, conflict, tuple(sorted(unmatched)))
    return Attribution(matched[0], (), tuple(sorted(unmatched)))


def pinned_shopper(state: str | None, user_id: str | None, review: str | None, review_user: str | None) -> str | None:
    """The shopper an order is fixed to, if any: the one its money was posted to (confirmed, reversed), else the one
    an operator released it to."""
    if state in ("confirmed", "reversed"):
        return user_id
    if review == "released" and review_user:
        return review_user
    return None
