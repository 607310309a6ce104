"""The run summary of the ledger: what happened to the lines and orders of one run (reconcile, confirm, redecide).

A counter appears in the printed JSON once the run touched it (zero included), as it always has; two summaries add
up field by field (`+`), defined here once for every place that sums runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from accrual.domain.lifecycle import Holding, Transition
from accrual.domain.money import CENT


class RunCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    lines_received: int = 0  # lines given to reconcile
    lines_applied: int = 0  # line versions stored
    lines_unchanged: int = 0  # the same version again
    lines_stale: int = 0  # older than the stored version
    lines_moved: int = 0  # lines that left an order for another
    orders_due: int = 0  # orders the due index listed
    orders_changed: int = 0
    orders_failed: int = 0  # left as they were for the next run (no fx rate, contention, throttling, too large)
    journal_conflicts: int = 0  # a journal entry id taken with another payload: never passed off
    retries: int = 0  # lost races, retried
    chunks_retried: int = 0  # concurrent workers: chunks reconciled once more, alone, after contention
    moves_pending: int = 0
    moves_adjust: int = 0
    moves_post: int = 0
    moves_void: int = 0
    moves_reverse: int = 0
    notifications: int = 0
    pending_later_than_promised: int = 0
    cashback_pending_cents: int = 0  # USD cents that became pending (pending entries)
    cashback_confirmed_cents: int = 0  # USD cents confirmed (post entries)
    orders_negative_margin: int = 0  # orders that became pending paying more cashback than their commission
    confirmation_lag_minutes: int = 0  # summed over the confirmed orders: settlement to confirmation
    transitions_refused: int = 0
    orders_redecided: int = 0  # redecide: orders whose decision or holding changed under the current configuration
    orders_skipped_confirmed: int = 0  # redecide: confirmed (or later) orders, never touched
    claims_searched: int = 0  # open claims looked for in the ledger (after a reconcile, on a cycle)
    claims_failed: int = 0  # claims whose order could not be settled this run: searched again next run
    claims_open: int = 0  # claims still open after the search
    claims_matched: int = 0
    claims_resolved: int = 0
    claims_escalated: int = 0
    claims_rejected: int = 0

    def add(self, name: str, value: int = 1) -> None:
        setattr(self, name, getattr(self, name) + value)

    def move(self, transition: Transition, delta: Holding | None = None, margin_usd: Decimal | None = None) -> None:
        """One journal entry of this kind; with its money, the cashback accrued or confirmed and the orders that
        became pending with a negative margin (the dashboard's figures)."""
        self.add(f"moves_{transition.value}")
        if delta is None:
            return
        if transition == Transition.PENDING:
            self.add("cashback_pending_cents", int(delta.pending_usd / CENT))
            if margin_usd is not None and margin_usd < 0:
                self.add("orders_negative_margin")
        elif transition == Transition.POST:
            self.add("cashback_confirmed_cents", int(delta.confirmed_usd / CENT))

    def __add__(self, other: RunCounts) -> RunCounts:
        names = self.model_fields_set | other.model_fields_set
        return RunCounts(**{name: getattr(self, name) + getattr(other, name) for name in names})

    def merge(self, other: RunCounts) -> None:
        """Add `other` into this summary in place."""
        for name in other.model_fields_set:
            self.add(name, getattr(other, name))

    @property
    def unsettled(self) -> int:
        """Orders this run could not settle: a non-zero exit."""
        return self.orders_failed + self.journal_conflicts

    def as_dict(self) -> dict[str, int]:
        """The counters this run touched, as printed and returned."""
        return {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> RunCounts:
        return cls(**counts)

    @classmethod
    def total(cls, summaries: Iterable[RunCounts]) -> RunCounts:
        result = cls()
        for summary in summaries:
            result.merge(summary)
        return result
