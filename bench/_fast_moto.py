"""A moto server for volume runs: `TransactWriteItems` without its rollback copy of whole tables.

moto 5.2 deep-copies every touched table once per transaction item before applying a transaction (to restore it on a
cancelled one), so a transaction costs O(table size) on the emulator and a thousand-order run takes tens of minutes.
Here that copy of a Table returns the table itself: transactions that succeed behave exactly as before; a cancelled
one would keep the items it applied before the failing one. The ledger bench has one writer and no conflicts, and it
checks that no transaction was cancelled (the meter counts TransactionCanceledException answers), so its counts are
the same as on stock moto. Stock moto is used for the smaller volume, to show the emulator's time growth.

    python bench/_fast_moto.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import copy
import sys

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table


class _CopyWithoutTables:
    """The `copy` module as moto's DynamoDB backend sees it, except that a Table is not deep-copied."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


dynamodb_models.copy = _CopyWithoutTables()

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
