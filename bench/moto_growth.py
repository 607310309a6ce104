"""How moto's time per call grows with the table's size (an emulator effect, not the design's): stock moto, the
stack's orders table filled through BatchWriteItem with order-sized items, then at each size a few transactions
shaped like the ledger's first write of an order (ORDER + 2 LINE + ENTRY on the orders table, the balance ADD, the
outbox record: 6 items), and a consistent Query and GetItem of one order.

moto deep-copies the whole table once per transaction item (`moto/dynamodb/models/__init__.py`,
`transact_write_items`), so a transaction costs O(items in the table × items in the transaction) there; DynamoDB's
cost per transaction does not depend on the table's size.

    .venv/bin/python bench/moto_growth.py [--sizes 0,1000,2000,4000] [--transactions 8]
"""

from __future__ import annotations

import argparse
import time
import uuid

import boto3

from _common import LocalStack, save_results, table

BODY = "x" * 600  # about the size of a stored order line / decision


def fill(dynamodb, table_name: str, start: int, stop: int) -> None:
    for first in range(start, stop, 25):
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": f"filler#{number // 3}"},
                        "sk": {"S": f"LINE#{number}"},
                        "line_ref": {"S": f"filler#{number}"},
                        "body": {"S": BODY},
                    }
                }
            }
            for number in range(first, min(first + 25, stop))
        ]
        dynamodb.batch_write_item(RequestItems={table_name: items})


def transaction(dynamodb, settings, number: int) -> None:
    key = f"probe#{number}#{uuid.uuid4().hex[:6]}"
    orders = settings.orders_table
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": orders,
                    "Item": {"pk": {"S": key}, "sk": {"S": "ORDER"}, "body": {"S": BODY}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": {"TableName": orders, "Item": {"pk": {"S": key}, "sk": {"S": "LINE#1"}, "body": {"S": BODY}}}},
            {"Put": {"TableName": orders, "Item": {"pk": {"S": key}, "sk": {"S": "LINE#2"}, "body": {"S": BODY}}}},
            {
                "Put": {
                    "TableName": orders,
                    "Item": {"pk": {"S": key}, "sk": {"S": "ENTRY#000001#credit"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": settings.balances_table,
                    "Key": {"user_id": {"S": f"u{number % 50}"}},
                    "UpdateExpression": "ADD pending_usd :v",
                    "ExpressionAttributeValues": {":v": {"N": "1.25"}},
                }
            },
            {
                "Put": {
                    "TableName": settings.outbox_table,
                    "Item": {"event_id": {"S": key}, "body": {"S": BODY}},
                    "ConditionExpression": "attribute_not_exists(event_id)",
                }
            },
        ]
    )


def run(sizes: list[int], transactions: int) -> dict:
    out = {"emulator": "moto (stock)", "transaction_items": 6, "orders_table_items_in_transaction": 4, "sizes": {}}
    with LocalStack() as local:
        settings, _, _, _ = local.stack(f"growth{uuid.uuid4().hex[:6]}")
        dynamodb = boto3.client("dynamodb", region_name=settings.region)
        filled = 0
        for size in sizes:
            fill(dynamodb, settings.orders_table, filled, size)
            filled = max(filled, size)
            started = time.perf_counter()
            for number in range(transactions):
                transaction(dynamodb, settings, size * 10 + number)
            per_txn = (time.perf_counter() - started) / transactions
            started = time.perf_counter()
            for number in range(10):
                dynamodb.query(
                    TableName=settings.orders_table,
                    ConsistentRead=True,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": {"S": f"filler#{number}"}},
                )
            per_query = (time.perf_counter() - started) / 10
            started = time.perf_counter()
            for number in range(10):
                dynamodb.get_item(
                    TableName=settings.orders_table,
                    ConsistentRead=True,
                    Key={"pk": {"S": f"filler#{number}"}, "sk": {"S": f"LINE#{number * 3}"}},
                )
            per_get = (time.perf_counter() - started) / 10
            out["sizes"][str(size)] = {
                "ms_per_transaction": round(per_txn * 1000, 1),
                "ms_per_query": round(per_query * 1000, 1),
                "ms_per_get_item": round(per_get * 1000, 1),
            }
            print(f"  {size:>6} items: {per_txn * 1000:.0f} ms / transaction", flush=True)
    return out


def report(out: dict) -> str:
    rows = [
        [size, values["ms_per_transaction"], values["ms_per_query"], values["ms_per_get_item"]]
        for size, values in out["sizes"].items()
    ]
    return table(
        rows,
        ["orders-table items", "ms / 6-item TransactWriteItems", "ms / Query", "ms / GetItem"],
        title="\n-- Emulator only: stock moto time per call vs table size (not a property of the design) --",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,2000,4000")
    parser.add_argument("--transactions", type=int, default=8)
    args = parser.parse_args()
    out = run([int(size) for size in args.sizes.split(",")], args.transactions)
    save_results("moto_growth", out)
    print(report(out))


if __name__ == "__main__":
    main()
