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
result is the same as moto's whole-table rollback.

Queries that read what they ask for: moto answers every Query by sorting and filtering every item of the table, for
a table's own key as for a global secondary index, so a query costs O(table size) too (the ledger queries an order
and looks each new line up in `by_line`). Here a query is handed only its candidates: the items under its hash key
for the table's own key, and for a GSI the items a per-table index (GSI hash attribute -> value -> items) lists. The
index is built on the first query of a table and kept up to date by every write moto makes (put, update, delete, a
rolled back transaction); moto's own filtering, sorting and paging then run on the candidates unchanged. Measured
figures are in docs/limits.md and docs/local.md.

Notifications delivered at a constant cost: SNS-to-SQS delivery without the per-message costs that grow with the day
(`moto_messaging.py`).

    python -m accrual_dev.local.moto_serial -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import bisect
import copy
import threading
from collections.abc import Iterable
from typing import Any

import moto.backends as moto_backends
import moto.dynamodb.models as dynamodb_models
from moto.core.parse import QueryParser
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from accrual_dev.local import moto_messaging


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
            _reindex(table, (hash_value, range_value))
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


class _GsiIndex:
    """For one table: each GSI hash attribute's values -> the items holding that value (by their table key)."""

    def __init__(self, table: Table) -> None:
        self.attributes = sorted(
            {key["AttributeName"] for index in table.global_indexes for key in index.schema if key["KeyType"] == "HASH"}
        )
        self.by_value: dict[str, dict[Any, dict[Any, Any]]] = {name: {} for name in self.attributes}
        self.indexed: dict[Any, list[tuple[str, Any]]] = {}
        for item in _every_item(table):
            self.update(_item_key(item), item)

    def update(self, key: Any, item: Any) -> None:
        for name, value in self.indexed.pop(key, ()):
            holders = self.by_value[name].get(value)
            if holders is not None:
                holders.pop(key, None)
                if not holders:
                    del self.by_value[name][value]
        if item is None:
            return
        entries = [(name, item.attrs[name]) for name in self.attributes if item.attrs.get(name) is not None]
        for name, value in entries:
            self.by_value[name].setdefault(value, {})[key] = item
        if entries:
            self.indexed[key] = entries


def _every_item(table: Table) -> Iterable[Any]:
    for stored in table.items.values():
        yield from (stored.values() if table.range_key_attr else (stored,))


def _item_key(item: Any) -> Any:
    return item.hash_key, item.range_key


def _reindex(table: Table, key: Any) -> None:
    index = table.__dict__.get("_accrual_gsi_index")
    if index is not None:
        index.update(key, _stored(table, *key))


def _candidates(table: Table, hash_key: Any, index_name: str | None, conditions: list | None) -> list[Any] | None:
    """The only items a query can return, or None to let moto look at all of them."""
    if not index_name:
        if hash_key is None:
            return None
        stored = table.items.get(hash_key) if hash_key in table.items else None
        if stored is None:
            return []
        return list(stored.values()) if table.range_key_attr else [stored]
    if not conditions or len(conditions) != 1 or not any(index.name == index_name for index in table.global_indexes):
        return None
    index = table.__dict__.get("_accrual_gsi_index")
    if index is None:
        index = table.__dict__["_accrual_gsi_index"] = _GsiIndex(table)
    name, value = conditions[0]
    if name not in index.by_value:
        return None
    return list(index.by_value[name].get(value, {}).values())


_stock_query = Table.query
_stock_all_items = Table.all_items
_stock_put_item = Table.put_item
_stock_delete_item = Table.delete_item
_stock_update_item = DynamoDBBackend.update_item


def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    candidates = _candidates(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
    if candidates is None:
        return _stock_query(self, hash_key, *args, **kwargs)
    self.__dict__["_accrual_only"] = candidates
    try:
        return _stock_query(self, hash_key, *args, **kwargs)
    finally:
        self.__dict__.pop("_accrual_only", None)


def all_items(self: Table) -> Any:
    only = self.__dict__.get("_accrual_only")
    return list(only) if only is not None else _stock_all_items(self)


def put_item(self: Table, *args: Any, **kwargs: Any) -> Any:
    item = _stock_put_item(self, *args, **kwargs)
    _reindex(self, _item_key(item))
    return item


def delete_item(self: Table, hash_key: Any, range_key: Any) -> Any:
    item = _stock_delete_item(self, hash_key, range_key)
    if item is not None:
        _reindex(self, _item_key(item))
    return item


def update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return _stock_update_item(self, table_name, key, *args, **kwargs)
    finally:  # an update changes the item in place (or fails part way): index what is stored now
        entry = _key_of(self, {"Update": {"TableName": table_name, "Key": key}})
        if entry is not None:
            _reindex(entry[0], (entry[1], entry[2]))


_stock_transact_write_items = DynamoDBBackend.transact_write_items


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    undo = _ItemUndo(self, transact_items)
    try:
        _stock_transact_write_items(self, transact_items)
    except BaseException:
        undo.restore()
        raise


def without_table_copies() -> None:
    """Install the item-level rollback and the query candidates in this process's moto (the server process only)."""
    dynamodb_models.copy = _CopyWithoutTables()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]


class _SortedNames(dict[str, Any]):
    """A request's query parameters as a plain dict (moto reads werkzeug's combined form and query dicts, whose every
    lookup walks both), with its names sorted once."""

    def __init__(self, values: Any) -> None:
        super().__init__(values.to_dict() if hasattr(values, "to_dict") else values)
        self.sorted = sorted(self)

    def any_starting(self, prefix: str) -> bool:
        at = bisect.bisect_left(self.sorted, prefix)  # the names starting with prefix sort together, first from here
        return at < len(self.sorted) and self.sorted[at].startswith(prefix)


_stock_query_parse = QueryParser._do_parse


def _query_do_parse(self: QueryParser, request_dict: Any, shape: Any) -> Any:
    return _stock_query_parse(self, {**request_dict, "values": _SortedNames(request_dict["values"])}, shape)


def _query_gonna_recurse(self: QueryParser, query_params: Any, prefix: str) -> bool:
    if prefix == "":
        return False
    if isinstance(query_params, _SortedNames):
        return not query_params.any_starting(prefix)
    return not any(name.startswith(prefix) for name in query_params)


def _query_parameters_by_bisection() -> None:
    """moto's query-protocol parser asks, for each structure a request might hold, whether any parameter name starts
    with its prefix, by walking every name: O(names) a question, about O(names²) a request. A PublishBatch of ten
    notifications has some 110 names and asks about a hundred times (measured: 3.2 of the 14.8 ms the moto server
    spent on such a request, cProfile on). Here a request's names are sorted once and each question is a bisection;
    what the parser answers is unchanged."""
    QueryParser._do_parse = _query_do_parse  # type: ignore[method-assign]
    QueryParser._gonna_recurse = _query_gonna_recurse  # type: ignore[method-assign]


def _cached_module_list() -> None:
    """moto's dispatcher lists its own package folder (a directory read and about 200 stat calls) on every request to
    learn which services exist; the list does not change while the server runs."""
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument(
        "--stock-transactions",
        action="store_true",
        help="moto as it is: a whole-table copy per transaction item, every query over every item, SNS deliveries "
        "that cost more the more were delivered (to compare)",
    )
    args = parser.parse_args()
    if not args.stock_transactions:
        without_table_copies()
        moto_messaging.install()
        _query_parameters_by_bisection()
    _cached_module_list()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
