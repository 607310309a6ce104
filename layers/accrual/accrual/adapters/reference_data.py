"""Reference data the ledger reads: accrual configuration versions and clicks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from accrual.adapters.ledger_tables import ClickRecord, ControlRecord
from accrual.domain.click_batch import differences, screen
from accrual.domain.models import AccrualConfig, Click

CONFIG = "CONFIG"
CONFIG_CURRENT = "CONFIG_CURRENT"


class ConfigVersionConflict(ValueError):
    """A configuration version may be loaded once: a different document under the same version is refused."""


def _canonical(config: AccrualConfig) -> str:
    return config.model_dump_json()


def save_config(config: AccrualConfig, *, now: datetime, reason: str | None = None) -> bool:
    """Store a configuration version (older versions stay) and make it the current one. Returns False when the very
    same version was already stored. `reason` (why fx rates outside the band were forced) is stored with it."""
    body = _canonical(config)
    created = True
    try:
        ControlRecord(CONFIG, config.version, body=body, at=now.isoformat(), reason=reason).save(
            condition=ControlRecord.pk.does_not_exist()
        )
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        if ControlRecord.get(CONFIG, config.version).body != body:
            raise ConfigVersionConflict(
                f"configuration version {config.version!r} is already stored with different content; "
                "give the new document a new version"
            ) from None
        created = False
    ControlRecord(CONFIG_CURRENT, "current", body=config.version, at=now.isoformat()).save()
    return created


def config_version(version: str) -> AccrualConfig:
    return AccrualConfig.model_validate_json(ControlRecord.get(CONFIG, version).body)


def current_config() -> AccrualConfig:
    try:
        version = ControlRecord.get(CONFIG_CURRENT, "current").body
    except DoesNotExist:
        raise LookupError("no accrual configuration is loaded: run `accrual config load FILE` first") from None
    return config_version(version)


def stored_current_config() -> tuple[str | None, AccrualConfig | None]:
    """The current version and its configuration, (None, None) when none is loaded. A version stored before today's
    limits that no longer passes them comes back as (version, None): there is nothing to compare with."""
    try:
        version = ControlRecord.get(CONFIG_CURRENT, "current", consistent_read=True).body
    except DoesNotExist:
        return None, None
    try:
        return version, AccrualConfig.model_validate_json(ControlRecord.get(CONFIG, version, consistent_read=True).body)
    except ValueError:
        return version, None


def config_reason(version: str) -> str | None:
    return ControlRecord.get(CONFIG, version, consistent_read=True).reason


USER_PREFIX = "USER#"
ACCOUNT_CURRENCY = "ACCOUNT_CURRENCY"


class ClicksRefused(ValueError):
    """save_clicks was given clicks that contradict the stored facts (or each other)."""


@dataclass
class StoredClicks:
    stored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # sub_id: reason


def _conditional_failed(error: PutError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def _stored_click(record: ClickRecord) -> Click | None:
    try:
        return Click.model_validate_json(record.body)
    except ValueError:
        return None  # stored before today's limits: compared by its text


def _compare(record: ClickRecord, click: Click) -> str | None:
    """None when the stored click is this one, else the reason to refuse the new one."""
    if record.body == click.model_dump_json():
        return None
    stored = _stored_click(record)
    if stored == click:
        return None
    detail = differences(stored, click) if stored is not None else f"stored as {record.body[:200]}"
    return f"sub_id {click.sub_id!r} is already stored with other content ({detail}); a stored click never changes"


def _currency_refusal(click: Click, currency: str) -> str:
    return (
        f"sub_id {click.sub_id!r}: user {click.user_id!r} already has account currency {currency}, this click "
        f"says {click.account_currency}; a shopper has one account currency"
    )


def account_currencies(user_ids: Iterable[str]) -> dict[str, str]:
    """The stored account currency of each of these shoppers that has one (BatchGetItem, strongly consistent)."""
    keys = [(f"{USER_PREFIX}{user_id}", ACCOUNT_CURRENCY) for user_id in sorted(set(user_ids))]
    return {
        record.pk[len(USER_PREFIX) :]: record.body for record in ControlRecord.batch_get(keys, consistent_read=True)
    }


def _claim_account_currency(user_id: str, currency: str, *, now: datetime) -> str:
    """Record the shopper's account currency unless another one is recorded; returns the recorded one. The condition
    makes two concurrent loads agree: the first currency written stays."""
    try:
        ControlRecord(f"{USER_PREFIX}{user_id}", ACCOUNT_CURRENCY, body=currency, at=now.isoformat()).save(
            condition=ControlRecord.pk.does_not_exist() | (ControlRecord.body == currency)
        )
    except PutError as error:
        if not _conditional_failed(error):
            raise
        return ControlRecord.get(f"{USER_PREFIX}{user_id}", ACCOUNT_CURRENCY, consistent_read=True).body
    return currency


def store_clicks(clicks: Sequence[Click], *, now: datetime) -> StoredClicks:
    """Store clicks as facts. The clicks have distinct sub_ids and one currency per user (click_batch.screen).

    One BatchGetItem finds the sub_ids already stored (same content: unchanged; other content: refused) and the
    shoppers' recorded account currencies; only new clicks are written, each under a condition (`sub_id` does not
    exist), after the shopper's currency is recorded (conditionally too), so two concurrent loads never overwrite
    each other: the loser's click is re-read and counted as unchanged or refused.
    """
    result = StoredClicks()
    existing = {
        record.sub_id: record
        for record in ClickRecord.batch_get([click.sub_id for click in clicks], consistent_read=True)
    }
    new: list[Click] = []
    for click in clicks:
        record = existing.get(click.sub_id)
        if record is None:
            new.append(click)
        elif (reason := _compare(record, click)) is None:
            result.unchanged.append(click.sub_id)
        else:
            result.refused[click.sub_id] = reason

    recorded = account_currencies(click.user_id for click in new)
    unrecorded = {click.user_id: click.account_currency for click in new if click.user_id not in recorded}
    recorded.update(_claim_account_currencies(unrecorded, now=now))
    writable: list[Click] = []
    for click in new:
        currency = recorded[click.user_id]
        if currency != click.account_currency:
            result.refused[click.sub_id] = _currency_refusal(click, currency)
        else:
            writable.append(click)
    for click, (stored, reason) in zip(writable, _put_clicks(writable), strict=True):
        if stored:
            result.stored.append(click.sub_id)
        elif reason is None:
            result.unchanged.append(click.sub_id)
        else:
            result.refused[click.sub_id] = reason
    return result


# New clicks and shoppers' currencies are written in transactions of this many conditional puts (no batch write takes
# a condition), a few transactions at a time so that the client's work and the table's overlap: a transaction of 25
# puts costs about a twenty-fifth of the calls and, on DynamoDB Local, a third of the server's work of 25 single puts.
# A transaction some condition cancels (a concurrent load got there first) is written again one put at a time, which
# tells which of its items were taken.
CLICKS_TOGETHER = 25
CLICK_WRITERS = 4


def _written_together(records: Sequence[tuple[Model, Condition]]) -> bool:
    """Write the records in one transaction, each under its condition. False when the transaction was cancelled (a
    condition failed, or a concurrent load's transaction held one of the items): the caller writes them one by one,
    which tells which were taken and raises whatever else it meets."""
    try:
        # one client serves the transaction whatever tables its items are in
        with TransactWrite(connection=ClickRecord._get_connection().connection) as transaction:
            for record, condition in records:
                transaction.save(record, condition=condition)
    except TransactWriteError as error:
        if not error.cancellation_reasons:
            raise
        return False
    return True


def _write_in_transactions[T, A](
    items: Sequence[T],
    put: Callable[[T], tuple[Model, Condition]],
    written: Callable[[T], A],
    alone: Callable[[T], A],
) -> list[A]:
    """Each item's answer, in the items' order: `written(item)` when its transaction wrote it (`put(item)`: the record
    and its condition), else `alone(item)`, the item written on its own after its transaction was cancelled."""

    def write(group: Sequence[T]) -> list[A]:
        if _written_together([put(item) for item in group]):
            return [written(item) for item in group]
        return [alone(item) for item in group]

    groups = [items[start : start + CLICKS_TOGETHER] for start in range(0, len(items), CLICKS_TOGETHER)]
    with ThreadPoolExecutor(max_workers=CLICK_WRITERS) as pool:
        return [answer for answers in pool.map(write, groups) for answer in answers]


def _claim_account_currencies(currencies: Mapping[str, str], *, now: datetime) -> dict[str, str]:
    """Record each shopper's account currency unless one is recorded; returns the recorded ones."""
    users = sorted(currencies)
    recorded = _write_in_transactions(
        users,
        lambda user: (
            ControlRecord(f"{USER_PREFIX}{user}", ACCOUNT_CURRENCY, body=currencies[user], at=now.isoformat()),
            ControlRecord.pk.does_not_exist() | (ControlRecord.body == currencies[user]),
        ),
        written=lambda user: currencies[user],
        alone=lambda user: _claim_account_currency(user, currencies[user], now=now),
    )
    return dict(zip(users, recorded, strict=True))


def _put_clicks(clicks: Sequence[Click]) -> list[tuple[bool, str | None]]:
    """Write new clicks unless their sub_ids are taken meanwhile; the answers of `_put_click`, in the clicks' order."""
    return _write_in_transactions(
        clicks,
        lambda click: (ClickRecord(click.sub_id, body=click.model_dump_json()), ClickRecord.sub_id.does_not_exist()),
        written=lambda click: (True, None),
        alone=_put_click,
    )


def _put_click(click: Click) -> tuple[bool, str | None]:
    """Write a new click unless its sub_id is taken meanwhile: (True, None) when written; (False, None) when the
    click a concurrent load stored is the same, (False, reason) when it differs."""
    try:
        ClickRecord(click.sub_id, body=click.model_dump_json()).save(condition=ClickRecord.sub_id.does_not_exist())
    except PutError as error:
        if not _conditional_failed(error):
            raise
        return False, _compare(ClickRecord.get(click.sub_id, consistent_read=True), click)  # a concurrent load won
    return True, None


def save_clicks(clicks: Iterable[Click], *, now: datetime) -> int:
    """Store clicks (as `accrual clicks load` does) and return how many are stored or were already; raises
    ClicksRefused, naming each refused sub-id, when any click contradicts a stored one or another of the batch."""
    screened = screen([(None, click) for click in clicks])
    result = store_clicks([click for _, click in screened.accepted], now=now)
    reasons = [str(refusal) for refusal in screened.refusals] + list(result.refused.values())
    if reasons:
        raise ClicksRefused("; ".join(reasons))
    return len(result.stored) + len(result.unchanged)


def find_click(sub_id: str | None) -> Click | None:
    if not sub_id:
        return None
    try:
        return Click.model_validate_json(ClickRecord.get(sub_id).body)
    except DoesNotExist:
        return None


def find_clicks(sub_ids: Iterable[str]) -> dict[str, Click | None]:
    """Many clicks in BatchGetItem calls of up to 100 keys; a sub-id without a click maps to None."""
    wanted = sorted({sub_id for sub_id in sub_ids if sub_id})
    found: dict[str, Click | None] = dict.fromkeys(wanted)
    for record in ClickRecord.batch_get(wanted):
        found[record.sub_id] = Click.model_validate_json(record.body)
    return found


def register_new_user_coupon(user_id: str, buyer_account: str, order_key: str, *, now: datetime) -> bool:
    """Record that a store account of this shopper used a new-user coupon on an order. True when it is new."""
    try:
        ControlRecord(
            f"NEW_USER_COUPON#{user_id}", f"{order_key}#{buyer_account}", body=buyer_account, at=now.isoformat()
        ).save(condition=ControlRecord.pk.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False
    return True


def new_user_coupon_uses(user_id: str) -> list[tuple[str, str]]:
    """(order key, store account) of every order of this shopper on which a new-user coupon was used."""
    return [
        (record.sk[: -len(record.body) - 1], record.body)
        for record in ControlRecord.query(f"NEW_USER_COUPON#{user_id}", consistent_read=True)
        if record.sk != COUPON_ACCOUNTS_DECIDED
    ]


# In the shopper's registry partition (an order key always holds a '#', so no use has this sort key): the store
# accounts every coupon order of the shopper was last decided with, JSON. An arrival that brings no new account
# then decides no other order again (the multi-account rule stays linear in the shopper's orders).
COUPON_ACCOUNTS_DECIDED = "DECIDED"


def coupon_accounts_decided(user_id: str) -> frozenset[str]:
    try:
        record = ControlRecord.get(f"NEW_USER_COUPON#{user_id}", COUPON_ACCOUNTS_DECIDED, consistent_read=True)
    except DoesNotExist:
        return frozenset()
    return frozenset(json.loads(record.body or "[]"))


def record_coupon_accounts_decided(user_id: str, accounts: frozenset[str]) -> None:
    ControlRecord(f"NEW_USER_COUPON#{user_id}", COUPON_ACCOUNTS_DECIDED, body=json.dumps(sorted(accounts))).save()
