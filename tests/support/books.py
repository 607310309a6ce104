"""A month of orders with answers worked out by hand, for the month's report and its HTML."""

from __future__ import annotations

from datetime import timedelta

from accrual.service.ledger import Ledger
from support.ledger import T0, line
from support.memory import memory_ledger

SETTLED = T0 + timedelta(days=10)
HOLD = timedelta(days=1)  # the test configuration's hold for aliexpress


def march_ledger() -> Ledger:
    """March 2026 (T0 is 1 March, 11:00 UTC), every order 100.00 USD at 5% (5.00 cashback) unless said otherwise:

    A  alice (EUR 0.90)  commission 7.00         pending                     margin  2.00
    B  bob               commission 1.00         settled, confirmed          margin -4.00 (negative)
    C  alice             shop plaza              declined SHOP_EXCLUDED, never pending
    D  bob               commission 3.00         pending 5.00, then invalid: declined PARTNER_INVALID (5.00 voided)
    E  alice (EUR)       commission 6.00         confirmed, then invalid: reversed (5.00, 4.50 EUR clawed back)
    F  bob               200.00, shop plaza on one of two lines: earns 5.00 on L1, commission 2.00 + 9.00 (excluded)
    G  bob               commission 9.00         ordered 28 February: not in March
    H  bob               partner admitad, no rate card: declined NO_RATE_CARD (shop s1)
    """
    ledger = memory_ledger(partners=["aliexpress", "admitad"])
    now = T0 + timedelta(hours=2)
    ledger.reconcile(
        [
            line("A", commission="7.00"),
            line("B", user="bob", commission="1.00"),
            line("C", shop_id="plaza"),
            line("D", user="bob", commission="3.00"),
            line("E", commission="6.00"),
            line("F", "F-1", user="bob", commission="2.00"),
            line("F", "F-2", user="bob", shop_id="plaza", commission="9.00"),
            line("H", user="bob", partner="admitad"),
        ],
        now=now,
    )
    february = T0 - timedelta(days=1)
    ledger.reconcile([line("G", user="bob", commission="9.00", ordered_at=february.isoformat())], now=now)
    ledger.reconcile(
        [
            line("B", user="bob", commission="1.00", status="settled", at=SETTLED),
            line("E", commission="6.00", status="settled", at=SETTLED),
            line("D", user="bob", commission="3.00", status="invalid", at=SETTLED),
        ],
        now=SETTLED,
    )
    ledger.confirm(now=SETTLED + HOLD + timedelta(hours=3))
    ledger.reconcile([line("E", commission="6.00", status="invalid", at=SETTLED + timedelta(days=3))], now=SETTLED)
    return ledger
