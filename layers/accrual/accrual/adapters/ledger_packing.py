"""One item per order: the order item carries its lines and its decision, compressed together in one binary attribute
(`packed`), beside the few attributes that keys and indexes need in plain form. A transactional write is charged
2 units per started KB, so an order change that wrote the order, its decision and each changed line (about 7 units
for an order of 1.7 lines) writes one item of well under 1 KB (2 units).

The packed text is three JSON texts, one a line: the order's own fields (those not kept plain), the decision exactly
as the service gave it (the audit compares it byte for byte with a recomputed one), and the lines, each stored
without what it repeats of the order (its partner, its order number) and without the fields at their defaults,
then rebuilt on read into the line's JSON as the model writes it. The text is compressed with zlib and a preset
dictionary of the decision's and lines' vocabulary (`ledger_words.py`), named by the first byte: most of an order's
text is that vocabulary, which the dictionary leaves out of each item.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accrual.adapters.ledger_words import WORDS_1
from accrual.domain.models import OrderLine
from accrual.ports.ledger import ORDER_FIELDS, LoadedOrder, OrderItem, OrderTooLarge, StoredLine

# The line fields a packed line leaves out when they hold these values, as JSON: frozen with the form (not read from
# the model), so that a default changed in the model later cannot change what a stored line held.
LINE_DEFAULTS_1: dict[str, Any] = {
    **dict.fromkeys(
        (
            "partner_order_id",
            "sub_id",
            "status_detail",
            "paid_at",
            "settled_at",
            "tax",
            "usd_rate",
            "category_id",
            "product_id",
            "shop_id",
            "promo_section",
            "promo_code",
            "promo_code_kind",
            "buyer_account",
            "added_to_cart_at",
            "ship_to_country",
        )
    ),
    "shipping": "0",
    "currency": "USD",
    "commission": "0",
    "is_affiliate": True,
    "is_hot": False,
    "new_user_coupon": False,
    "dispute": False,
    "price_adjusted": False,
}
# the first byte of a packed text: the form, that is the dictionary it was compressed with and the line defaults
FORMS = {1: (WORDS_1, LINE_DEFAULTS_1)}
FORM = 1  # the form new items are written in
MAX_PACKED_BYTES = 350 * 1024  # DynamoDB's item limit is 400 KB
# Kept plain on the order item: keys, the indexes' keys and what the batched reads project (besides pk, sk, version).
PLAIN_FIELDS = ("user_id", "sub_id", "ordered_at", "partner_order_id", "due_at")
_DECIMALS = frozenset({"fx_rate", "pending_usd", "confirmed_usd", "pending", "confirmed"})
_PACKED_FIELDS = tuple(name for name in ORDER_FIELDS if name not in {*PLAIN_FIELDS, "partner", "order_id", "version"})


@dataclass(frozen=True)
class PackedLine:
    """A stored line with its compact form (what the packed text holds), kept so that repacking an order does not
    parse its unchanged lines again."""

    line_id: str
    stored: StoredLine
    compact: dict[str, Any] | None = None  # None: made from `stored` when the order is packed


def stored_line(body: str, moved_to: str | None) -> PackedLine:
    """A line read in the earlier form (an item of its own)."""
    return PackedLine(json.loads(body)["line_id"], StoredLine(body, moved_to))


def written_line(key: str, line: OrderLine, moved_to: str | None) -> PackedLine:
    return PackedLine(line.line_id, StoredLine(line.model_dump_json(), moved_to), compact_line(key, line, moved_to))


def _partner_and_number(key: str) -> tuple[str, str]:
    partner, order_id = key.split("#", 1)
    return partner, order_id


def compact_line(key: str, line: OrderLine, moved_to: str | None) -> dict[str, Any]:
    """The line without its partner, without its order number when it is the order's, and without the fields at
    their defaults (compared as JSON text, so "0.00" is kept where the default is "0")."""
    _, order_id = _partner_and_number(key)
    values = line.model_dump(mode="json")
    compact = {
        name: value
        for name, value in values.items()
        if name != "partner" and not (name in LINE_DEFAULTS_1 and value == LINE_DEFAULTS_1[name])
    }
    if compact.get("order_id") == order_id:
        del compact["order_id"]
    if moved_to is not None:
        compact["moved_to"] = moved_to
    return compact


def line_of(key: str, compact: Mapping[str, Any], defaults: Mapping[str, Any] = LINE_DEFAULTS_1) -> PackedLine:
    partner, order_id = _partner_and_number(key)
    values = {**defaults, "partner": partner, "order_id": order_id, **compact}
    moved_to = values.pop("moved_to", None)
    line = OrderLine.model_validate(values)
    return PackedLine(line.line_id, StoredLine(line.model_dump_json(), moved_to), dict(compact))


def pack_order(order: OrderItem, decision: str | None, lines: Sequence[PackedLine]) -> bytes:
    """The packed attribute of an order item (raises OrderTooLarge above MAX_PACKED_BYTES)."""
    fields: dict[str, Any] = {}
    for name in _PACKED_FIELDS:
        value = getattr(order, name)
        if value is not None:
            fields[name] = str(value) if name in _DECIMALS else value
    if order.partner_order_id is not None and plain_partner_order_id(order) is None:
        fields["partner_order_id"] = order.partner_order_id
    text = "\n".join(
        (
            json.dumps(fields, separators=(",", ":"), ensure_ascii=False),
            decision or "",
            json.dumps(
                [_compact(order.key, line) for line in sorted(lines, key=lambda item: item.line_id)],
                separators=(",", ":"),
                ensure_ascii=False,
            ),
        )
    )
    packer = zlib.compressobj(9, zdict=FORMS[FORM][0])
    packed = bytes([FORM]) + packer.compress(text.encode()) + packer.flush()
    if len(packed) > MAX_PACKED_BYTES:
        raise OrderTooLarge(f"order {order.key}: its lines and decision are {len(packed)} bytes even compressed")
    return packed


def plain_partner_order_id(order: OrderItem) -> str | None:
    """The partner's order number as the index sees it: only when it is not the order number itself (then the key
    finds the order)."""
    return None if order.partner_order_id == order.order_id else order.partner_order_id


def _compact(key: str, line: PackedLine) -> dict[str, Any]:
    if line.compact is not None:
        return line.compact
    return compact_line(key, OrderLine.model_validate_json(line.stored.body), line.stored.moved_to)


def unpack_order(
    key: str, plain: Mapping[str, Any], packed: bytes, *, with_lines: bool = True
) -> tuple[OrderItem, str | None, list[PackedLine]]:
    """The order, its decision and its lines from a packed item (`plain`: the plain attributes, deserialised)."""
    words, defaults = FORMS[packed[0]]
    unpacker = zlib.decompressobj(zdict=words)
    text = (unpacker.decompress(packed[1:]) + unpacker.flush()).decode()
    fields_text, decision, lines_text = text.split("\n", 2)
    fields = json.loads(fields_text)
    for name in _DECIMALS & fields.keys():
        fields[name] = Decimal(fields[name])
    partner, order_id = _partner_and_number(key)
    values: dict[str, Any] = {name: plain.get(name) for name in PLAIN_FIELDS}
    order = OrderItem(key, partner=partner, order_id=order_id, version=plain.get("version"), **values)
    for name, value in fields.items():
        setattr(order, name, value)
    if order.ordered_at is None:
        order.ordered_at = ""
    lines = [line_of(key, compact, defaults) for compact in json.loads(lines_text)] if with_lines else []
    return order, decision or None, lines


def loaded(order: OrderItem | None, decision: str | None, lines: Sequence[PackedLine]) -> LoadedOrder:
    return LoadedOrder(order, decision, tuple(line.stored for line in lines))
