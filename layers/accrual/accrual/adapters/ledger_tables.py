"""The ledger's DynamoDB items, as PynamoDB models. Key design (README, "Data model"):

Orders table, one partition per order (`pk` = partner#order_id):
  sk ORDER                      the order: state, holding, version, and (packed) its lines and decision
  sk LINE#<line_id>             earlier form: the latest version of one report line (GSI by_line)
  sk ORDER#DECISION             earlier form: the decision with its trail
                                (lines, order and decision: one Query, sk between LINE# and ORDER#DECISION)
  sk ENTRY#<seq>#<transition>   an immutable journal entry (a move of money)
  sk REFUSED#<line_id>#<at>     a transition that is not allowed, recorded and ignored
  GSI by_partner_order_id                  explain and claims by the partner's order number (the store's: the key)
  GSI due (due_shard, due_at)              sparse: orders the confirmation cycle must look at, by time
Balances table: one item per user (pending and confirmed, USD and account currency), changed only by ADD in the
  same transaction as the journal entry that explains the change.
Outbox table: one item per notification not yet published, written in that same transaction and deleted once
  published: the table is the sweep's work list (no index) and its stream feeds the deployed relay.
Clicks table: by sub_id. Control table: configuration versions, the new-user-coupon registry, cursors, quarantine.
"""

from __future__ import annotations

import zlib

from pynamodb.attributes import BinaryAttribute, ListAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from accrual.adapters.pynamo import DecimalAttribute, bind_model
from accrual.ports.ledger import OrderTooLarge
from accrual.settings import Settings

ORDER_SK = "ORDER"
# A write is charged per started KB (twice in a transaction): a text longer than this is stored zlib-compressed, which
# takes a decision trail of 2.5 KB (6 write units in a transaction) to under 1 KB (2 units).
COMPRESS_ABOVE = 512
MAX_DECISION_BYTES = 350 * 1024  # DynamoDB's item limit is 400 KB


def pack_text(text: str) -> tuple[str | None, bytes | None]:
    """A text as it is stored: (plain, None) when short, (None, zlib) above COMPRESS_ABOVE bytes."""
    raw = text.encode()
    if len(raw) <= COMPRESS_ABOVE:
        return text, None
    return None, zlib.compress(raw, 6)


def unpack_text(plain: str | None, packed: bytes | None) -> str:
    """The text of either stored form (items written before compression hold the plain form)."""
    if plain is not None:
        return plain
    if packed is None:
        raise ValueError("an item with neither a plain nor a compressed body")
    return zlib.decompress(packed).decode()


SHARED_PREFIX = "SHARED#"  # an outbox record holding several notifications (OutboxRecord)

DECISION_SK = "ORDER#DECISION"
LINE_PREFIX = "LINE#"
# Written before a large order's lines are written ahead of its transaction (they do not fit in it), with the order
# version that transaction writes over: while the order item is not past that version, the order is read with the
# Query, which sees lines its item does not list yet. (Never deleted: no role may delete from the orders table.)
FACTS_SK = "ORDER#FACTS"
# A partner line's claim: pk CLAIM#<partner>#<line_id>, sk CLAIM, `homes` the orders that may hold it live (a
# superset: written before the transaction that places the line). Read in batches instead of the by_line index.
CLAIM_PREFIX = "CLAIM#"
CLAIM_SK = "CLAIM"
MIGRATION_PK = "MIGRATION"  # control table: LINE_CLAIMS once every stored line has its claim
LINE_CLAIMS = "LINE_CLAIMS"
PACKED_ORDERS = "PACKED_ORDERS"  # control table: every order item is of the packed form (`accrual migrate`)


class _Index(GlobalSecondaryIndex):
    class Meta:
        projection = KeysOnlyProjection()


class ByPartnerOrderId(_Index):
    class Meta(_Index.Meta):
        index_name = "by_partner_order_id"

    partner_order_id = UnicodeAttribute(hash_key=True)


class Due(_Index):
    class Meta(_Index.Meta):
        index_name = "due"

    due_shard = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class ByLine(_Index):
    class Meta(_Index.Meta):
        index_name = "by_line"

    line_ref = UnicodeAttribute(hash_key=True)


