"""The ports: every outside thing a service uses, as a Protocol, with the values they exchange.

Services import these and the domain only; `accrual/adapters/` implements them on DynamoDB, S3, SQS, SNS and SSM, and
`accrual.composition` builds the adapters once per process and hands them to the services. The tests hold in-memory
fakes of every port to the same behaviour as its adapter (tests/integration/test_store_agreement.py).
"""

from accrual.ports.claims import ClaimsStore
from accrual.ports.clock import Clock
from accrual.ports.ledger import (
    DUE_SHARDS,
    ORDER_FIELDS,
    BalanceDelta,
    JournalConflict,
    JournalEntry,
    LedgerStore,
    LineWrite,
    LoadedOrder,
    LostRace,
    OrderChange,
    OrderItem,
    OrderTooLarge,
    OutboxMessage,
    StoredBalance,
    StoredLine,
    StoredRefusal,
    journal_entry_id,
    parse_utc,
    utc_text,
)
from accrual.ports.notify import NotificationPublisher
from accrual.ports.reports import Cursor, PartnerDirectory, PartnerState, ReportArchive, StoredQuarantine
from accrual.ports.work import QueueDepth, QueuedMessage, UnitFailure, UnitLog, UnitOutcome, WorkQueue

__all__ = [
    "DUE_SHARDS",
    "ORDER_FIELDS",
    "BalanceDelta",
    "ClaimsStore",
    "Clock",
    "Cursor",
    "UnitLog",
    "JournalConflict",
    "JournalEntry",
    "LedgerStore",
    "LineWrite",
    "LoadedOrder",
    "LostRace",
    "NotificationPublisher",
    "OrderChange",
    "OrderItem",
    "OrderTooLarge",
    "OutboxMessage",
    "PartnerDirectory",
    "PartnerState",
    "QueueDepth",
    "QueuedMessage",
    "ReportArchive",
    "StoredBalance",
    "StoredLine",
    "StoredQuarantine",
    "StoredRefusal",
    "UnitFailure",
    "UnitOutcome",
    "WorkQueue",
    "journal_entry_id",
    "parse_utc",
    "utc_text",
]
