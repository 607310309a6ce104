"""Reading the ledger: a shopper's balance, an order's explanation, and the audit that recomputes both."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from accrual.domain.attribution import attribute, claims_of, pinned_shopper
from accrual.domain.claims import claim_note, with_claim_step
from accrual.domain.decision import OrderDecision
from accrual.domain.lifecycle import Holding, OrderState, earning_holding
from accrual.domain.models import OrderLine
from accrual.domain.money import ZERO, money_str
from accrual.domain.rules import decide_order
from accrual.domain.trail import render_trail
from accrual.ports import LedgerStore, OrderItem, parse_utc
from accrual.ports.claims import ClaimsStore
from accrual.service.order_view import canonical, load_order

FIGURES = ("pending_usd", "confirmed_usd", "pending", "confirmed")


def balance(store: LedgerStore, user_id: str) -> dict[str, Any]:
    stored = store.balance(user_id)
    result: dict[str, Any] = {
        "user_id": user_id,
        "account_currency": (stored.account_currency if stored else None) or "USD",
    }
    holding = stored.holding if stored else Holding()
    for figure in FIGURES:
        result[figure] = money_str(getattr(holding, figure))
    return result


def find_orders(order_number: str, store: LedgerStore) -> list[str]:
    """Order keys for a store order number, a partner order number, or a key `partner#order_id` itself."""
    return store.find_orders(order_number)


def explain(
    store: LedgerStore, order_number: str, *, lang: str = "en", claims: ClaimsStore | None = None
) -> dict[str, Any] | None:
    """An order explained; with `claims` (the claims store), the claims naming it too."""
    keys = store.find_orders(order_number)
    if not keys:
        return None
    view = load_order(keys[0], store)
    record = view.record
    assert record is not None and view.decision_json is not None  # found by its key: the order exists
    decision = OrderDecision.from_dict(json.loads(view.decision_json))
    lines = {line_id: line.model_dump(mode="json") for line_id, line in view.lines.items()}
    journal = [
        {
            "entry_id": entry.entry_id,
            "transition": entry.transition,
            "at": entry.at,
            "fact_at": entry.fact_at,
            "state_from": entry.state_from,
            "state_to": entry.state_to,
            **{figure: str(getattr(entry.delta, figure)) for figure in FIGURES},
        }
        for entry in store.journal(record.key)
    ]
    refused = [
        {"line": item.ref, "reason": item.reason, "at": item.at, **_refused_report(item.body)}
        for item in store.refusals(record.key)
    ]
    return {
        "order_id": record.order_id,
        "partner": record.partner,
        "partner_order_id": record.partner_order_id,
        "user_id": record.user_id,
        "state": record.state,
        "cashback_usd": money_str(decision.cashback_usd),
        "account_currency": decision.account_currency,
        "cashback": money_str(decision.cashback),
        "commission_usd": money_str(decision.commission_usd),
        "margin_usd": money_str(decision.margin_usd),
        "fx_rate": str(record.fx_rate),
        "fx_day": record.fx_day,
        "held": {figure: money_str(getattr(record, figure)) for figure in FIGURES},
        "reasons": list(decision.reasons),
        "config_version": decision.config_version,
        "decided_at": record.decided_at,
        "lines": [
            {
                **decision_line.__dict__,
                "reasons": list(decision_line.reasons),
                "status_at": lines.get(decision_line.line_id, {}).get("status_at"),
                "amount": lines.get(decision_line.line_id, {}).get("amount"),
                "currency": lines.get(decision_line.line_id, {}).get("currency"),
            }
            for decision_line in decision.lines
        ],
        "trail": [step.__dict__ for step in decision.trail],
        "journal": journal,
        "refused": refused,
        "also_matches": keys[1:],
        "claims": _claims_naming(claims, record),
        "explanation": render_trail(decision, lang, journal=journal, refused=refused, review=record.review)
        + claim_note(decision, lang),
    }


def _claims_naming(claims: ClaimsStore | None, record: OrderItem) -> list[dict[str, Any]]:
    """Every claim naming one of the order's numbers, as stored."""
    if claims is None:
        return []
    numbers = [number for number in (record.order_id, record.partner_order_id) if number]
    return [claim.to_dict() for claim in claims.for_numbers(numbers)]


