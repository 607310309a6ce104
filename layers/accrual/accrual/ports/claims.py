"""The claims store: where missing-cashback claims are kept, each change under the claim's version, with the
claim's notification written to the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from accrual.domain.claims import Claim, ClaimState
from accrual.ports.ledger import OutboxMessage


class ClaimsStore(Protocol):
    def get(self, claim_id: str) -> tuple[Claim, int] | None:
        """The claim and its version (None when there is no such claim)."""

    def create(self, claim: Claim, outbox: OutboxMessage | None = None) -> bool:
        """Store a new claim, with its notification if given (a claim rejected when filed), all or nothing; False when
        one with its id exists (filed twice: the first one stands)."""

    def save(self, claim: Claim, version: int, outbox: OutboxMessage | None) -> bool:
        """Write the claim over `version`, with its notification, all or nothing; False when it changed meanwhile
        (or the notification exists)."""

    def for_numbers(self, numbers: Iterable[str]) -> list[Claim]:
        """Every claim naming one of these order numbers, by claim id."""

    def in_state(self, state: ClaimState) -> Iterator[Claim]: ...
    def of_user(self, user_id: str) -> Iterator[Claim]: ...
    def all(self) -> Iterator[Claim]: ...
    def any_in(self, states: Iterable[ClaimState]) -> bool:
        """Whether any claim is in one of these states (reconciles skip the claims step otherwise)."""

    def account_currency(self, user_id: str) -> str | None:
        """The claimant's account currency (from the shopper's clicks; None: never clicked a cashback link)."""
