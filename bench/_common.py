"""Shared pieces of the benchmarks: realistic orders from the seeded partner simulator, the accrual configuration
they are decided under, the local moto stack, an AWS call meter and the results file.

Orders come from `accrual_dev.simulator.generate` (AliExpress sub-orders and Admitad actions with their status
histories), mapped to `OrderLine`s by the partners' own mappers (`aliexpress.map_order`, `admitad.map_position`),
so the bench sees what a pull sees. A small seeded share of lines is then decorated with what the simulator does
not produce (VAT countries, promotions, new-user coupons, promo codes, disputes, 4-5 line carts), so that every rule
is exercised.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
sys.path.insert(0, str(ROOT / "layers" / "accrual"))  # when run without the editable install

from accrual.domain.models import AccrualConfig, Click, OrderLine  # noqa: E402
from accrual.partners import admitad, aliexpress  # noqa: E402
from accrual.partners.report import PartnerOptions  # noqa: E402
from accrual.settings import RESOURCE_VARIABLES  # noqa: E402
from accrual_dev.simulator import DEFAULT_START  # noqa: E402
from accrual_dev.simulator.generator import World, generate  # noqa: E402

SEED = 7
KB = 1024


# ---- realistic data -----------------------------------------------------------------------------------------------
def accrual_config(start: datetime = DEFAULT_START) -> AccrualConfig:
    """A configuration for both simulated partners: category rates, hot and non-affiliate rates, a promotion window,
    VAT countries, fx rates for every account currency, the 40 USD cap, hold days."""
    return AccrualConfig.model_validate(
        {
            "version": "bench-1",
            "rate_cards": [
                {
                    "partner": partner,
                    "valid_from": "2026-01-01T00:00:00Z",
                    "default_rate": "0.03",
                    "non_affiliate_rate": "0.01",
                    "hot_product_rate": "0.12",
                    "categories": {"100001": "0.05", "66": "0.06", "3": "0.06", "44": "0.02"},
                }
                for partner in ("aliexpress", "admitad")
            ],
            "promotions": [
                {
                    "partner": "aliexpress",
                    "categories": ["44", "7"],
                    "rate": "0.08",
                    "starts_at": (start + timedelta(days=3)).isoformat(),
                    "ends_at": (start + timedelta(days=20)).isoformat(),
                }
            ],
            "excluded_shops": ["shop-excluded"],
            "virtual_categories": ["200001"],
            "vat_rates": {"DE": "0.19", "UA": "0.20", "KZ": "0.12"},
            "fx_rates": {"2026-01-01": {"RUB": "92.50", "UAH": "41.20", "KZT": "480.00", "EUR": "0.93"}},
            "cap_usd": "40.00",
            "min_cashback_usd": "0.01",
            "awaiting_payment_days": 3,
            "hold_days": {"aliexpress": 14, "admitad": 14},
        }
    )


@dataclass
class Orders:
    """Orders of a seeded world: lines as first reported (paid/pending) and as finally reported, and the clicks."""

    world: World
    first: dict[str, list[OrderLine]]  # order key -> lines as of the first report
    final: dict[str, list[OrderLine]]  # order key -> lines as of the last status
    clicks: dict[str, Click]
    last_event: datetime
    decorated: Counter = field(default_factory=Counter)

    def settled(self) -> list[str]:
        """Attributed orders whose every line ends settled (the happy path: paid -> settled -> confirmed)."""
        return [
            key
            for key, lines in self.final.items()
            if all(line.status.value == "settled" for line in lines) and lines[0].sub_id in self.clicks
        ]


def _updated(line: OrderLine, update: dict[str, Any]) -> OrderLine:
    """A validated copy (model_copy would not turn the enum text into its member)."""
    return OrderLine.model_validate({**line.model_dump(), **update})


def _decorate(rng: random.Random, lines: list[OrderLine], counts: Counter) -> list[OrderLine]:
    """Seeded extras the simulator does not produce; the same decoration applies to every report of the order."""
    out = list(lines)
    roll = rng.random()
    if lines[0].partner == "aliexpress" and roll < 0.06 and len(lines) >= 2:  # a 4-5 product cart
        extra = []
        for number in range(max(0, min(rng.choice((2, 3)), 5 - len(out)))):
            base = out[number % len(out)]
            extra.append(
                _updated(
                    base,
                    {
                        "line_id": f"{base.line_id}x{number}",
                        "category_id": rng.choice(("3", "66", "44", "100001")),
                        "product_id": f"{base.product_id}{number}",
                        "amount": base.amount + Decimal(rng.randrange(1, 3000)) / 100,
                    },
                )
            )
        out += extra
        counts["carts_4_5_lines"] += 1
    account = f"acct-{rng.randrange(10**6)}"
    decorated = []
    for line in out:
        update: dict[str, Any] = {}
        pick = rng.random()
        if pick < 0.04:
            update.update(new_user_coupon=True, buyer_account=account)
            counts["new_user_coupon"] += 1
        elif pick < 0.07:
            update.update(promo_code="SAVE5", promo_code_kind=rng.choice(("service", "seller_coupon", "other")))
            counts["promo_code"] += 1
        elif pick < 0.08:
            update.update(dispute=True)
            counts["dispute"] += 1
        elif pick < 0.10:
            update.update(shop_id="shop-excluded")
            counts["excluded_shop"] += 1
        elif pick < 0.12 and line.partner == "admitad":
            update.update(tax=(line.amount * Decimal("0.15")).quantize(Decimal("0.01")))
            counts["tax_reported"] += 1
        decorated.append(_updated(line, update) if update else line)
    return decorated


def _map(records: Iterable[tuple[str, Any, Any]], options: PartnerOptions) -> list[OrderLine]:
    lines = []
    for kind, record, _extra in records:
        if record is None:
            continue
        if kind == "ali":
            lines.append(aliexpress.map_order(record, options))
        else:
            positions = record.get("positions") or [None]
            lines += [
                admitad.map_position(record, position, index, options) for index, position in enumerate(positions, 1)
            ]
    return lines


def build_orders(*, days: int = 60, orders_per_day: int = 40, seed: int = SEED, users: int = 400) -> Orders:
    world = generate(seed, start=DEFAULT_START, days=days, orders_per_day=orders_per_day, users=users)
    options = PartnerOptions(usd_rates=world.usd_rates)
    last_event = max(change.at for item in [*world.aliexpress, *world.admitad] for change in item.history)
    far = last_event + timedelta(seconds=1)
    first: dict[str, list[OrderLine]] = defaultdict(list)
    final: dict[str, list[OrderLine]] = defaultdict(list)
    for order in world.aliexpress:
        if order.listed_twice:  # a duplicate listing is one line reported twice: keep one
            pass
        paid = order.history[0].at
        for target, moment in ((first, paid), (final, far)):
            for line in _map([("ali", order.as_of(moment), None)], options):
                target[line.order_key].append(line)
    for action in world.admitad:
        pending = action.history[0].at
        for target, moment in ((first, pending), (final, far)):
            for line in _map([("adm", action.as_of(moment), None)], options):
                target[line.order_key].append(line)
    decorated: Counter = Counter()
    rng_first, rng_final = random.Random(seed), random.Random(seed)
    first_out = {key: _decorate(rng_first, lines, decorated) for key, lines in sorted(first.items())}
    final_out = {key: _decorate(rng_final, lines, Counter()) for key, lines in sorted(final.items())}
    clicks = {click["sub_id"]: Click.model_validate(click) for click in world.clicks}
    return Orders(world, first_out, final_out, clicks, last_event, decorated)


# ---- DynamoDB item sizes and capacity units -----------------------------------------------------------------------
def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return 1 + math.ceil(len(digits) / 2)


def value_size(value: dict[str, Any]) -> int:
    """Size of one attribute value in DynamoDB's wire form, by the documented rules (strings and binaries by their
    UTF-8 length, numbers ~1 byte per two significant digits + 1, lists and maps 3 bytes + 1 per element)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else math.ceil(len(inner) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(item.encode()) for item in inner)
    if kind == "NS":
        return sum(_number_size(item) for item in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(item) for item in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(item) for name, item in inner.items())
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int) -> int:
    return max(1, math.ceil(size / (4 * KB)))