def _refused_report(body: str | None) -> dict[str, Any]:
    """The refused report's item, status and status time (for the explanation), from the line it kept."""
    line = json.loads(body) if body else {}
    return {"line_id": line.get("line_id"), "status": line.get("status"), "status_at": line.get("status_at")}


def audit(store: LedgerStore) -> dict[str, Any]:
    """Recompute everything the ledger keeps and compare: each balance with its journal, each order's holding with
    its journal and with what its lines decide today, and the identity rules (one partner line in one order, an
    order's money with its one shopper, one currency per balance, no negative pending)."""
    differences: list[dict[str, Any]] = []
    journal_by_user: dict[str, Holding] = defaultdict(Holding)
    journal_by_order: dict[str, dict[str, Holding]] = defaultdict(lambda: defaultdict(Holding))
    currencies: dict[str, set[str]] = defaultdict(set)
    entries = 0
    for entry in store.scan_journal():
        entries += 1
        delta = entry.delta
        journal_by_user[entry.user_id] = journal_by_user[entry.user_id].plus(delta)
        journal_by_order[entry.key][entry.user_id] = journal_by_order[entry.key][entry.user_id].plus(delta)
        currencies[entry.user_id].add(entry.account_currency)

    balances = 0
    negative: list[str] = []
    seen_users = set()
    for stored_balance in store.scan_balances():
        balances += 1
        seen_users.add(stored_balance.user_id)
        stored = stored_balance.holding
        if stored != journal_by_user.get(stored_balance.user_id, Holding()):
            differences.append(
                {
                    "kind": "balance",
                    "user_id": stored_balance.user_id,
                    "stored": _figures(stored),
                    "journal": _figures(journal_by_user.get(stored_balance.user_id, Holding())),
                }
            )
        if stored.confirmed_usd < 0:
            negative.append(stored_balance.user_id)
        if stored.pending_usd < 0 or stored.pending < 0:
            differences.append(
                {"kind": "negative_pending", "user_id": stored_balance.user_id, "stored": _figures(stored)}
            )
        used = currencies.get(stored_balance.user_id, set()) | (
            {stored_balance.account_currency} if stored_balance.account_currency else set()
        )
        if len(used) > 1:
            differences.append(
                {"kind": "mixed_currencies", "user_id": stored_balance.user_id, "currencies": sorted(used)}
            )
    for user_id in sorted(set(journal_by_user) - seen_users):
        differences.append(
            {"kind": "balance_missing", "user_id": user_id, "journal": _figures(journal_by_user[user_id])}
        )

    homes: dict[str, list[str]] = defaultdict(list)
    for line_ref, key in store.scan_live_lines():
        homes[line_ref].append(key)
    for line_ref, keys in sorted(homes.items()):
        if len(keys) > 1:
            differences.append({"kind": "line_in_two_orders", "line": line_ref, "orders": sorted(keys)})

    orders = 0
    configs: dict[str, Any] = {}
    for record in store.scan_orders():
        orders += 1
        journal = journal_by_order.pop(record.key, {})
        try:
            differences.extend(_audit_order(store, record, journal, configs))
        except Exception as error:  # noqa: BLE001 - an order the audit cannot even recompute is itself a finding
            differences.append(
                {"kind": "order_unreadable", "order": record.key, "error": f"{type(error).__name__}: {error}"[:500]}
            )
    for key in sorted(journal_by_order):
        differences.append({"kind": "journal_without_order", "order": key})
    return {
        "ok": not differences,
        "orders": orders,
        "balances": balances,
        "journal_entries": entries,
        "negative_confirmed_balances": negative,
        "differences": differences,
    }