class OrderRecord(Model):
    """The order item. Written now in one form (`packed`: its lines, its decision and its other fields compressed
    together, ledger_packing.py) beside the plain attributes its keys and indexes need; items written before hold
    every field in plain form, their decision and lines in items of their own, and are read as they are."""

    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="ORDER")
    user_id = UnicodeAttribute(null=True)
    sub_id = UnicodeAttribute(null=True)
    ordered_at = UnicodeAttribute()
    partner_order_id = UnicodeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    packed = BinaryAttribute(null=True, legacy_encoding=False)  # the order, its decision and lines (one form byte)
    version = VersionAttribute()
    # the earlier form's plain fields (kept in `packed` now)
    partner = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)
    decided_at = UnicodeAttribute(null=True)  # the `now` the decision was made at (expiry depends on it)
    review_accounts = ListAttribute(of=UnicodeAttribute, null=True)  # the multi-account rule's input
    review = UnicodeAttribute(null=True)  # an operator's verdict on an order held for review
    review_user = UnicodeAttribute(null=True)  # the shopper an operator gave an order in attribution conflict
    claims = UnicodeAttribute(null=True)  # the missing-cashback claims recorded on the order (JSON)
    lines_digest = UnicodeAttribute(null=True)  # of the line versions the order was decided from
    account_currency = UnicodeAttribute(null=True)
    fx_rate = DecimalAttribute(null=True)  # fixed when the amount was first credited, used for every later move
    fx_day = UnicodeAttribute(null=True)
    pending_usd = DecimalAttribute(null=True)
    confirmed_usd = DecimalAttribute(null=True)
    pending = DecimalAttribute(null=True)
    confirmed = DecimalAttribute(null=True)
    entries = NumberAttribute(null=True)  # journal entries written so far: the next entry's sequence number
    updated_at = UnicodeAttribute(null=True)
    line_ids = ListAttribute(of=UnicodeAttribute, null=True)  # every line item of the order (batch reads); None: Query

    by_partner_order_id = ByPartnerOrderId()
    due = Due()


class DecisionRecord(Model):
    """The order's decision (OrderDecision.to_dict() as JSON): the trail, kept beside the order rather than in it,
    so the frequent small changes of the order (its state, its due time) do not rewrite kilobytes of trail. Stored
    compressed above COMPRESS_ABOVE bytes; `text` is the JSON whichever form the item has."""

    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=DECISION_SK)
    body = UnicodeAttribute(null=True)
    body_z = BinaryAttribute(null=True, legacy_encoding=False)  # zlib of a body above COMPRESS_ABOVE bytes

    @classmethod
    def of(cls, key: str, text: str) -> DecisionRecord:
        """A decision item, compressed above COMPRESS_ABOVE bytes (fewer write units, and the item stays under
        DynamoDB's 400 KB however many lines the order has)."""
        plain, packed = pack_text(text)
        if packed is not None and len(packed) > MAX_DECISION_BYTES:
            raise OrderTooLarge(f"order {key}: its decision is {len(packed)} bytes even compressed")
        return cls(key, DECISION_SK, body=plain, body_z=packed)

    @property
    def text(self) -> str:
        return unpack_text(self.body, self.body_z)


class LineRecord(Model):
    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # partner#line_id, the by_line index's key: written only while the orders table's lines are not all claimed
    line_ref = UnicodeAttribute(null=True)
    moved_to = UnicodeAttribute(null=True)  # set when the line left this order for another: the order ignores it
    status = UnicodeAttribute()
    status_at = UnicodeAttribute()
    body = UnicodeAttribute()  # the normalised line as JSON

    by_line = ByLine()


class FactsRecord(Model):
    """The FACTS_SK marker of an order whose lines are being written ahead of its transaction."""

    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=FACTS_SK)
    version = NumberAttribute()  # the order version the transaction after the facts writes over (0: a new order)


class JournalEntryRecord(Model):
    """A move of money: immutable, written once under a deterministic id (order, sequence, transition)."""

    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entry_id = UnicodeAttribute()
    transition = UnicodeAttribute()
    user_id = UnicodeAttribute()
    account_currency = UnicodeAttribute()
    fx_rate = DecimalAttribute()
    pending_usd = DecimalAttribute()
    confirmed_usd = DecimalAttribute()
    pending = DecimalAttribute()
    confirmed = DecimalAttribute()
    state_from = UnicodeAttribute(null=True)
    state_to = UnicodeAttribute()
    digest = UnicodeAttribute()  # of the payload without times: same id + different digest is a conflict
    at = UnicodeAttribute()
    fact_at = UnicodeAttribute(null=True)  # when the fact behind the move happened (the explanation's timeline)


class RefusedRecord(Model):
    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    reason = UnicodeAttribute()
    state = UnicodeAttribute()
    body = UnicodeAttribute(null=True)
    at = UnicodeAttribute()


