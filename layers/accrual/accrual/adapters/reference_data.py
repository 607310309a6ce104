"""Reference data the ledger reads: accrual configuration versions and clicks."""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, PutError

from accrual.adapters.ledger_tables import ClickRecord, ControlRecord
from accrual.domain.models import AccrualConfig, Click

CONFIG = "CONFIG"
CONFIG_CURRENT = "CONFIG_CURRENT"


class ConfigVersionConflict(ValueError):
    """A configuration version may be loaded once: a different document under the same version is refused."""


def _canonical(config: AccrualConfig) -> str:
    return config.model_dump_json()


def save_config(config: AccrualConfig, *, now: datetime) -> bool:
    """Store a configuration version (older versions stay) and make it the current one. Returns False when the very
    same version was already stored."""
    body = _canonical(config)
    created = True
    try:
        ControlRecord(CONFIG, config.version, body=body, at=now.isoformat()).save(
            condition=ControlRecord.pk.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        if ControlRecord.get(CONFIG, config.version).body != body:
            raise ConfigVersionConflict(
                f"configuration version {config.version!r} is already stored with different content; "
                "give the new document a new version") from None
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


def save_clicks(clicks: Iterable[Click]) -> int:
    count = 0
    with ClickRecord.batch_write() as batch:
        for click in clicks:
            batch.save(ClickRecord(click.sub_id, body=click.model_dump_json()))
            count += 1
    return count


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
        ControlRecord(f"NEW_USER_COUPON#{user_id}", f"{order_key}#{buyer_account}", body=buyer_account,
                      at=now.isoformat()).save(condition=ControlRecord.pk.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False
    return True


def new_user_coupon_uses(user_id: str) -> list[tuple[str, str]]:
    """(order key, store account) of every order of this shopper on which a new-user coupon was used."""
    return [(record.sk[: -len(record.body) - 1], record.body)
            for record in ControlRecord.query(f"NEW_USER_COUPON#{user_id}", consistent_read=True)]


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
