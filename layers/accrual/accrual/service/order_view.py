"""An order as the ledger reads it: the stored order item, its decision and its live lines, and the digests that tell
whether the order was decided from the lines stored under it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from accrual.domain.attribution import ClaimFact, claims_of
from accrual.domain.lifecycle import NOTHING, Holding, OrderState
from accrual.domain.models import OrderLine
from accrual.ports import LedgerStore, LoadedOrder, OrderItem

# money already confirmed is never re-decided: an order in these states keeps its decision (redecide skips it)
SETTLED_STATES = frozenset({OrderState.CONFIRMED, OrderState.REVERSED, OrderState.MOVED})


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def amount_text(value: Decimal) -> str:
    """An amount as a digest sees it: one number, one text, however many trailing zeros it carries. DynamoDB returns
    numbers without them (-5.00 is read back as -5), so an entry computed from amounts read back must fingerprint
    like the same entry computed in memory, or a rerun would take it for a conflicting one."""
    return "0" if value == 0 else format(value.normalize(), "f")


def lines_digest(lines: Mapping[str, OrderLine]) -> str:
    """Names the exact line versions an order was decided from."""
    text = "\n".join(f"{line_id}\t{lines[line_id].model_dump_json()}" for line_id in sorted(lines))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class OrderView:
    """An order as stored: the order item (None when new), its decision as stored JSON, and its latest live lines."""

    record: OrderItem | None
    decision_json: str | None
    lines: dict[str, OrderLine]

    @property
    def state(self) -> OrderState | None:
        return OrderState(self.record.state) if self.record else None

    @property
    def holding(self) -> Holding:
        if self.record is None:
            return NOTHING
        return self.record.holding

    @property
    def holder(self) -> str | None:
        """The shopper the order's money is with (None when it holds nothing)."""
        if self.record is None or self.holding.is_zero:
            return None
        return self.record.user_id

    @property
    def claims(self) -> tuple[ClaimFact, ...]:
        """The missing-cashback claims recorded on the order."""
        return claims_of(self.record.claims) if self.record is not None else ()

    @property
    def dirty(self) -> bool:
        """Lines were stored that the order was not decided from (a run stopped between the two writes)."""
        if self.record is None or self.record.lines_digest is None:
            return False
        return self.record.lines_digest != lines_digest(self.lines)

    @property
    def settled(self) -> bool:
        """Confirmed money (or a final state): never re-decided."""
        return self.state in SETTLED_STATES or self.holding.confirmed_usd != 0 or self.holding.confirmed != 0

    def decided_line_ids(self) -> set[str]:
        if self.decision_json is None:
            return set()
        return {line["line_id"] for line in json.loads(self.decision_json)["lines"]}


def view_of(loaded: LoadedOrder) -> OrderView:
    lines = {}
    for item in loaded.lines:
        if item.moved_to:
            continue
        line = OrderLine.model_validate_json(item.body)
        lines[line.line_id] = line
    return OrderView(loaded.order, loaded.decision, lines)


def load_order(key: str, store: LedgerStore) -> OrderView:
    return view_of(store.load_order(key))
