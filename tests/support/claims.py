"""An in-memory claims store (the ClaimsStore port) beside the in-memory ledger store: claims, their versions, and
their notifications in the ledger store's outbox, under the same conditions as the claims table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from accrual.domain.claims import Claim, ClaimRules, ClaimState
from accrual.ports import OutboxMessage
from accrual.service.claims import ClaimService
from accrual.service.ledger import Ledger
from support.fakes.ledger_store import InMemoryLedgerStore, _Outbox


class InMemoryClaimsStore:
    def __init__(self, ledger_store: InMemoryLedgerStore) -> None:
        self.ledger_store = ledger_store
        self.claims: dict[str, tuple[Claim, int]] = {}

    def get(self, claim_id: str) -> tuple[Claim, int] | None:
        return self.claims.get(claim_id)

    def create(self, claim: Claim, outbox: OutboxMessage | None = None) -> bool:
        if claim.claim_id in self.claims or (outbox is not None and outbox.event_id in self.ledger_store.outbox):
            return False
        self.claims[claim.claim_id] = (claim, 1)
        if outbox is not None:
            self.ledger_store.outbox[outbox.event_id] = _Outbox(outbox)
        return True

    def save(self, claim: Claim, version: int, outbox: OutboxMessage | None) -> bool:
        stored = self.claims.get(claim.claim_id)
        if stored is None or stored[1] != version:
            return False
        if outbox is not None and outbox.event_id in self.ledger_store.outbox:
            return False
        self.claims[claim.claim_id] = (claim, version + 1)
        if outbox is not None:
            self.ledger_store.outbox[outbox.event_id] = _Outbox(outbox)
        return True

    def for_numbers(self, numbers: Iterable[str]) -> list[Claim]:
        wanted = set(numbers)
        return [claim for claim_id, (claim, _) in sorted(self.claims.items()) if claim.order_number in wanted]

    def in_state(self, state: ClaimState) -> Iterator[Claim]:
        return iter([claim for claim, _ in self.claims.values() if claim.state == state])

    def of_user(self, user_id: str) -> Iterator[Claim]:
        return iter([claim for claim, _ in self.claims.values() if claim.user_id == user_id])

    def all(self) -> Iterator[Claim]:
        return iter([claim for claim, _ in self.claims.values()])

    def any_in(self, states: Iterable[ClaimState]) -> bool:
        wanted = set(states)
        return any(claim.state in wanted for claim, _ in self.claims.values())

    def account_currency(self, user_id: str) -> str | None:
        for click in self.ledger_store.clicks.values():
            if click.user_id == user_id:
                return click.account_currency
        return None


def memory_claims(ledger: Ledger, rules: ClaimRules | None = None) -> ClaimService:
    """The claims service on an in-memory claims store beside a ledger on the in-memory ledger store."""
    assert isinstance(ledger.store, InMemoryLedgerStore)
    return ClaimService(InMemoryClaimsStore(ledger.store), ledger, rules or ClaimRules())
