"""moto's server, answering one request at a time, with transactions that cost what they touch.

One request at a time: moto's threaded server runs requests side by side, and a cancelled TransactWriteItems rolls
back by putting back whole-table copies taken when it started: a transaction another client committed in between is
silently undone (measured: three concurrent runs over the same lines lost a credit about one time in six). DynamoDB
keeps each transaction atomic; serving requests one at a time gives moto the same property while clients stay
concurrent, so the race tests exercise the ledger's conditions rather than the emulator's rollback.

Transactions without whole-table copies: moto 5.2 deep-copies every table a transaction names, once per item, before
applying it, only to put the copy back if the transaction is cancelled. That makes one transaction cost O(table
size): 200 orders took 0.8 GB and 20 s, 1,100 orders 17 GB. Here the table copy is skipped and the rollback is kept
another way: before the transaction runs, the items it names are saved (a deep copy of each, at most 100), and a
transaction that raises puts exactly those items back (or removes the ones it created) and drops the stream records it
added. Since requests are served one at a time, nothing else can have changed those items in between, so the
result is the same as moto's whole-table rollback. Measured figures are in the README ("Local AWS").

    python -m accrual_dev.local.moto_serial -H 127.0.0.1 -p PORT
"""
from __future__ import annotations

import argparse
import copy
import threading
from collections.abc import Iterable
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialised(app):
    lock = threading.Lock()

    def serve_one_at_a_time(environ, start_response) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))  # the whole response is made inside the lock

    return serve_one_at_a_time


class _CopyWithoutTables:
    """The `copy` module as moto's DynamoDB backend sees it, except that a Table is not deep-copied (the only
    deep copy of a Table there is transact_write_items' rollback copy; `_ItemUndo` replaces it)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


class _ItemUndo:
    """The items a transaction names, as they were before it ran, and each table's stream length."""

    def __init__(self, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        self.saved: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        self.streams: dict[int, tuple[Table, int]] = {}
        for entry in transact_items if isinstance(transact_items, list) else []:
            key = _key_of(backend, entry)
            if key is None:
                continue  # moto refuses such an entry before writing anything for it
            table, hash_value, range_value = key
            self.saved.append((table, hash_value, range_value, copy.deepcopy(_stored(table, hash_value, range_value))))
            if table.stream_shard is not None:
                self.streams.setdefault(id(table), (table, len(table.stream_shard.items)))

    def restore(self) -> None:
        # In reverse, so that an item named twice (moto refuses that, after writing the first) ends as it was.
        for table, hash_value, range_value, item in reversed(self.saved):
            if range_value is not None:
                bucket = table.items[hash_value]
                if item is None:
                    bucket.pop(range_value, None)
                    if not bucket:
                        table.items.pop(hash_value, None)
                else:
                    bucket[range_value] = item
            elif item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        for table, length in self.streams.values():
            shard = table.stream_shard
            if shard is not None and len(shard.items) >= length:
                del shard.items[length:]  # a cancelled transaction leaves no stream records


def _key_of(backend: DynamoDBBackend, entry: Any) -> tuple[Table, DynamoType, DynamoType | None] | None:
    try:
        _, operation = next(iter(entry.items()))
        table = backend.tables[operation["TableName"]]
        attributes = operation["Item"] if "Item" in operation else operation["Key"]
        hash_value = DynamoType(attributes[table.hash_key_attr])
        range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    except (AttributeError, KeyError, StopIteration, TypeError, ValueError):
        return None
    return table, hash_value, range_value


def _stored(table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> Any:
    if range_value is not None:
        return table.items.get(hash_value, {}).get(range_value) if hash_value in table.items else None
    return table.items.get(hash_value)


_stock_transact_write_items = DynamoDBBackend.transact_write_items


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    undo = _ItemUndo(self, transact_items)
    try:
        _stock_transact_write_items(self, transact_items)
    except BaseException:
        undo.restore()
        raise


def without_table_copies() -> None:
    """Install the item-level rollback in this process's moto (the server process only)."""
    dynamodb_models.copy = _CopyWithoutTables()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--stock-transactions", action="store_true",
                        help="keep moto's whole-table copy per transaction item (to compare)")
    args = parser.parse_args()
    if not args.stock_transactions:
        without_table_copies()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
