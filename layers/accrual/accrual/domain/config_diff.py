"""What a new configuration document changes relative to the stored one: the fx band check of `accrual config load`
and the changes `accrual config diff` prints. Pure functions of two validated configurations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accrual.domain.models import FX_BAND, AccrualConfig


@dataclass(frozen=True)
class FxOutOfBand:
    day: str
    currency: str
    rate: Decimal
    previous_rate: Decimal
    previous_day: str
    previous_version: str

    @property
    def field(self) -> str:
        return f"fx_rates.{self.day}.{self.currency}"

    def __str__(self) -> str:
        return (
            f"{self.field}: rate {self.rate} is more than a factor of {FX_BAND} away from {self.previous_rate}, "
            f"the rate of {self.previous_day} in the current version {self.previous_version!r} "
            f'(value: "{self.rate}")'
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "value": str(self.rate),
            "previous_rate": str(self.previous_rate),
            "previous_day": self.previous_day,
            "previous_version": self.previous_version,
        }


def fx_out_of_band(previous: AccrualConfig, new: AccrualConfig) -> list[FxOutOfBand]:
    """Every fx rate of `new` that differs from `previous` and lies outside [r / FX_BAND, r × FX_BAND], where r is
    the previous version's rate in force on that day (its latest rate on or before the day, else its earliest).
    A currency the previous version has no rate for is only held to the plausible range of the model."""
    problems = []
    for day, rates in sorted(new.fx_rates.items()):
        for currency, rate in sorted(rates.items()):
            if previous.fx_rates.get(day, {}).get(currency) == rate:
                continue
            reference = previous.fx_rate_on(currency, day)
            if reference is None:
                continue
            previous_rate, previous_day = reference
            if rate > previous_rate * FX_BAND or rate * FX_BAND < previous_rate:
                problems.append(
                    FxOutOfBand(
                        day.isoformat(), currency, rate, previous_rate, previous_day.isoformat(), previous.version
                    )
                )
    return problems


# --- diff --------------------------------------------------------------------------------------------------------


def _view(config: AccrualConfig) -> dict[str, Any]:
    """The document as nested dicts keyed by what names each thing (a rate card by partner and start, a promotion by
    partner and window); sets for lists whose order means nothing."""

    def card(rate_card) -> dict[str, Any]:
        return {
            "valid_to": rate_card.valid_to.isoformat() if rate_card.valid_to else None,
            "default_rate": rate_card.default_rate,
            "non_affiliate_rate": rate_card.non_affiliate_rate,
            "hot_product_rate": rate_card.hot_product_rate,
            "categories": dict(rate_card.categories),
        }

    return {
        "partners": frozenset(config.partners),
        "rate_cards": {f"{item.partner} from {item.valid_from.isoformat()}": card(item) for item in config.rate_cards},
        "promotions": {
            f"{item.partner} {item.starts_at.isoformat()}..{item.ends_at.isoformat()}": {
                "rate": item.rate,
                "categories": frozenset(item.categories),
            }
            for item in config.promotions
        },
        "exclusions": {
            "excluded_shops": frozenset(config.excluded_shops),
            "virtual_categories": frozenset(config.virtual_categories),
            "own_promo_codes": frozenset(config.own_promo_codes),
        },
        "fx_rates": {day.isoformat(): dict(rates) for day, rates in config.fx_rates.items()},
        "days": {"awaiting_payment_days": config.awaiting_payment_days, "hold_days": dict(config.hold_days)},
        "vat_rates": dict(config.vat_rates),
        "limits": {
            "cap_usd": config.cap_usd,
            "min_cashback_usd": config.min_cashback_usd,
            "max_rate": config.max_rate,
            # absent by default: setting it shows as added, removing it as removed
            **({} if config.max_cashback_share is None else {"max_cashback_share": config.max_cashback_share}),
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _walk(path: list[str], old: Any, new: Any, changes: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            _walk([*path, str(key)], old.get(key, _MISSING), new.get(key, _MISSING), changes)
    elif old is _MISSING:
        changes.append({"section": path[0], "path": path, "change": "added", "to": _plain(new)})
    elif new is _MISSING:
        changes.append({"section": path[0], "path": path, "change": "removed", "from": _plain(old)})
    elif isinstance(old, frozenset) and isinstance(new, frozenset):
        for item in sorted(new - old):
            changes.append({"section": path[0], "path": path, "change": "added", "to": item})
        for item in sorted(old - new):
            changes.append({"section": path[0], "path": path, "change": "removed", "from": item})
    elif old != new:
        changes.append({"section": path[0], "path": path, "change": "changed", "from": _plain(old), "to": _plain(new)})


_MISSING = object()


def diff(old: AccrualConfig | None, new: AccrualConfig) -> dict[str, Any]:
    """{from_version, to_version, changes: [{section, path, change: added|removed|changed, from, to}]}; with no
    stored configuration every part of the new one is added."""
    changes: list[dict[str, Any]] = []
    new_view = _view(new)
    old_view = _view(old) if old is not None else {section: _MISSING for section in new_view}
    for section in new_view:
        before = old_view[section]
        if before is _MISSING:
            if new_view[section] not in ({}, frozenset()):
                changes.append(
                    {"section": section, "path": [section], "change": "added", "to": _plain(new_view[section])}
                )
            continue
        _walk([section], before, new_view[section], changes)
    return {"from_version": old.version if old is not None else None, "to_version": new.version, "changes": changes}


def describe(result: dict[str, Any]) -> list[str]:
    """The diff as readable lines: `+ path: value`, `- path: value`, `~ path: old → new`."""

    def shown(value: Any) -> str:
        return value if isinstance(value, str) else json_text(value)

    head = (
        f"configuration {result['to_version']} against the current version {result['from_version']}"
        if result["from_version"] is not None
        else f"configuration {result['to_version']}: no configuration is stored, everything is new"
    )
    lines = [head + (f": {len(result['changes'])} changes" if result["changes"] else ": no changes")]
    for change in result["changes"]:
        path = " › ".join(change["path"])
        if change["change"] == "added":
            lines.append(f"  + {path}: {shown(change['to'])}")
        elif change["change"] == "removed":
            lines.append(f"  - {path}: {shown(change['from'])}")
        else:
            lines.append(f"  ~ {path}: {shown(change['from'])} → {shown(change['to'])}")
    return lines


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
