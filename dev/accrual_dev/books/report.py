"""The month's books, read from the ledger (never a second copy of the money): orders, lines and cashback by partner
and state, the partners' commission and the margin, the orders paid above their commission, exclusions by reason
and by shop, quarantined lines, claims, and the confirmation lag.

An order belongs to the month of its `ordered_at` (UTC). The orders and their journals are streamed from the store's
`month_orders` (one scan of the orders table, segment by segment, an order's partition at a time), so memory holds
one order plus the running totals: counters by partner, state, code, shop and day, and the lags as a histogram of whole minutes. Every figure is a sum or a count, so the result does not depend on the order the scan returns; lists are
sorted before they are printed.

What each figure counts:

- `orders`: orders by their state now; `lines`: their live lines by the partner's last status.
- `cashback_usd.pending` / `.confirmed`: what the month's orders hold now; `.declined`: the pending money voided by
  declines (journal entries `void` into `declined`); `.reversed`: the confirmed money clawed back (`reverse`
  entries). `by_currency` gives the same four in each account currency.
- `commission_usd`, `margin_usd`: over the orders that earn now (pending or confirmed), the partner's commission on
  the lines they earn from and that commission minus their cashback, as their decisions record them.
- `negative_margin`: those earning orders whose margin is below zero.
- `exclusions`: declined orders counted once under each reason code of their decision that made them earn nothing
  (exclusions and review holds); `exclusions_by_shop`: the same orders by the shop of their excluded lines (top 20).
- `quarantined`: quarantined lines by partner, in the month of the order time they name when that much of them can
  be read, else of the time they were quarantined; `quarantined_by_reason`: the same by the field the reason names.
- `claims`: missing-cashback claims about orders of the month (the order time the shopper gave, else the time the
  claim was filed), by their state now.
- `lag`: hours from the order to its first pending entry, and from the last settlement of its lines to the entry
  that confirmed it, as percentiles (nearest rank over whole minutes).
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from accrual.domain.claims import Claim
from accrual.domain.decision import EXCLUSIONS, Code, OrderDecision
from accrual.domain.lifecycle import OrderState, Transition
from accrual.domain.models import LineStatus, OrderLine
from accrual.domain.money import ZERO, money_str
from accrual.ports import JournalEntry, LedgerStore, LoadedOrder, OrderItem, parse_utc, utc_text

STATES_OF_MONEY = ("pending", "confirmed", "declined", "reversed")
EARNING = frozenset({OrderState.PENDING.value, OrderState.CONFIRMED.value})
# the codes that make a declined order earn nothing: the exclusions and the review holds an operator declined
DECLINE_CODES = EXCLUSIONS | {Code.MULTI_ACCOUNT_NEW_USER_COUPON, Code.OVER_COMMISSION_SHARE}
PERCENTILES = (50, 90, 99)
TOP_SHOPS = 20
READ_BATCH = 16  # orders read per worker before their figures are added (what memory holds at once)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` to the month's first instant and the next month's, in UTC."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"month {month!r} is not YYYY-MM") from None
    days = calendar.monthrange(start.year, start.month)[1]
    return start, start + timedelta(days=days)


@dataclass(frozen=True)
class Quarantined:
    """One quarantined line as the report counts it: its partner and the time that places it in a month."""

    partner: str
    at: datetime
    reason: str = ""  # the reason's kind: the field it names ("amount", "currency"), else its first words


REASON_FIELD = re.compile(r"([A-Za-z_][\w.\[\]]*)=")
REASON_WORDS = 60


def reason_kind(reason: str) -> str:
    """A quarantine reason grouped by what it is about: `amount='a lot': not a decimal` is `amount`; a reason that
    names no field is its first clause."""
    field = REASON_FIELD.match(reason)
    if field:
        return field.group(1)
    return reason.split(":", 1)[0].strip()[:REASON_WORDS]


# where a raw line names its order time: the normalised line, AliExpress's order, Admitad's action
ORDER_TIME_FIELDS = ("ordered_at", "created_time", "action_date")


def quarantined_line(
    source: str, raw: str, quarantined_at: datetime, partners: Iterable[str], reason: str = ""
) -> Quarantined:
    """A quarantined line counts for the partner it names (when it can be read that far and the partner is known),
    else for the partner whose report it came from; and in the month of the order time it names (read in UTC when it
    gives no zone), else in the month it was quarantined."""
    try:
        fields = json.loads(raw)
    except ValueError:
        fields = None
    kind = reason_kind(reason)
    if not isinstance(fields, dict):
        return Quarantined(source, quarantined_at, kind)
    named = fields.get("partner")
    partner = named if isinstance(named, str) and named in set(partners) else source
    for name in ORDER_TIME_FIELDS:
        try:
            moment = datetime.fromisoformat(str(fields[name]).strip().replace(" ", "T", 1))
        except (KeyError, ValueError):
            continue
        return Quarantined(partner, moment if moment.tzinfo else moment.replace(tzinfo=UTC), kind)
    return Quarantined(partner, quarantined_at, kind)


def _money() -> dict[str, Decimal]:
    return dict.fromkeys(STATES_OF_MONEY, ZERO)


@dataclass
class _Partner:
    orders: Counter[str] = field(default_factory=Counter)
    lines: Counter[str] = field(default_factory=Counter)
    cashback_usd: dict[str, Decimal] = field(default_factory=_money)
    by_currency: dict[str, dict[str, Decimal]] = field(default_factory=lambda: defaultdict(_money))
    commission_usd: Decimal = ZERO
    margin_usd: Decimal = ZERO

    def merge(self, other: _Partner) -> None:
        self.orders.update(other.orders)
        self.lines.update(other.lines)
        _add_amounts(self.cashback_usd, other.cashback_usd)
        for currency, amounts in other.by_currency.items():
            _add_amounts(self.by_currency[currency], amounts)
        self.commission_usd += other.commission_usd
        self.margin_usd += other.margin_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": dict(sorted(self.orders.items())),
            "lines": dict(sorted(self.lines.items())),
            "cashback_usd": _money_strs(self.cashback_usd),
            "by_currency": {currency: _money_strs(self.by_currency[currency]) for currency in sorted(self.by_currency)},
            "commission_usd": money_str(self.commission_usd),
            "margin_usd": money_str(self.margin_usd),
        }


def _add_amounts(into: dict[str, Decimal], amounts: dict[str, Decimal]) -> None:
    for state, amount in amounts.items():
        into[state] += amount


def _money_strs(amounts: dict[str, Decimal]) -> dict[str, str]:
    return {state: money_str(amounts[state]) for state in STATES_OF_MONEY}


class LagHistogram:
    """Lags counted in whole minutes: percentiles by nearest rank without keeping every order's lag."""

    def __init__(self) -> None:
        self.minutes: Counter[int] = Counter()

    def add(self, lag: timedelta) -> None:
        self.minutes[max(0, int(lag.total_seconds() // 60))] += 1

    def merge(self, other: LagHistogram) -> None:
        self.minutes.update(other.minutes)

    @property
    def count(self) -> int:
        return sum(self.minutes.values())

    def percentile(self, p: int) -> int:
        rank = -(-p * self.count // 100)  # ceil(p% of n), at least 1
        seen = 0
        for minute in sorted(self.minutes):
            seen += self.minutes[minute]
            if seen >= max(rank, 1):
                return minute
        raise ValueError("no lags")

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"orders": self.count}
        if self.count:
            for p in PERCENTILES:
                result[f"p{p}_hours"] = _hours(self.percentile(p))
            result["max_hours"] = _hours(max(self.minutes))
        return result

    def buckets(self) -> list[tuple[int, int]]:
        """(whole hours, orders) for a chart of the distribution."""
        hours: Counter[int] = Counter()
        for minute, count in self.minutes.items():
            hours[minute // 60] += count
        return sorted(hours.items())


def _hours(minutes: int) -> str:
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01")))


@dataclass
class _Books:
    month: str
    partners: dict[str, _Partner] = field(default_factory=lambda: defaultdict(_Partner))
    negative: list[dict[str, str]] = field(default_factory=list)
    exclusions: Counter[str] = field(default_factory=Counter)
    shops: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    daily: dict[str, dict[str, Decimal | int]] = field(default_factory=dict)
    to_pending: LagHistogram = field(default_factory=LagHistogram)
    to_confirmed: LagHistogram = field(default_factory=LagHistogram)

    def merge(self, other: _Books) -> _Books:
        """Add another part of the same month's orders to these books (every figure is a sum, a count or a list
        sorted when printed, so the parts may be read apart and in any order)."""
        for name, partner in other.partners.items():
            self.partners[name].merge(partner)
        self.negative += other.negative
        self.exclusions.update(other.exclusions)
        for shop, counts in other.shops.items():
            self.shops[shop].update(counts)
        for day, day_figures in other.daily.items():
            into = self.daily.setdefault(day, {"orders": 0, "pending_usd": ZERO, "confirmed_usd": ZERO})
            for name, value in day_figures.items():
                into[name] += value
        self.to_pending.merge(other.to_pending)
        self.to_confirmed.merge(other.to_confirmed)
        return self


def month_report(
    store: LedgerStore,
    month: str,
    *,
    partner: str | None = None,
    quarantined: Iterable[Quarantined] = (),
    claims: Iterable[Claim] = (),
    workers: int = 1,
    books: _Books | None = None,
) -> dict[str, Any]:
    """The month's books as the JSON contract prints them (decimal strings, sorted keys and lists). `workers` threads
    read the orders (a few batches of keys in flight at a time); the totals are added up in this thread. `books`:
    the orders' figures already read (`month_books`, in parts merged), instead of reading them from `store`."""
    start, end = month_bounds(month)
    if books is None:
        books = month_books(store, month, partner=partner, workers=workers)
    return _result(books, start, end, partner, quarantined, claims)


def merged_books(parts: Iterable[_Books]) -> _Books:
    """The books of a month read in parts (`month_books` over shares of its orders), added up."""
    return functools.reduce(_Books.merge, parts)


def month_books(
    store: LedgerStore,
    month: str,
    *,
    partner: str | None = None,
    workers: int = 1,
    keys: Iterable[str] | None = None,
    part: tuple[int, int] | None = None,
) -> _Books:
    """The figures of the month's orders: every order the store has placed in the month (`month_orders`, `workers`
    threads each reading a share; `part` (k, n): only the k-th of n shares, read apart and added up with
    `merged_books`), or only those of `keys`, read with `workers` threads an order at a time."""
    if keys is not None:
        books = _month_start(month)
        wanted = (key for key in keys if partner is None or key.startswith(f"{partner}#"))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            while batch := list(islice(wanted, READ_BATCH * max(1, workers))):
                for loaded, journal in pool.map(store.order_with_journal, batch):
                    _add_order(books, loaded, journal)
        return books
    share, shares = part or (0, 1)
    threads = max(1, workers)
    # thread j of this share reads the share's j-th part: (share + shares * j) of (shares * threads)
    parts = [(share + shares * thread, shares * threads) for thread in range(threads)]
    read = functools.partial(_month_share, store, month, partner)
    if threads == 1:
        return read(parts[0])
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return merged_books(pool.map(read, parts))


def _month_start(month: str) -> _Books:
    start, end = month_bounds(month)
    books = _Books(month)
    for day in range((end - start).days):
        books.daily[(start + timedelta(days=day)).date().isoformat()] = {
            "orders": 0,
            "pending_usd": ZERO,
            "confirmed_usd": ZERO,
        }
    return books


def _month_share(store: LedgerStore, month: str, partner: str | None, part: tuple[int, int]) -> _Books:
    start, end = month_bounds(month)
    books = _month_start(month)
    for loaded, journal in store.month_orders(utc_text(start), utc_text(end), partner=partner, part=part):
        _add_order(books, loaded, journal)
    return books


def _add_order(books: _Books, loaded: LoadedOrder, journal: list[JournalEntry]) -> None:
    order = loaded.order
    if order is None or loaded.decision is None:
        return
    decision = OrderDecision.from_dict(json.loads(loaded.decision))
    lines = [OrderLine.model_validate_json(line.body) for line in loaded.lines if line.moved_to is None]
    figures = books.partners[order.partner]
    figures.orders[order.state] += 1
    figures.lines.update(line.status.value for line in lines)
    _add_money(figures, order, journal)
    day = books.daily.get(parse_utc(order.ordered_at).date().isoformat())
    if day is not None:
        day["orders"] += 1
        day["pending_usd"] += order.pending_usd
        day["confirmed_usd"] += order.confirmed_usd
    if order.state in EARNING:
        figures.commission_usd += decision.commission_usd
        figures.margin_usd += decision.margin_usd
        if decision.margin_usd < 0:
            books.negative.append(
                {
                    "order_id": order.order_id,
                    "partner": order.partner,
                    "state": order.state,
                    "cashback_usd": money_str(decision.cashback_usd),
                    "commission_usd": money_str(decision.commission_usd),
                    "margin_usd": money_str(decision.margin_usd),
                }
            )
    if order.state == OrderState.DECLINED.value:
        _add_decline(books, decision, lines)
    _add_lags(books, order, journal, lines)


def _add_money(figures: _Partner, order: OrderItem, journal: list[JournalEntry]) -> None:
    figures.cashback_usd["pending"] += order.pending_usd
    figures.cashback_usd["confirmed"] += order.confirmed_usd
    if order.pending or order.confirmed:
        in_currency = figures.by_currency[order.account_currency]
        in_currency["pending"] += order.pending
        in_currency["confirmed"] += order.confirmed
    for entry in journal:
        if entry.transition == Transition.VOID.value and entry.state_to == OrderState.DECLINED.value:
            figures.cashback_usd["declined"] -= entry.delta.pending_usd
            figures.by_currency[entry.account_currency]["declined"] -= entry.delta.pending
        elif entry.transition == Transition.REVERSE.value:
            figures.cashback_usd["reversed"] -= entry.delta.confirmed_usd
            figures.by_currency[entry.account_currency]["reversed"] -= entry.delta.confirmed


def _add_decline(books: _Books, decision: OrderDecision, lines: list[OrderLine]) -> None:
    codes = sorted(code for code in decision.reasons if code in DECLINE_CODES)
    books.exclusions.update(codes)
    shop_of = {line.line_id: line.shop_id for line in lines}
    excluded = {decided.line_id: decided.exclusion for decided in decision.lines if decided.exclusion}
    by_shop: dict[str, set[str]] = defaultdict(set)
    for line_id, code in excluded.items():
        shop = shop_of.get(line_id)
        if shop:
            by_shop[shop].add(code)
    for shop, shop_codes in by_shop.items():
        books.shops[shop]["orders"] += 1
        books.shops[shop].update(shop_codes)


def _add_lags(books: _Books, order: OrderItem, journal: list[JournalEntry], lines: list[OrderLine]) -> None:
    pending = [entry for entry in journal if entry.transition == Transition.PENDING.value]
    if pending:
        books.to_pending.add(parse_utc(pending[0].at) - parse_utc(order.ordered_at))
    posted = [entry for entry in journal if entry.transition == Transition.POST.value]
    settled = [line.settled_at or line.status_at for line in lines if line.status == LineStatus.SETTLED]
    if posted and settled:
        books.to_confirmed.add(parse_utc(posted[0].at) - max(settled))


def claim_time(claim: Claim) -> datetime:
    """What places a claim in a month: the order time the shopper gave (a bare date at midnight UTC), else when the
    claim was filed."""
    if claim.ordered_at is not None:
        return claim.ordered_at
    if claim.ordered_on is not None:
        return datetime.combine(claim.ordered_on, datetime.min.time(), tzinfo=UTC)
    return claim.filed_at


def _result(
    books: _Books,
    start: datetime,
    end: datetime,
    partner: str | None,
    quarantined: Iterable[Quarantined],
    claims: Iterable[Claim],
) -> dict[str, Any]:
    partners = {name: books.partners[name].as_dict() for name in sorted(books.partners)}
    totals = _money()
    commission = margin = ZERO
    for figures in books.partners.values():
        for state in STATES_OF_MONEY:
            totals[state] += figures.cashback_usd[state]
        commission += figures.commission_usd
        margin += figures.margin_usd
    in_month = [item for item in quarantined if start <= item.at < end and partner in (None, item.partner)]
    quarantine_counts: Counter[str] = Counter(item.partner for item in in_month)
    quarantine_reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for item in in_month:
        quarantine_reasons[item.partner][item.reason] += 1
    claim_counts: Counter[str] = Counter(
        claim.state.value
        for claim in claims
        if start <= claim_time(claim) < end and (partner is None or (claim.order_key or "").startswith(f"{partner}#"))
    )
    shops = sorted(books.shops.items(), key=lambda item: (-item[1]["orders"], item[0]))[:TOP_SHOPS]
    return {
        "month": books.month,
        "partner": partner,
        "partners": partners,
        "totals": {
            "orders": sum(sum(figures.orders.values()) for figures in books.partners.values()),
            "cashback_usd": _money_strs(totals),
            "commission_usd": money_str(commission),
            "margin_usd": money_str(margin),
        },
        "negative_margin": sorted(books.negative, key=lambda item: (item["partner"], item["order_id"])),
        "exclusions": dict(sorted(books.exclusions.items())),
        "exclusions_by_shop": [
            {
                "shop": shop,
                "orders": counts["orders"],
                "reasons": {code: n for code, n in sorted(counts.items()) if code != "orders"},
            }
            for shop, counts in shops
        ],
        "quarantined": dict(sorted(quarantine_counts.items())),
        "quarantined_by_reason": {
            name: dict(sorted(quarantine_reasons[name].items())) for name in sorted(quarantine_reasons)
        },
        "claims": dict(sorted(claim_counts.items())),
        "lag": {
            "order_to_pending": books.to_pending.as_dict(),
            "settlement_to_confirmed": books.to_confirmed.as_dict(),
        },
        "daily": [
            {
                "day": day,
                "orders": figures["orders"],
                "pending_usd": money_str(Decimal(figures["pending_usd"])),
                "confirmed_usd": money_str(Decimal(figures["confirmed_usd"])),
            }
            for day, figures in sorted(books.daily.items())
        ],
        "lag_distribution": {
            "order_to_pending": [[hours, count] for hours, count in books.to_pending.buckets()],
            "settlement_to_confirmed": [[hours, count] for hours, count in books.to_confirmed.buckets()],
        },
    }
