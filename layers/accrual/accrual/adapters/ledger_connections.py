"""The DynamoDB connections a worker's threads share: warmed once per process, one transaction connection per pool."""

from __future__ import annotations

import threading

from pynamodb.connection import Connection

from accrual.adapters.ledger_tables import (
    ORDER_TABLE_MODELS,
    BalanceRecord,
    ClickRecord,
    ControlRecord,
    OutboxRecord,
    bind_ledger_tables,
)
from accrual.settings import Settings


# ---- connections shared by a worker's threads ------------------------------------------------------------------------
def warm_connections(settings: Settings, threads: int = 1) -> None:
    """Create the shared PynamoDB connections' botocore clients in this thread (client creation goes through a
    botocore session, which is not thread-safe; using a created client from many threads is), with an HTTP
    connection pool as large as the threads that share them (botocore keeps 10, and a thread beyond them would open
    and drop a connection per call)."""
    bind_ledger_tables(settings)
    for model in {
        *ORDER_TABLE_MODELS,
        BalanceRecord,
        OutboxRecord,
        ClickRecord,
        ControlRecord,
    }:
        if getattr(model.Meta, "max_pool_connections", 10) < threads:
            model.Meta.max_pool_connections = threads
            model._connection = None
        _ = model._get_connection().connection.client


_transaction_connections: dict[tuple[str, str | None, int], Connection] = {}
_connections_lock = threading.Lock()


def transaction_connection(settings: Settings, threads: int) -> Connection:
    """One PynamoDB connection (one botocore client, its HTTP pool sized for the threads) shared by every ledger of
    the process for its transactions, kept across units and warm invocations: creating a client costs tens of
    milliseconds of CPU, which at 16 threads a unit would be seconds."""
    key = (settings.region, settings.dynamodb_host, max(threads, 10))
    with _connections_lock:
        if key not in _transaction_connections:
            connection = Connection(
                region=settings.region, host=settings.dynamodb_host, max_retry_attempts=8, max_pool_connections=key[2]
            )
            _ = connection.client
            _transaction_connections[key] = connection
        return _transaction_connections[key]