# ---- the AWS call meter -------------------------------------------------------------------------------------------
@dataclass
class TableInfo:
    keys: tuple[str, ...]
    gsis: dict[str, tuple[str, ...]]  # index name -> key attribute names (all keys-only projections here)


@dataclass
class Phase:
    name: str
    calls: Counter = field(default_factory=Counter)  # "service:Operation" -> calls
    seconds: Counter = field(default_factory=Counter)  # "service:Operation" -> emulator seconds
    retries: int = 0
    errors: Counter = field(default_factory=Counter)  # "Operation:ErrorCode" -> answers
    txn_items: Counter = field(default_factory=Counter)  # items per TransactWriteItems -> transactions
    txn_ops: Counter = field(default_factory=Counter)  # "Put:orders/ORDER" ... -> count
    wru_table: float = 0.0  # write request units on base tables (transactional = 2 per KB)
    wru_gsi: float = 0.0  # write request units on global secondary indexes (1 per index entry written/removed)
    rru: float = 0.0  # read request units (strong 1 / eventual 0.5 per 4 KB)
    moto_capacity: float = 0.0  # what moto put in ConsumedCapacity (fixed placeholder values)
    unknown_old_images: int = 0
    largest_item: int = 0
    txn_time_by_size: dict[int, list[float]] = field(default_factory=dict)  # orders-table items bucket -> [s, n]

    def as_dict(self, orders: int) -> dict[str, Any]:
        per = (lambda value: round(value / orders, 3)) if orders else (lambda value: None)
        api_calls = sum(self.calls.values())
        return {
            "orders": orders,
            "api_calls": api_calls,
            "api_calls_per_order": per(api_calls),
            "calls_by_operation": dict(sorted(self.calls.items())),
            "calls_per_order_by_operation": {name: per(count) for name, count in sorted(self.calls.items())},
            "emulator_seconds_by_operation": {name: round(value, 3) for name, value in sorted(self.seconds.items())},
            "sdk_retries": self.retries,
            "errors": dict(self.errors),
            "transactions": sum(self.txn_items.values()),
            "items_per_transaction": {str(size): count for size, count in sorted(self.txn_items.items())},
            "transaction_items_by_kind": dict(sorted(self.txn_ops.items())),
            "wru_base_tables": round(self.wru_table, 1),
            "wru_gsi": round(self.wru_gsi, 1),
            "wru_per_order": per(self.wru_table + self.wru_gsi),
            "rru": round(self.rru, 1),
            "rru_per_order": per(self.rru),
            "moto_reported_capacity": round(self.moto_capacity, 1),
            "unknown_old_images": self.unknown_old_images,
            "largest_item_bytes": self.largest_item,
        }


