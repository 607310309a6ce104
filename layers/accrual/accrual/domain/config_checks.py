"""Values a configuration may hold that would make orders earn nothing: accepted by the model, but loaded only on
purpose (`accrual config load --force --reason TEXT`). A pure function of the document and the time of loading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from accrual.domain.models import AccrualConfig


@dataclass(frozen=True)
class Implausible:
    field: str
    value: str
    why: str

    def __str__(self) -> str:
        return f"{self.field}: {self.why} (value: {self.value})"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "value": self.value, "why": self.why}


def implausible(config: AccrualConfig, now: datetime) -> list[Implausible]:
    """Every value of `config` that would decline or zero the orders it applies to, as of `now`."""
    problems = []
    if config.cap_usd <= 0:
        problems.append(Implausible("cap_usd", str(config.cap_usd), "caps every order's cashback at 0"))
    elif config.min_cashback_usd > config.cap_usd:
        problems.append(
            Implausible(
                "min_cashback_usd",
                str(config.min_cashback_usd),
                f"is above cap_usd {config.cap_usd}: no order can reach the minimum",
            )
        )
    if config.max_rate <= 0:
        problems.append(Implausible("max_rate", str(config.max_rate), "clamps every rate to 0"))
    if config.awaiting_payment_days == 0:
        problems.append(
            Implausible("awaiting_payment_days", "0", "an order not paid when it is reported expires at once")
        )
    problems += _rate_cards_out_of_force(config, now)
    problems += _cards_that_pay_nothing(config)
    named = {category for card in config.rate_cards for category in card.categories}
    named |= {category for promotion in config.promotions for category in promotion.categories}
    if named and named <= set(config.virtual_categories):
        problems.append(
            Implausible(
                "virtual_categories",
                ", ".join(sorted(config.virtual_categories)),
                "every category the rate cards and promotions name is virtual, and virtual products earn nothing",
            )
        )
    return problems


def _rate_cards_out_of_force(config: AccrualConfig, now: datetime) -> list[Implausible]:
    """A partner whose rate cards all start in the future: its orders of today earn nothing. (Cards that all ended
    are left alone: a configuration for past orders, loaded to decide them again, is a legitimate one.)"""
    problems = []
    for partner in sorted({card.partner for card in config.rate_cards}):
        starts = min(card.valid_from for card in config.rate_cards if card.partner == partner)
        if starts > now:
            problems.append(
                Implausible(
                    f"rate_cards[partner={partner}]",
                    starts.isoformat(),
                    f"every rate card of {partner} starts in the future: its orders until then earn nothing",
                )
            )
    return problems


def _cards_that_pay_nothing(config: AccrualConfig) -> list[Implausible]:
    problems = []
    for index, card in enumerate(config.rate_cards):
        rates = [card.default_rate, card.non_affiliate_rate, card.hot_product_rate, *card.categories.values()]
        if all(rate is None or rate == Decimal(0) for rate in rates):
            problems.append(Implausible(f"rate_cards.{index}", card.partner, "every rate of this card is 0"))
    return problems
