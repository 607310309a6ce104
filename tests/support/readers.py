"""The readers (balance, explain, audit) as the tests call them: on a stack's Settings (through the composition
root: its ledger store and claims table) or on a store itself (the in-memory one)."""

from __future__ import annotations

from typing import Any

from accrual.composition import composition
from accrual.ports import ClaimsStore, LedgerStore
from accrual.service import reading
from accrual.settings import Settings


def _store(source: Settings | LedgerStore) -> LedgerStore:
    return composition(source).ledger_store if isinstance(source, Settings) else source


def balance(source: Settings | LedgerStore, user_id: str) -> dict[str, Any]:
    return reading.balance(_store(source), user_id)


def explain(
    source: Settings | LedgerStore, order_number: str, *, lang: str = "en", claims: ClaimsStore | None = None
) -> dict[str, Any] | None:
    if claims is None and isinstance(source, Settings):
        claims = composition(source).claims_store
    return reading.explain(_store(source), order_number, lang=lang, claims=claims)


def audit(source: Settings | LedgerStore) -> dict[str, Any]:
    return reading.audit(_store(source))
