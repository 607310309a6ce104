"""Random sequences of report lines, duplicates, reorderings, replays and confirmation runs against the real ledger
on the local moto server; after every step the balances equal a simple in-memory model and the audit is clean."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from accrual.composition import composition
from accrual.domain.models import OrderLine
from support.ledger import T0, balance_of, line, load_reference_data, wipe_ledger
from support.readers import audit

D = Decimal
USERS = {"alice": "EUR", "bob": "USD"}
EUR_PER_USD = D("0.90")
ORDERS = {"O1": "alice", "O2": "alice", "O3": "bob"}
HOLD = timedelta(days=1)  # hold_days of support.ledger.CONFIG
EARNING = {"paid", "received", "settled"}


def cents(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class ModelOrder:
    """What the ledger must hold for one order, computed the simple way: 5% of each earning line, no cap
    (amounts stay far below it), posted when every earning line is settled and the hold has passed."""

    user: str
    lines: dict[str, OrderLine] = field(default_factory=dict)
    confirmed: Decimal | None = None
    reversed: bool = False

    def earned(self) -> Decimal:
        return sum((cents(item.amount * D("0.05")) for item in self.lines.values() if item.status in EARNING), D("0"))

    def after_report(self) -> None:
        if self.confirmed is not None and not self.reversed and self.earned() < self.confirmed:
            self.confirmed = self.earned()
            self.reversed = self.confirmed == 0

    def after_confirm(self, now) -> None:
        if self.confirmed is not None or self.earned() == 0:
            return
        earning = [item for item in self.lines.values() if item.status in EARNING]
        if all(item.status == "settled" for item in earning) and max(item.status_at for item in earning) + HOLD <= now:
            self.confirmed = self.earned()

    def holding(self) -> tuple[Decimal, Decimal]:
        if self.confirmed is not None:
            return D("0"), self.confirmed
        return self.earned(), D("0")


class LedgerMachine(RuleBasedStateMachine):
    stack = None  # set by the test below: the provisioned local stack

    def __init__(self):
        super().__init__()
        wipe_ledger(self.stack)
        self.ledger = composition(self.stack).ledger()
        self.model = {order: ModelOrder(user) for order, user in ORDERS.items()}
        self.sent: list[OrderLine] = []
        self.now = T0
        self.tick = 0

    @initialize()
    def start(self):
        self.now = T0

    def _ingest(self, lines: list[OrderLine]) -> None:
        self.ledger.reconcile(lines, now=self.now)
        for item in lines:
            order = self.model[item.order_id]
            current = order.lines.get(item.line_id)
            if order.reversed:
                continue
            if current is None or item.status_at > current.status_at:
                order.lines[item.line_id] = item
            order.after_report()

    @rule(
        order=st.sampled_from(sorted(ORDERS)),
        sub_order=st.sampled_from(["1", "2"]),
        status=st.sampled_from(["paid", "received", "settled", "invalid"]),
        amount=st.sampled_from(["20.00", "33.33", "60.00", "100.00"]),
        hours=st.integers(min_value=0, max_value=120),
        duplicate=st.booleans(),
    )
    def report(self, order, sub_order, status, amount, hours, duplicate):
        self.tick += 1  # a unique status time per version: the partner never reports two versions at one instant
        at = T0 + timedelta(hours=hours, microseconds=self.tick)
        version = line(order, f"{order}-{sub_order}", status=status, at=at, user=ORDERS[order], amount=amount)
        self.sent.append(version)
        self._ingest([version, version] if duplicate else [version])

    @rule(data=st.data())
    def replay_an_earlier_line(self, data):
        if self.sent:
            self._ingest([data.draw(st.sampled_from(self.sent))])

    @rule(hours=st.integers(min_value=1, max_value=72))
    def confirm(self, hours):
        self.now = max(self.now, T0) + timedelta(hours=hours)
        self.ledger.confirm(now=self.now)
        for order in self.model.values():
            order.after_confirm(self.now)

    @rule()
    def confirm_again(self):
        self.ledger.confirm(now=self.now)
        for order in self.model.values():
            order.after_confirm(self.now)

    @invariant()
    def balances_match_the_model(self):
        for user, currency in USERS.items():
            pending = sum((order.holding()[0] for order in self.model.values() if order.user == user), D("0"))
            confirmed = sum((order.holding()[1] for order in self.model.values() if order.user == user), D("0"))
            got = balance_of(user)
            assert (got[0], got[1]) == (pending, confirmed), (user, got)
            if currency == "EUR":
                expected_eur = (
                    sum(
                        (
                            cents(order.holding()[0] * EUR_PER_USD)
                            for order in self.model.values()
                            if order.user == user
                        ),
                        D("0"),
                    ),
                    sum(
                        (
                            cents(order.holding()[1] * EUR_PER_USD)
                            for order in self.model.values()
                            if order.user == user
                        ),
                        D("0"),
                    ),
                )
                assert (got[2], got[3]) == expected_eur, (user, got)

    @invariant()
    def audit_is_clean(self):
        result = audit(self.stack)
        assert result["ok"], result["differences"]


@pytest.mark.slow
def test_the_ledger_converges_to_the_model_under_random_sequences(stack):
    load_reference_data(stack, users=USERS)
    LedgerMachine.stack = stack
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
