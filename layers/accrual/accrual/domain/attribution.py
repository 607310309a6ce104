"""Which shopper an order belongs to (docs/rules.md, "Identity and integrity"): the one its lines' clicks name, or the
one a missing-cashback claim recorded on the order names.

Pure: the ledger and the audit both call `attribute` with the order's lines, the clicks their sub-ids find and the
claims recorded on the order, so the audit recomputes exactly what the ledger decided.

* A line whose sub-id matches no click does not un-attribute an order that its other lines attribute.
* Lines naming different shoppers make an attribution conflict: the order is held for review and holds nothing.
* A claim recorded on the order is a fact of the order like a click: a click (or a second claim) naming another
  shopper is a conflict, never a silent change of shopper.
* `pinned_user` fixes the shopper: an order whose money was already posted (confirmed, reversed) stays with the
  shopper it was posted to, and an operator's verdict on a conflict names the shopper the order goes to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from accrual.domain.models import Click, OrderLine

CLAIM_SUB_ID_PREFIX = "claim:"  # the synthetic click of a claim carries this sub-id: never a real tracking value


@dataclass(frozen=True)
class ClaimFact:
    """A missing-cashback claim as the order records it once the claim credited it (or contests it): who, which
    claim, when it was filed, and the claimant's account currency and country (a claim stands for a click)."""

    claim_id: str
    user_id: str
    filed_at: datetime
    account_currency: str
    country: str | None = None
    by_agent: bool = False  # an agent approved it: another claim no longer contests the order

    def to_dict(self) -> dict[str, str | bool | None]:
        data: dict[str, str | bool | None] = {
            "claim_id": self.claim_id,
            "user_id": self.user_id,
            "filed_at": self.filed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "account_currency": self.account_currency,
            "country": self.country,
        }
        if self.by_agent:
            data["by_agent"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, str | bool | None]) -> ClaimFact:
        filed = str(data["filed_at"]).replace("Z", "+00:00")
        country = data.get("country")
        return cls(
            claim_id=str(data["claim_id"]),
            user_id=str(data["user_id"]),
            filed_at=datetime.fromisoformat(filed).astimezone(UTC),
            account_currency=str(data["account_currency"]),
            country=str(country) if country is not None else None,
            by_agent=bool(data.get("by_agent", False)),
        )

    def click(self, lines: Mapping[str, OrderLine]) -> Click:
        """The click this claim stands for: made at the order's time, by the claimant, in the claimant's currency."""
        first = lines[min(lines)]
        return Click(
            sub_id=f"{CLAIM_SUB_ID_PREFIX}{self.claim_id}",
            user_id=self.user_id,
            clicked_at=min(line.ordered_at for line in lines.values()),
            partner=first.partner,
            account_currency=self.account_currency,
            country=self.country,
        )


def claims_text(claims: Sequence[ClaimFact]) -> str | None:
    """The order's recorded claims as stored (None when there are none), in a stable order."""
    if not claims:
        return None
    ordered = sorted(claims, key=lambda fact: (fact.filed_at, fact.claim_id))
    return json.dumps([fact.to_dict() for fact in ordered], sort_keys=True, separators=(",", ":"))


def claims_of(text: str | None) -> tuple[ClaimFact, ...]:
    return tuple(ClaimFact.from_dict(item) for item in json.loads(text)) if text else ()


@dataclass(frozen=True)
class Attribution:
    click: Click | None  # the click the order is decided by (None: unattributed or in conflict)
    conflict: tuple[str, ...] = ()  # the shoppers the lines and claims name, sorted, when they disagree
    unmatched_sub_ids: tuple[str, ...] = ()  # sub-ids of lines that found no click
    claim: ClaimFact | None = None  # the claim the order is attributed by (its click is the claim's)

    @property
    def user_id(self) -> str | None:
        return self.click.user_id if self.click is not None else None

    @property
    def in_conflict(self) -> bool:
        return self.click is None and bool(self.conflict)


def attribute(
    lines: Mapping[str, OrderLine],
    clicks: Mapping[str, Click | None],
    *,
    pinned_user: str | None = None,
    claims: Sequence[ClaimFact] = (),
) -> Attribution:
    """The order's shopper from its lines (a mapping line_id -> line), the clicks found for their sub-ids and the
    claims recorded on it. A claim recorded for the chosen shopper is used (the fact the order was credited by);
    otherwise the click of the first line, by line_id, that names the shopper."""
    matched: list[Click] = []
    unmatched: set[str] = set()
    for line_id in sorted(lines):
        sub_id = lines[line_id].sub_id
        click = clicks.get(sub_id) if sub_id else None
        if click is None:
            if sub_id:
                unmatched.add(sub_id)
        else:
            matched.append(click)
    left = tuple(sorted(unmatched))
    by_claim = {fact.user_id: fact for fact in sorted(claims, key=lambda fact: (fact.filed_at, fact.claim_id))[::-1]}
    users = sorted({click.user_id for click in matched} | set(by_claim))
    conflict = tuple(users) if len(users) > 1 else ()
    chosen = pinned_user if pinned_user in users else (users[0] if len(users) == 1 else None)
    if chosen is None:
        return Attribution(None, conflict, left)
    if chosen in by_claim:  # the recorded fact the order was credited by, even when a click loaded later agrees
        fact = by_claim[chosen]
        return Attribution(fact.click(lines), conflict, left, claim=fact)
    mine = [click for click in matched if click.user_id == chosen]
    return Attribution(mine[0], conflict, left)


def pinned_shopper(state: str | None, user_id: str | None, review: str | None, review_user: str | None) -> str | None:
    """The shopper an order is fixed to, if any: the one its money was posted to (confirmed, reversed), else the one
    an operator released it to."""
    if state in ("confirmed", "reversed"):
        return user_id
    if review == "released" and review_user:
        return review_user
    return None
