"""PynamoDB plumbing shared by every DynamoDB adapter: exact Decimal money, and binding a model to the table of the
current stack (names are known only at run time: they carry the stack's name)."""

from __future__ import annotations

from decimal import Decimal

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER
from pynamodb.models import Model

from accrual.settings import Settings


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read and written as Decimal. PynamoDB's NumberAttribute goes through float (its issue
    #551), which would lose cents; this keeps the exact text both ways, also in ADD/SET update expressions."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be Decimal, got {type(value).__name__}: {value!r}")
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


def bind_model(model: type[Model], table_name: str, settings: Settings) -> None:
    """Point a model at `table_name` on the configured DynamoDB endpoint (AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL
    locally, AWS when deployed)."""
    meta = model.Meta
    if (getattr(meta, "table_name", None), getattr(meta, "host", None), getattr(meta, "region", None)) == (
        table_name,
        settings.dynamodb_host,
        settings.region,
    ):
        return
    meta.table_name = table_name
    meta.host = settings.dynamodb_host
    meta.region = settings.region
    meta.max_retry_attempts = 8
    model._connection = None  # the cached connection belongs to the previous table