class Meter:
    """Counts every AWS call made through botocore (PynamoDB and boto3 alike) by wrapping
    `botocore.endpoint.Endpoint.make_request` (one call per logical request; SDK retries happen inside it and are
    counted apart), and estimates the capacity DynamoDB would charge from the request and response items.

    Memory stays bounded (the confirm bench measures its peak with this installed): counters, a small LRU of item
    images just read (so that an overwrite knows the old item's size and index keys) and per-table-size buckets."""

    def __init__(self, tables: dict[str, TableInfo], label_of: dict[str, str]) -> None:
        self.tables = tables
        self.label_of = label_of  # physical table name -> short label (orders, balances, outbox, ...)
        self.phase: Phase | None = None
        # (table, key) -> (item size, index keys) of an item just read or written, None when read as absent
        self.recent: OrderedDict[tuple[str, str], tuple[int, dict] | None] = OrderedDict()
        self.items: Counter = Counter()  # estimated items per table label
        self.queried: OrderedDict[tuple[str, str], None] = OrderedDict()  # partitions just read whole (Query)
        self._original = None
        # live-memory sampling (confirm bench): every `gc_every` calls, collect garbage and read tracemalloc
        self.gc_every = 0
        self.live_peak = 0
        self._calls = 0

    # -- installation
    def install(self) -> None:
        from botocore.endpoint import Endpoint

        meter, original = self, Endpoint.make_request
        self._original = original

        def make_request(endpoint, operation_model, request_dict):
            started = time.perf_counter()
            result = original(endpoint, operation_model, request_dict)
            if meter.phase is not None:
                meter.record(operation_model, request_dict, result, time.perf_counter() - started)
            return result

        Endpoint.make_request = make_request

    def uninstall(self) -> None:
        from botocore.endpoint import Endpoint

        if self._original is not None:
            Endpoint.make_request = self._original

    def start(self, name: str) -> Phase:
        self.phase = Phase(name)
        return self.phase

    def stop(self) -> Phase:
        phase, self.phase = self.phase, None
        return phase

    # -- recording
    def _remember(self, table: str, key: str, item: dict | None) -> None:
        self.recent[(table, key)] = None if item is None else (item_size(item), self._gsi_keys(table, item))
        self.recent.move_to_end((table, key))
        while len(self.recent) > 32:
            self.recent.popitem(last=False)

    def _key(self, table: str, item: dict) -> str:
        info = self.tables.get(table)
        names = info.keys if info else tuple(sorted(item))
        return json.dumps([item.get(name) for name in names], sort_keys=True)

    def _gsi_keys(self, table: str, item: dict | None) -> dict[str, str | None]:
        info = self.tables.get(table)
        if info is None or item is None:
            return {}
        out = {}
        for index, names in info.gsis.items():
            out[index] = json.dumps([item[name] for name in names]) if all(name in item for name in names) else None
        return out

    def _gsi_writes(self, table: str, before: dict, after: dict) -> int:
        """Index entries written or removed: keys-only projections, so an entry changes only with its keys."""
        writes = 0
        for index in set(before) | set(after):
            was, now = before.get(index), after.get(index)
            if was == now:
                continue
            writes += (was is not None) + (now is not None)
        return writes

    def record(self, operation_model, request_dict, result, seconds: float) -> None:
        phase = self.phase
        self._calls += 1
        if self.gc_every and self._calls % self.gc_every == 0:
            import gc
            import tracemalloc

            gc.collect()
            self.live_peak = max(self.live_peak, tracemalloc.get_traced_memory()[0])
        service = operation_model.service_model.service_name
        operation = operation_model.name
        name = f"{service}:{operation}"
        phase.calls[name] += 1
        phase.seconds[name] += seconds
        response = result[1] if isinstance(result, tuple) and len(result) > 1 else {}
        response = response or {}
        phase.retries += (response.get("ResponseMetadata") or {}).get("RetryAttempts", 0)
        if "Error" in response:
            phase.errors[f"{operation}:{response['Error'].get('Code')}"] += 1
        if service != "dynamodb":
            return
        try:
            body = request_dict.get("body") or b"{}"
            request = json.loads(body if isinstance(body, (str, bytes)) else b"{}")
        except ValueError:
            request = {}
        consumed = response.get("ConsumedCapacity")
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            phase.moto_capacity += float(entry.get("CapacityUnits") or 0)
        handler = getattr(self, f"_on_{operation}", None)
        if handler is not None:
            handler(phase, request, response, seconds)

    def _read(
        self, phase: Phase, table: str, items: list[dict], consistent: bool, index: str | None, one_each: bool
    ) -> None:
        unit = 1.0 if consistent else 0.5
        if one_each:
            phase.rru += sum(unit * read_units(item_size(item)) for item in items) if items else unit
        else:
            phase.rru += unit * read_units(sum(item_size(item) for item in items))
        if index is None:
            for item in items:
                self._remember(table, self._key(table, item), item)

    def _on_GetItem(self, phase, request, response, seconds):
        table = request.get("TableName", "")
        item = response.get("Item")
        self._read(phase, table, [item] if item else [], bool(request.get("ConsistentRead")), None, True)
        if not item:
            self._remember(table, self._key(table, request.get("Key", {})), None)

    def _on_Query(self, phase, request, response, seconds):
        table = request.get("TableName", "")
        info = self.tables.get(table)
        values = request.get("ExpressionAttributeValues") or {}
        if info and not request.get("IndexName") and not response.get("LastEvaluatedKey") and len(values) >= 1:
            # a base-table query of one partition, read to the end: a key of that partition it did not return
            # (under its sort-key condition) does not exist
            partition = json.dumps(next(iter(values.values())), sort_keys=True)
            self.queried[(table, partition)] = None
            self.queried.move_to_end((table, partition))
            while len(self.queried) > 8:
                self.queried.popitem(last=False)
        self._read(
            phase,
            request.get("TableName", ""),
            response.get("Items") or [],
            bool(request.get("ConsistentRead")),
            request.get("IndexName"),
            False,
        )

    def _on_Scan(self, phase, request, response, seconds):
        self._read(
            phase,
            request.get("TableName", ""),
            response.get("Items") or [],
            bool(request.get("ConsistentRead")),
            request.get("IndexName"),
            False,
        )

    def _on_BatchGetItem(self, phase, request, response, seconds):
        for table, items in (response.get("Responses") or {}).items():
            consistent = bool((request.get("RequestItems") or {}).get(table, {}).get("ConsistentRead"))
            self._read(phase, table, items, consistent, None, True)

    def _write_put(self, phase, table: str, item: dict, transactional: bool, condition: str | None) -> None:
        key = self._key(table, item)
        unit = 2 if transactional else 1
        new = (item_size(item), self._gsi_keys(table, item))
        if (table, key) in self.recent:
            old = self.recent[(table, key)]
        elif condition and "attribute_not_exists" in condition:
            old = None  # a conditional create: new unless the condition fails
        elif (
            self.tables.get(table)
            and (table, json.dumps(item.get(self.tables[table].keys[0]), sort_keys=True)) in self.queried
        ):
            old = None  # its partition was just queried and did not return it
        else:
            old = new  # not read just before: assume an overwrite of the same size and keys
            phase.unknown_old_images += 1
        phase.largest_item = max(phase.largest_item, new[0])
        phase.wru_table += unit * write_units(max(new[0], old[0] if old else 0))
        phase.wru_gsi += self._gsi_writes(table, old[1] if old else {}, new[1])
        if old is None:
            self.items[self.label_of.get(table, table)] += 1
        self._remember(table, key, item)

    def _write_update(self, phase, table: str, key_item: dict, update: dict, transactional: bool) -> None:
        key = self._key(table, key_item)
        unit = 2 if transactional else 1
        old = self.recent.get((table, key))
        values = update.get("ExpressionAttributeValues") or {}
        new_size = item_size(key_item) + sum(value_size(value) + 12 for value in values.values())
        size = max(old[0] if old else 0, new_size)
        phase.wru_table += unit * write_units(size)
        expression = update.get("UpdateExpression") or ""
        names = update.get("ExpressionAttributeNames") or {}
        removed = (
            {names.get(token.strip(" ,"), token.strip(" ,")) for token in expression.split("REMOVE", 1)[1].split()}
            if "REMOVE" in expression
            else set()
        )
        info = self.tables.get(table)
        if info and old is not None:
            for index, attrs in info.gsis.items():
                if removed & set(attrs) and old[1].get(index) is not None:
                    phase.wru_gsi += 1
        if old is None and (table, key) not in self.recent:
            phase.unknown_old_images += 1

    def _on_PutItem(self, phase, request, response, seconds):
        self._write_put(phase, request["TableName"], request["Item"], False, request.get("ConditionExpression"))

    def _on_UpdateItem(self, phase, request, response, seconds):
        self._write_update(phase, request["TableName"], request["Key"], request, False)

    def _on_DeleteItem(self, phase, request, response, seconds):
        table = request["TableName"]
        old = self.recent.get((table, self._key(table, request["Key"])))
        phase.wru_table += write_units(old[0] if old else 1)
        phase.wru_gsi += self._gsi_writes(table, old[1] if old else {}, {})

    def _on_BatchWriteItem(self, phase, request, response, seconds):
        for table, requests in (request.get("RequestItems") or {}).items():
            for entry in requests:
                if "PutRequest" in entry:
                    self._write_put(phase, table, entry["PutRequest"]["Item"], False, None)
                else:
                    phase.wru_table += 1

    def _on_TransactWriteItems(self, phase, request, response, seconds):
        items = request.get("TransactItems") or []
        phase.txn_items[len(items)] += 1
        orders_items = self.items["orders"]
        bucket = orders_items // 500 * 500
        slot = phase.txn_time_by_size.setdefault(bucket, [0.0, 0, 0])
        slot[0] += seconds
        slot[1] += 1
        slot[2] += len(items)
        for entry in items:
            ((kind, op),) = entry.items()
            table = op.get("TableName", "")
            label = self.label_of.get(table, table)
            if kind == "Put":
                sk = (op["Item"].get("sk") or {}).get("S", "")
                phase.txn_ops[f"Put {label}{'/' + sk.split('#')[0] if sk else ''}"] += 1
                self._write_put(phase, table, op["Item"], True, op.get("ConditionExpression"))
            elif kind == "Update":
                phase.txn_ops[f"Update {label}"] += 1
                self._write_update(phase, table, op["Key"], op, True)
            elif kind == "Delete":
                phase.txn_ops[f"Delete {label}"] += 1
                phase.wru_table += 2
            else:
                phase.txn_ops[f"ConditionCheck {label}"] += 1
                phase.wru_table += 2


