"""The ledger's claim hook: which claimant an order that no click attributes belongs to.

The ledger (and the audit, which must recompute the same decision) asks `ClaimAttribution.attribute` after the
clicks have had their say; only an order with no shopper and no conflict is looked up, by its store and partner order
numbers, in the claims table. The choice itself is the pure `accrual.domain.claims.claimant`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from accrual.adapters.claims_table import bind_claims_table, claim_rules_of, claims_for_numbers
from accrual.domain.attribution import Attribution
from accrual.domain.claims import Claim, ClaimRules, claim_click, claimant, order_facts
from accrual.domain.models import AccrualConfig, OrderLine
from accrual.settings import Settings


@dataclass(frozen=True)
class ClaimedAttribution(Attribution):
    """An attribution made by a missing-cashback claim: its click is the claim's (made at the order's time)."""

    claim: Claim | None = None


class ClaimAttribution:
    def __init__(self, settings: Settings, rules: ClaimRules | None = None) -> None:
        bind_claims_table(settings)
        self.rules = rules or claim_rules_of(settings)

    def attribute(
        self, key: str, lines: Mapping[str, OrderLine], attribution: Attribution, config: AccrualConfig
    ) -> Attribution:
        """`attribution` unchanged unless it names nobody and a claim matches the order; then the claimant's."""
        if attribution.click is not None or attribution.conflict or not lines:
            return attribution
        facts = order_facts(key, lines, user_id=None, state=None, config=config)
        claim = claimant(claims_for_numbers(facts.numbers()), facts, self.rules, config)
        if claim is None:
            return attribution
        return ClaimedAttribution(claim_click(claim, facts), (), attribution.unmatched_sub_ids, claim=claim)


def claim_of(attribution: Attribution) -> Claim | None:
    return attribution.claim if isinstance(attribution, ClaimedAttribution) else None


def claims_naming(settings: Settings, *numbers: str | None) -> list[dict[str, object]]:
    """`accrual explain`'s claims part: every claim naming one of the order's numbers, as stored."""
    bind_claims_table(settings)
    return [claim.to_dict() for claim in claims_for_numbers(number for number in numbers if number)]
