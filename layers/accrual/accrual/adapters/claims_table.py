"""Missing-cashback claims in their own DynamoDB table (`<stack>-claims`, template.yaml "Claims" block).

Why a table of their own rather than items in the control or orders table: claims are looked up three ways (by the
order number a report line carries, by shopper, by state for the matching sweep), which are three GSIs here and
would be hand-kept index items elsewhere; they are shoppers' requests with their own retention, read by the ledger
(to attribute an unattributed order) but written only by the claims service, so IAM can say exactly that.

One item per claim, key `claim_id` (deterministic: shopper + order number, so filing twice finds the first). The
whole claim is kept as JSON in `body`; the indexed fields are copies. Every change is conditional on the item's
version, so two runs resolving one claim cannot both publish.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

from pynamodb.attributes import UnicodeAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from accrual.adapters import reference_data
from accrual.adapters.ledger_store import outbox_record
from accrual.adapters.ledger_tables import OutboxRecord, bind_ledger_tables
from accrual.adapters.pynamo import bind_model, segmented_scan
from accrual.domain.claims import Claim, ClaimRules, ClaimState
from accrual.observability import logger
from accrual.ports import OutboxMessage
from accrual.settings import Settings


def claims_table_name(settings: Settings) -> str:
    return settings.claims_table or f"{settings.stack}-claims"


def claim_rules_of(settings: Settings) -> ClaimRules:
    """The matching and escalation settings (the CLAIM_* settings; unset ones are ClaimRules' defaults)."""
    from datetime import timedelta

    defaults = ClaimRules()

    def days(value: float | None, default: timedelta) -> timedelta:
        return timedelta(days=value) if value is not None else default

    return ClaimRules(
        window=days(settings.claim_window_days, defaults.window),
        amount_tolerance=settings.claim_amount_tolerance
        if settings.claim_amount_tolerance is not None
        else defaults.amount_tolerance,
        amount_floor_usd=settings.claim_amount_floor_usd
        if settings.claim_amount_floor_usd is not None
        else defaults.amount_floor_usd,
        report_delay=days(settings.claim_report_delay_days, defaults.report_delay),
        escalate_after=timedelta(days=settings.claim_escalate_after_days)
        if settings.claim_escalate_after_days is not None
        else None,
    )


class _ByOrderNumber(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_order_number"
        projection = AllProjection()

    order_number = UnicodeAttribute(hash_key=True)


class _ByUser(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    filed_at = UnicodeAttribute(range_key=True)


class _ByState(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_state"
        projection = AllProjection()

    state = UnicodeAttribute(hash_key=True)
    filed_at = UnicodeAttribute(range_key=True)


class ClaimRecord(Model):
    class Meta:
        table_name = None

    claim_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    order_number = UnicodeAttribute()
    state = UnicodeAttribute()
    filed_at = UnicodeAttribute()
    body = UnicodeAttribute()  # Claim.to_dict() as JSON
    version = VersionAttribute()

    by_order_number = _ByOrderNumber()
    by_user = _ByUser()
    by_state = _ByState()


def bind_claims_table(settings: Settings) -> None:
    bind_model(ClaimRecord, claims_table_name(settings), settings)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def claim_of(record: ClaimRecord) -> Claim:
    data = json.loads(record.body)
    ordered = data.get("ordered_at")
    ordered_at = _time(ordered) if ordered and "T" in ordered else None
    ordered_on = date.fromisoformat(ordered) if ordered and "T" not in ordered else None
    return Claim(
        claim_id=data["claim_id"],
        user_id=data["user_id"],
        order_number=data["order_number"],
        filed_at=_utc(data["filed_at"]),
        escalate_at=_utc(data["escalate_at"]),
        state=ClaimState(data["state"]),
        ordered_at=ordered_at,
        ordered_on=ordered_on,
        amount=Decimal(data["amount"]) if data.get("amount") is not None else None,
        currency=data.get("currency"),
        country=data.get("country"),
        account_currency=data.get("account_currency"),
        order_key=data.get("order_key"),
        reason=data.get("reason"),
        verdict_reason=data.get("verdict_reason"),
        searched=tuple(data.get("searched") or ()),
        updated_at=_time(data.get("updated_at")),
    )


def record_of(claim: Claim, version: int | None = None) -> ClaimRecord:
    record = ClaimRecord(
        claim.claim_id,
        user_id=claim.user_id,
        order_number=claim.order_number,
        state=claim.state.value,
        filed_at=claim.to_dict()["filed_at"],
        body=json.dumps(claim.to_dict(), sort_keys=True, separators=(",", ":")),
    )
    if version is not None:
        record.version = version
    return record


def get_claim(claim_id: str) -> tuple[Claim, int] | None:
    try:
        record = ClaimRecord.get(claim_id, consistent_read=True)
    except ClaimRecord.DoesNotExist:
        return None
    return claim_of(record), record.version


def claims_for_numbers(numbers: Iterable[str]) -> list[Claim]:
    """Every claim naming one of these order numbers (the by_order_number index)."""
    found: dict[str, Claim] = {}
    for number in sorted(set(numbers)):
        for record in ClaimRecord.by_order_number.query(number):
            found[record.claim_id] = claim_of(record)
    return [found[claim_id] for claim_id in sorted(found)]


def claims_in_state(state: ClaimState, *, page_size: int = 100) -> Iterator[Claim]:
    for record in ClaimRecord.by_state.query(state.value, page_size=page_size):
        yield claim_of(record)


def claims_of_user(user_id: str) -> Iterator[Claim]:
    for record in ClaimRecord.by_user.query(user_id):
        yield claim_of(record)


def all_claims() -> Iterator[Claim]:
    for record in segmented_scan(ClaimRecord):
        yield claim_of(record)


class DynamoClaimsStore:
    """The claims store on the stack's claims table; a claim's notification goes to the ledger's outbox table in the
    same transaction as the claim's change."""

    def __init__(self, settings: Settings) -> None:
        bind_claims_table(settings)
        bind_ledger_tables(settings)
        self._connection = Connection(region=settings.region, host=settings.dynamodb_host, max_retry_attempts=8)

    def get(self, claim_id: str) -> tuple[Claim, int] | None:
        return get_claim(claim_id)

    def create(self, claim: Claim, outbox: OutboxMessage | None = None) -> bool:
        if outbox is None:
            try:
                record_of(claim).save(condition=ClaimRecord.claim_id.does_not_exist())
            except PutError as error:
                if error.cause_response_code != "ConditionalCheckFailedException":
                    raise
                return False
            return True
        # a claim rejected when filed and its notification, in one transaction: a run that dies between two writes
        # would leave the claim without its notification, and a rerun finds the claim and sends nothing
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(record_of(claim), condition=ClaimRecord.claim_id.does_not_exist())
                transaction.save(outbox_record(outbox), condition=OutboxRecord.event_id.does_not_exist())
        except TransactWriteError as error:
            codes = {reason.code for reason in error.cancellation_reasons or () if reason is not None}
            if "ConditionalCheckFailed" not in codes:
                raise
            return False
        return True

    def save(self, claim: Claim, version: int, outbox: OutboxMessage | None) -> bool:
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(record_of(claim, version))  # VersionAttribute: the stored version is still `version`
                if outbox is not None:
                    transaction.save(outbox_record(outbox), condition=OutboxRecord.event_id.does_not_exist())
        except TransactWriteError as error:
            logger.info("claim changed meanwhile", extra={"claim": claim.claim_id, "error": str(error)[:200]})
            return False
        return True

    def for_numbers(self, numbers: Iterable[str]) -> list[Claim]:
        return claims_for_numbers(numbers)

    def in_state(self, state: ClaimState) -> Iterator[Claim]:
        return claims_in_state(state)

    def of_user(self, user_id: str) -> Iterator[Claim]:
        return claims_of_user(user_id)

    def all(self) -> Iterator[Claim]:
        return all_claims()

    def any_in(self, states: Iterable[ClaimState]) -> bool:
        """One small Query per state."""
        for state in states:
            for _ in ClaimRecord.by_state.query(state.value, limit=1):
                return True
        return False

    def account_currency(self, user_id: str) -> str | None:
        return reference_data.account_currencies([user_id]).get(user_id)