# ---- the local stack ----------------------------------------------------------------------------------------------
def _fast_server():
    """accrual_dev.local.server.MotoServer, launching bench/_fast_moto.py (no per-item table copy) instead."""
    import subprocess
    import tempfile

    from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer

    class FastMotoServer(MotoServer):
        def _launch(self, port: int) -> bool:
            environment = {**os.environ, **LOCAL_ENVIRONMENT}
            environment.pop("AWS_ENDPOINT_URL", None)
            self._log = tempfile.TemporaryFile()
            self._process = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "_fast_moto.py"), "-H", self.host, "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
            self._bound_port = port
            return self._wait_ready()

    return FastMotoServer()


class LocalStack:
    """One moto server on a free loopback port (stock, or `fast`: see bench/_fast_moto.py); a fresh stack per
    measured volume."""

    def __init__(self, fast: bool = False) -> None:
        from accrual_dev.local.server import LOCAL_ENVIRONMENT, MotoServer

        self.fast = fast
        self.server = _fast_server() if fast else MotoServer()
        self._environment = LOCAL_ENVIRONMENT

    def __enter__(self) -> LocalStack:
        url = self.server.start()
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", *RESOURCE_VARIABLES):
            os.environ.pop(name, None)
        os.environ.update(
            {**self._environment, "AWS_ENDPOINT_URL": url, "POWERTOOLS_LOG_LEVEL": "ERROR", "LOG_LEVEL": "ERROR"}
        )
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def stack(self, name: str):
        """Provision template.yaml as stack `name`; returns (Settings, table infos, label map, seconds)."""
        import boto3

        from accrual import settings as settings_module
        from accrual.settings import Settings
        from accrual_dev.local.provision import provision

        os.environ["ACCRUAL_STACK"] = name
        started = time.monotonic()
        provision(name, template_path=ROOT / "template.yaml")
        for value in vars(settings_module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
        settings = Settings.from_env()
        dynamodb = boto3.client("dynamodb", region_name=settings.region)
        labels = {
            settings.orders_table: "orders",
            settings.balances_table: "balances",
            settings.outbox_table: "outbox",
            settings.clicks_table: "clicks",
            settings.control_table: "control",
            settings.idempotency_table: "idempotency",
        }
        tables = {}
        for table in labels:
            described = dynamodb.describe_table(TableName=table)["Table"]
            tables[table] = TableInfo(
                keys=tuple(key["AttributeName"] for key in described["KeySchema"]),
                gsis={
                    index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
                    for index in described.get("GlobalSecondaryIndexes", [])
                },
            )
        return settings, tables, labels, time.monotonic() - started


# ---- results ------------------------------------------------------------------------------------------------------
def save_results(section: str, values: dict[str, Any]) -> None:
    """Merge one section into bench/results.json (not committed: .gitignore)."""
    current = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    current[section] = values
    current.setdefault("_about", {})["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.write_text(json.dumps(current, indent=2, sort_keys=True, default=str) + "\n")


def load_results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def table(rows: list[list[Any]], header: list[str] | None = None, title: str | None = None) -> str:
    """A plain text table."""
    data = ([header] if header else []) + [[("" if cell is None else str(cell)) for cell in row] for row in rows]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in data) for i in range(max(map(len, data)))]
    lines = [title] if title else []
    for number, row in enumerate(data):
        cells = [cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if number == 0 and header:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
