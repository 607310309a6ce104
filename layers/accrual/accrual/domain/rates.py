"""The rate of a line: the rate card in force at the click (the latest `valid_from` among those that cover it), the
category's rate or the card's default, the hot rate, the promotions running at the click, the non-affiliate flat rate,
and the `max_rate` clamp. `choose_rate` returns the rate with the candidates it chose among, for the trail."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from accrual.domain.decision import Code, RateChoice
from accrual.domain.models import AccrualConfig, OrderLine, RateCard


def rate_card_at(config: AccrualConfig, partner: str, moment: datetime) -> RateCard | None:
    """The partner's rate card in force at `moment` (the click time); the latest `valid_from` among overlapping."""
    cards = [card for card in config.rate_cards if card.partner == partner and card.in_force_at(moment)]
    return max(cards, key=lambda card: card.valid_from, default=None)


def category_rate(line: OrderLine, card: RateCard) -> tuple[str, Decimal]:
    """The rate of the product's category on the card, else the card's default rate."""
    if line.category_id is not None and line.category_id in card.categories:
        return f"category:{line.category_id}", card.categories[line.category_id]
    return "default", card.default_rate


def promotions_at(config: AccrualConfig, line: OrderLine, moment: datetime) -> list[tuple[str, Decimal]]:
    """Promotions of the line's partner in force at the click for its category, sorted by start (then end, rate)."""
    promotions = [
        promotion
        for promotion in config.promotions
        if promotion.partner == line.partner
        and line.category_id is not None
        and line.category_id in promotion.categories
        and promotion.in_force_at(moment)
    ]
    promotions.sort(key=lambda promotion: (promotion.starts_at, promotion.ends_at, promotion.rate))
    return [(f"promotion:{promotion.starts_at.isoformat()}", promotion.rate) for promotion in promotions]


def choose_rate(line: OrderLine, card: RateCard, config: AccrualConfig, clicked_at: datetime) -> RateChoice:
    """Non-affiliate: exactly its flat rate. Affiliate: the highest of category/default, hot and the promotions
    in force at the click."""
    category_source, category = category_rate(line, card)
    if not line.is_affiliate:
        candidates = [("non_affiliate", card.non_affiliate_rate)]
    else:
        candidates = [(category_source, category)]
        if line.is_hot and card.hot_product_rate is not None:
            candidates.append(("hot", card.hot_product_rate))
        candidates.extend(promotions_at(config, line, clicked_at))
    source, winning = candidates[0]
    for candidate_source, candidate_rate in candidates[1:]:
        if candidate_rate > winning:  # strictly higher: on a tie the earlier candidate keeps the win
            source, winning = candidate_source, candidate_rate
    codes = []
    if source == "non_affiliate":
        codes.append(Code.NON_AFFILIATE_RATE)
    elif source == "hot":
        codes.append(Code.HOT_PRODUCT_RATE)
    elif source.startswith("promotion:"):
        codes.append(Code.PROMO_RATE_AT_CLICK)
    rate = winning
    if rate > config.max_rate:
        rate = config.max_rate
        codes.append(Code.RATE_LIMITED_TO_MAX)
    return RateChoice(
        rate=rate,
        source=source,
        winning_rate=winning,
        candidates=tuple(candidates),
        category_rate=category,
        codes=tuple(codes),
    )