def _audit_order(
    store: LedgerStore,
    record: OrderItem,
    journal: dict[str, Holding],
    configs: dict[str, Any],
) -> Iterable[dict[str, Any]]:
    held = Holding(record.pending_usd, record.confirmed_usd, record.pending, record.confirmed)
    mine = journal.get(record.user_id, Holding()) if record.user_id else Holding()
    if held != mine:
        yield {
            "kind": "order_holding",
            "order": record.key,
            "user_id": record.user_id,
            "held": _figures(held),
            "journal": _figures(mine),
        }
    for user_id, holding in sorted(journal.items()):
        if user_id != record.user_id and not holding.is_zero:
            yield {
                "kind": "money_with_other_shopper",
                "order": record.key,
                "user_id": user_id,
                "order_user_id": record.user_id,
                "journal": _figures(holding),
            }
    if min(held.pending_usd, held.confirmed_usd, held.pending, held.confirmed) < 0:
        yield {"kind": "negative_holding", "order": record.key, "held": _figures(held)}
    view = load_order(record.key, store)
    if record.state == OrderState.MOVED:
        if view.lines or not held.is_zero:
            yield {"kind": "moved_order_not_empty", "order": record.key}
        return
    if view.decision_json is None:
        yield {"kind": "decision_missing", "order": record.key}
        return
    stored = OrderDecision.from_dict(json.loads(view.decision_json))
    if sum((line.cashback_usd for line in stored.lines), ZERO) != stored.cashback_usd:
        yield {"kind": "lines_do_not_add_up", "order": record.key}
    lines = view.lines
    recomputed = _recompute(store, record, lines, stored, configs)
    if canonical(recomputed.to_dict()) != canonical(stored.to_dict()):
        yield {
            "kind": "decision",
            "order": record.key,
            "stored_cashback_usd": str(stored.cashback_usd),
            "recomputed_cashback_usd": str(recomputed.cashback_usd),
            "stored_user_id": stored.user_id,
            "recomputed_user_id": recomputed.user_id,
        }
    if record.user_id != stored.user_id:
        yield {"kind": "order_user", "order": record.key, "user_id": record.user_id, "decided": stored.user_id}
    expected = _expected_holding(OrderState(record.state), stored, lines, record.fx_rate, held)
    if expected is not None and expected != held:
        yield {
            "kind": "state_holding",
            "order": record.key,
            "state": record.state,
            "held": _figures(held),
            "expected": _figures(expected),
        }


def _recompute(
    store: LedgerStore,
    record: OrderItem,
    lines: dict[str, OrderLine],
    stored: OrderDecision,
    configs: dict[str, Any],
) -> OrderDecision:
    """The decision the rules give for the order's lines, attributed from the facts the ledger decided from: the
    clicks of the shoppers the decision names (a click loaded later is a new fact the ledger has not read yet, not a
    wrong decision) and the claims recorded on the order."""
    version = stored.config_version
    if version not in configs:
        configs[version] = store.config_version(version)
    pinned = pinned_shopper(record.state, record.user_id, record.review, record.review_user)
    named = _named_shoppers(stored)
    clicks = {
        sub_id: click
        for sub_id, click in store.find_clicks(line.sub_id for line in lines.values() if line.sub_id).items()
        if click is not None and click.user_id in named
    }
    attribution = attribute(lines, clicks, pinned_user=pinned, claims=claims_of(record.claims))
    recomputed = decide_order(
        list(lines.values()),
        attribution.click,
        configs[version],
        now=parse_utc(record.decided_at),
        other_new_user_coupon_accounts=frozenset(record.review_accounts or ()),
        conflict=attribution.conflict,
    )
    return with_claim_step(recomputed, attribution.claim)


def _named_shoppers(decision: OrderDecision) -> set[str]:
    """The shoppers a decision was made for: its shopper, or the shoppers of its attribution conflict."""
    if decision.user_id is not None:
        return {decision.user_id}
    for step in decision.trail:
        if step.rule == "attribution_conflict":
            return set(str(step.numbers.get("user_ids", "")).split(","))
    return set()


def _expected_holding(
    state: OrderState, decision: OrderDecision, lines: dict[str, OrderLine], fx_rate: Decimal, held: Holding
) -> Holding | None:
    if state == OrderState.PENDING:
        return earning_holding(decision, lines, fx_rate)
    if state == OrderState.CONFIRMED:
        return held if held.confirmed_usd > 0 and held.pending_usd == 0 else Holding()
    return Holding()


def _figures(holding: Holding) -> dict[str, str]:
    return {figure: str(getattr(holding, figure)) for figure in FIGURES}