class BalanceRecord(Model):
    class Meta:
        table_name = None

    user_id = UnicodeAttribute(hash_key=True)
    account_currency = UnicodeAttribute(null=True)
    pending_usd = DecimalAttribute(null=True)
    confirmed_usd = DecimalAttribute(null=True)
    pending = DecimalAttribute(null=True)
    confirmed = DecimalAttribute(null=True)


class OutboxRecord(Model):
    """A notification until published. `body` is the versioned JSON message, fixed when the change
    was made; it is stored compressed above COMPRESS_ABOVE bytes (`plain_body` or `body_z`).

    A shared record (`shared_z`) holds the notifications of one transaction together, as compressed JSON: one item
    written and one removed for them all rather than one each (each outbox write also makes a stream record). Its
    `event_id` is SHARED_PREFIX + its first notification's id, its `created_at` the latest of theirs."""

    class Meta:
        table_name = None

    event_id = UnicodeAttribute(hash_key=True)
    event_type = UnicodeAttribute(null=True)  # the three are a single notification's (not a shared record's)
    user_id = UnicodeAttribute(null=True)
    attributes = UnicodeAttribute(null=True)  # SNS message attributes as JSON {name: value}
    plain_body = UnicodeAttribute(attr_name="body", null=True)
    body_z = BinaryAttribute(null=True, legacy_encoding=False)
    shared_z = BinaryAttribute(null=True, legacy_encoding=False)
    created_at = UnicodeAttribute()
    # The earlier form marked a published event (these three) and kept it until TTL removed it; publishing now
    # deletes it. Still read so that the sweep passes over those records until they expire.
    published_at = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)

    def __init__(
        self, hash_key=None, range_key=None, _user_instantiated=True, *, body: str | None = None, **attributes
    ):
        super().__init__(hash_key, range_key, _user_instantiated, **attributes)
        if body is not None:
            self.body = body

    @property
    def body(self) -> str:
        return unpack_text(self.plain_body, self.body_z)

    @body.setter
    def body(self, text: str) -> None:
        self.plain_body, self.body_z = pack_text(text)


class ClickRecord(Model):
    class Meta:
        table_name = None

    sub_id = UnicodeAttribute(hash_key=True)
    body = UnicodeAttribute()  # the Click as JSON


class ControlRecord(Model):
    """Configuration versions (pk CONFIG), the current one (pk CONFIG_CURRENT), the new-user-coupon registry
    (pk NEW_USER_COUPON#<user_id>, sk the store account) and each shopper's one account currency (pk USER#<user_id>,
    sk ACCOUNT_CURRENCY, body the ISO 4217 code, written once)."""

    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    body = UnicodeAttribute(null=True)
    at = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)  # a configuration version loaded with --force-fx: the operator's reason


ORDER_TABLE_MODELS = (OrderRecord, DecisionRecord, LineRecord, FactsRecord, JournalEntryRecord, RefusedRecord)


def load_order_items(key: str) -> tuple[OrderRecord | None, DecisionRecord | None, list[LineRecord]]:
    """The order, its decision and its lines in one strongly consistent Query (they sort next to each other;
    the journal and refusals sort outside the range)."""
    connection = OrderRecord._get_connection()
    order: OrderRecord | None = None
    decision: DecisionRecord | None = None
    lines: list[LineRecord] = []
    start = None
    while True:
        page = connection.query(
            key,
            range_key_condition=OrderRecord.sk.between(LINE_PREFIX, DECISION_SK),
            consistent_read=True,
            exclusive_start_key=start,
        )
        for item in page.get("Items", []):
            order, decision = order_part(item, order, decision, lines)
        start = page.get("LastEvaluatedKey")
        if not start:
            return order, decision, lines


def order_part(
    item: dict, order: OrderRecord | None, decision: DecisionRecord | None, lines: list[LineRecord]
) -> tuple[OrderRecord | None, DecisionRecord | None]:
    """Place one raw item of an order's partition: the order or its decision (returned), or a line (appended)."""
    sort_key = item["sk"]["S"]
    if sort_key == ORDER_SK:
        return OrderRecord.from_raw_data(item), decision
    if sort_key == DECISION_SK:
        return order, DecisionRecord.from_raw_data(item)
    lines.append(LineRecord.from_raw_data(item))
    return order, decision


def bind_ledger_tables(settings: Settings) -> None:
    for model in ORDER_TABLE_MODELS:
        bind_model(model, settings.orders_table, settings)
    bind_model(BalanceRecord, settings.balances_table, settings)
    bind_model(OutboxRecord, settings.outbox_table, settings)
    bind_model(ClickRecord, settings.clicks_table, settings)
    bind_model(ControlRecord, settings.control_table, settings)
