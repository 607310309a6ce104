"""Calls and capacity units per order for each step of an order's life, counted from outside the project's code, beside
a straightforward reference implementation on the same data and the lower bound DynamoDB's limits allow.

The project's side runs the `accrual` CLI as an operator does, one process per step, against a local emulator
(ministack by default) with bench/_hook on PYTHONPATH: its sitecustomize counts every botocore call and asks DynamoDB
for ReturnConsumedCapacity on each (see _hook/callmeter.py), so the counts include everything the command does
(configuration reads, the raw report archived to S3, the quarantine) and nothing the bench adds. The steps, on N
attributed orders of the seeded simulator:

  first report   accrual ingest first.jsonl       the lines as first reported (paid / pending): a new order each
  replay         accrual ingest first.jsonl       the same file again (an overlapping pull): nothing changes
  settlement     accrual ingest final.jsonl       the lines as finally reported (settled), the hold starts
  confirmation   accrual confirm                  after the hold: every order due is confirmed
  reversal       accrual ingest reversal.jsonl    the partner reports every line invalid after confirmation

The reference (written for this bench, not the product) keeps one item per order and does, per order of a step, one
call at a time: GetItem the order; when it changed, PutItem it, and when money moved, UpdateItem the balance (ADD)
and PutItem a journal entry. Same decisions (`decide_order`), same emulator, same counter. It has none of the
project's guarantees (no atomicity across the three writes, no outbox, no line identity across orders).

The lower bound is what a design that keeps one TransactWriteItems per order change cannot go under, by DynamoDB's
published limits: the orders read in BatchGetItem pages of 100 (strongly consistent, 1 RRU per item up to 4 KB); one
transaction per changed order holding the order (2 WRU: transactional writes cost twice), plus the journal entry and
the balance when money moves (2 WRU each), plus one outbox item per notification (2 WRU); confirmation adds the due
index Query (keys only: well under 0.01 call per order).

    .venv/bin/python bench/steps.py [--orders 200] [--shoppers 400] [--emulator ministack|dynamodb-local|moto] [--code DIR --section steps_before]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from _common import (
    ROOT,
    accrual_config,
    build_orders,
    item_size,
    load_results,
    save_results,
    table,
    write_units,
)

HOOK = ROOT / "bench" / "_hook"
sys.path.insert(0, str(HOOK))
import callmeter  # noqa: E402

STEPS = ("first_report", "replay", "settlement", "confirmation", "reversal")
CODE: list[str] = []  # set by --code DIR
CLI = Path(sys.executable).parent / "accrual"


def emulator_server(name: str):
    if name == "ministack":
        from accrual_dev.local.ministack import MinistackServer

        return MinistackServer()
    if name == "dynamodb-local":  # AWS's own DynamoDB Local for DynamoDB, moto for the rest
        from accrual_dev.local.dynamodb_local import DynamoDBLocalStack

        return DynamoDBLocalStack()
    from _common import _fast_server

    return _fast_server()  # moto without its per-item table copy (bench/_fast_moto.py): same counts, bearable time


# ---- the data -----------------------------------------------------------------------------------------------------
def pick(n: int, shoppers: int = 400):
    orders = build_orders(users=shoppers)
    keys = orders.settled()
    random.Random(n).shuffle(keys)
    if len(keys) < n:
        raise SystemExit(f"only {len(keys)} settled orders in the simulated world, {n} asked")
    return orders, sorted(keys[:n])


def reversal_lines(orders, keys, at):
    return {
        key: [
            line.model_copy(
                update={"status": type(line.status)("invalid"), "status_at": at, "status_detail": "refunded"}
            )
            for line in orders.final[key]
        ]
        for key in keys
    }


def write_files(folder: Path, orders, keys, times) -> dict[str, Path]:
    config = accrual_config()
    files = {
        "config": folder / "config.json",
        "clicks": folder / "clicks.jsonl",
        "first": folder / "first.jsonl",
        "final": folder / "final.jsonl",
        "reversal": folder / "reversal.jsonl",
    }
    files["config"].write_text(config.model_dump_json(exclude_none=True))  # readable by older versions too
    sub_ids = sorted({orders.final[key][0].sub_id for key in keys})
    files["clicks"].write_text("".join(orders.clicks[sub_id].model_dump_json() + "\n" for sub_id in sub_ids))
    reversal = reversal_lines(orders, keys, times["reversal"] - timedelta(hours=1))
    for name, report in (("first", orders.first), ("final", orders.final), ("reversal", reversal)):
        files[name].write_text("".join(line.model_dump_json() + "\n" for key in keys for line in report[key]))
    return files


def step_times(orders) -> dict:
    config = accrual_config()
    first = orders.last_event + timedelta(hours=1)
    final = first + timedelta(hours=2)
    confirm = final + timedelta(days=max(config.hold_days.values()) + 1)
    return {
        "first_report": first,
        "replay": first + timedelta(hours=1),
        "settlement": final,
        "confirmation": confirm,
        "reversal": confirm + timedelta(days=2),
    }


# ---- the project, through its CLI -----------------------------------------------------------------------------------
def cli(env: dict, *args: str, meter: Path | None = None) -> tuple[dict, dict | None]:
    # CODE: another checkout's package and CLI ahead of this one's (the same steps, before and after a change)
    environment = {**env, "PYTHONPATH": os.pathsep.join([str(HOOK), *CODE])}
    # the ledger's steps alone: on a local stack the CLI would also publish the notifications (the deployed stream
    # relay's work, priced per notification by bench/cost.py)
    environment["ACCRUAL_LOCAL_RELAY"] = "off"
    if meter is not None:
        environment["ACCRUAL_CALL_METER"] = str(meter)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL, timeout=3600
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode not in (0, 1):
        raise SystemExit(f"accrual {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    try:
        printed = json.loads(done.stdout)
    except ValueError:
        printed = {"output": done.stdout[-500:]}
    printed["_cpu_seconds"] = cpu
    return printed, json.loads(meter.read_text()) if meter is not None else None


def run_project(env: dict, files: dict, times: dict, folder: Path) -> dict:
    cli(env, "config", "load", str(files["config"]))
    cli(env, "clicks", "load", str(files["clicks"]))
    commands = {
        "first_report": ["ingest", str(files["first"]), "--partner", "normalized"],
        "replay": ["ingest", str(files["first"]), "--partner", "normalized"],
        "settlement": ["ingest", str(files["final"]), "--partner", "normalized"],
        "confirmation": ["confirm"],
        "reversal": ["ingest", str(files["reversal"]), "--partner", "normalized"],
    }
    # the CPU of starting the CLI, its imports and clients (an audit of the empty ledger): taken off each step's,
    # which leaves the CPU its lines cost
    startup = cli(env, "audit", "--json")[0]["_cpu_seconds"]
    out = {}
    for step in STEPS:
        started = time.perf_counter()
        printed, counted = cli(env, *commands[step], "--now", times[step].isoformat(), meter=folder / f"{step}.json")
        out[step] = {
            "counted": counted,
            "cpu_seconds": printed.pop("_cpu_seconds"),
            "startup_cpu_seconds": startup,
            "printed": printed.get("reconciled", printed),
            "seconds": round(time.perf_counter() - started, 2),
            "weights": weigh_items(env["ACCRUAL_STACK"]),
            "balances": balances_after(env["ACCRUAL_STACK"]),
        }
    audited, _ = cli(env, "audit", "--json")
    out["reversal"]["audit_ok"] = audited.get("ok")
    return out


def balances_after(stack: str) -> dict:
    """Every shopper's balance after a step, as a digest and totals: two checkouts run on the same data must leave
    the same money (amounts read as decimals to the cent, so an emulator's trailing zeros do not count)."""
    import hashlib

    import boto3

    db = boto3.client("dynamodb")
    money = ("pending_usd", "confirmed_usd", "pending", "confirmed")
    balances = {}
    for page in db.get_paginator("scan").paginate(TableName=f"{stack}-balances"):
        for item in page["Items"]:
            balances[item["user_id"]["S"]] = {
                name: str(Decimal(item.get(name, {}).get("N", "0")).quantize(Decimal("0.01"))) for name in money
            } | {"account_currency": item.get("account_currency", {}).get("S")}
    text = json.dumps(balances, sort_keys=True)
    return {
        "digest": hashlib.sha256(text.encode()).hexdigest()[:16],
        "shoppers": len(balances),
        **{name: str(sum((Decimal(b[name]) for b in balances.values()), Decimal("0.00"))) for name in money},
    }


def _kind(name: str, item: dict) -> str:
    if name != "orders":
        return name
    sort_key = item.get("sk", {}).get("S", "")
    if sort_key.startswith("LINE#"):
        return "line" if "moved_to" not in item else "line tombstone"
    if sort_key.startswith("CLAIM#") or item.get("pk", {}).get("S", "").startswith("LINE#"):
        return "line claim"
    return {"ORDER": "order", "ORDER#DECISION": "decision"}.get(sort_key, sort_key.split("#", 1)[0].lower())


def weigh_items(stack: str) -> dict:
    """What each kind of item the ledger keeps weighs after a step (DynamoDB's size rules, bench/_common.item_size),
    and the write units one transactional write of it costs (2 per started KB)."""
    import boto3

    db = boto3.client("dynamodb")
    sizes: dict[str, list[int]] = {}
    for name in ("orders", "outbox", "balances"):
        for page in db.get_paginator("scan").paginate(TableName=f"{stack}-{name}"):
            for item in page["Items"]:
                sizes.setdefault(_kind(name, item), []).append(item_size(item))
    return {
        kind: {
            "items": len(values),
            "median_bytes": sorted(values)[len(values) // 2],
            "mean_bytes": round(sum(values) / len(values)),
            "mean_transaction_wru": round(sum(2 * write_units(size) for size in values) / len(values), 2),
        }
        for kind, values in sorted(sizes.items())
    }


# ---- the reference --------------------------------------------------------------------------------------------------
class Reference:
    """One item per order, one call at a time. Not the product: a yardstick."""

    def __init__(self, prefix: str) -> None:
        import boto3

        self.db = boto3.client("dynamodb", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        self.orders, self.balances, self.journal = f"{prefix}-orders", f"{prefix}-balances", f"{prefix}-journal"
        self.db.create_table(
            TableName=self.orders,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "due_shard", "AttributeType": "S"},
                {"AttributeName": "due_at", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "due",
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                    "KeySchema": [
                        {"AttributeName": "due_shard", "KeyType": "HASH"},
                        {"AttributeName": "due_at", "KeyType": "RANGE"},
                    ],
                }
            ],
        )
        for name, key in ((self.balances, "user_id"), (self.journal, "entry_id")):
            self.db.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            )
        self.changed = self.moved = 0

    def settle(self, key: str, lines, click, config, now, *, confirming: bool = False) -> None:
        from accrual.domain.rules import decide_order

        stored = self.db.get_item(TableName=self.orders, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        pending = Decimal(stored["pending"]["N"]) if stored else Decimal(0)
        confirmed = Decimal(stored["confirmed"]["N"]) if stored else Decimal(0)
        if lines is None:  # confirmation: the stored lines
            lines_json = stored["lines"]["S"]
            from accrual.domain.models import OrderLine

            lines = [OrderLine.model_validate(item) for item in json.loads(lines_json)]
        else:
            lines_json = json.dumps([json.loads(line.model_dump_json()) for line in lines], sort_keys=True)
        decision = decide_order(lines, click, config, now=now)
        invalid = all(line.status.value == "invalid" for line in lines)
        settled = all(line.status.value == "settled" for line in lines)
        due = stored.get("due_at", {}).get("S") if stored else None
        if invalid:
            state, new_pending, new_confirmed, due = "reversed", Decimal(0), Decimal(0), None
        elif confirming and due and due <= now.isoformat():
            state, new_pending, new_confirmed, due = "confirmed", Decimal(0), pending + confirmed, None
        elif settled:
            state, new_pending, new_confirmed = "settled", decision.cashback_usd, Decimal(0)
            due = due or (now + timedelta(days=config.hold_days_for(decision.partner))).isoformat()
        else:
            state, new_pending, new_confirmed = "pending", decision.cashback_usd, Decimal(0)
        if (
            stored
            and stored["state"]["S"] == state
            and stored["lines"]["S"] == lines_json
            and Decimal(stored["pending"]["N"]) == new_pending
        ):
            return
        item = {
            "pk": {"S": key},
            "state": {"S": state},
            "lines": {"S": lines_json},
            "decision": {"S": json.dumps(decision.to_dict(), sort_keys=True, default=str)},
            "user_id": {"S": decision.user_id or "-"},
            "pending": {"N": str(new_pending)},
            "confirmed": {"N": str(new_confirmed)},
        }
        if due:
            item.update(due_at={"S": due}, due_shard={"S": "0"})
        self.db.put_item(TableName=self.orders, Item=item)
        self.changed += 1
        delta_pending, delta_confirmed = new_pending - pending, new_confirmed - confirmed
        if delta_pending or delta_confirmed:
            self.moved += 1
            self.db.update_item(
                TableName=self.balances,
                Key={"user_id": {"S": decision.user_id or "-"}},
                UpdateExpression="ADD pending :p, confirmed :c",
                ExpressionAttributeValues={":p": {"N": str(delta_pending)}, ":c": {"N": str(delta_confirmed)}},
            )
            self.db.put_item(
                TableName=self.journal,
                Item={
                    "entry_id": {"S": f"{key}#{uuid.uuid4().hex}"},
                    "order": {"S": key},
                    "state": {"S": state},
                    "pending": {"N": str(delta_pending)},
                    "confirmed": {"N": str(delta_confirmed)},
                    "at": {"S": now.isoformat()},
                },
            )

    def due(self, now) -> list[str]:
        keys, start = [], None
        while True:
            page = self.db.query(
                TableName=self.orders,
                IndexName="due",
                Limit=100,
                KeyConditionExpression="due_shard = :s AND due_at <= :t",
                ExpressionAttributeValues={":s": {"S": "0"}, ":t": {"S": now.isoformat()}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            keys += [item["pk"]["S"] for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return keys


def run_reference(orders, keys, times) -> dict:
    config = accrual_config()
    reference = Reference(f"ref{uuid.uuid4().hex[:6]}")
    reports = {
        "first_report": orders.first,
        "replay": orders.first,
        "settlement": orders.final,
        "reversal": reversal_lines(orders, keys, times["reversal"] - timedelta(hours=1)),
    }
    out = {}
    for step in STEPS:
        reference.changed = reference.moved = 0
        before = callmeter.snapshot()
        now = times[step]
        if step == "confirmation":
            for key in reference.due(now):
                reference.settle(key, None, None, config, now, confirming=True)
        else:
            for key in keys:
                lines = reports[step][key]
                reference.settle(key, lines, orders.clicks.get(lines[0].sub_id or ""), config, now)
        out[step] = {"counted": callmeter.delta(before), "changed": reference.changed, "moved": reference.moved}
    return out


# ---- figures --------------------------------------------------------------------------------------------------------
def per_order(counted: dict, n: int) -> dict:
    calls = counted["calls"]
    dynamodb = {name.split(":", 1)[1]: count for name, count in calls.items() if name.startswith("dynamodb:")}
    other = {name: count for name, count in calls.items() if not name.startswith("dynamodb:")}
    units = counted["units"]
    return {
        "dynamodb_calls": round(sum(dynamodb.values()) / n, 3),
        "dynamodb_calls_by_operation": {name: round(count / n, 3) for name, count in sorted(dynamodb.items())},
        "rru": round(units.get("rru", 0) / n, 3),
        "wru": round(units.get("wru", 0) / n, 3),
        "other_calls": round(sum(other.values()) / n, 3),
        "other_calls_by_operation": {name: count for name, count in sorted(other.items())},
        "errors": counted.get("errors", {}),
        "calls_by_table": counted.get("by_table", {}),
    }


def lower_bound(changed: float, moved: float, notifications: float, confirmation: bool) -> dict:
    """Per order, for a step in which `changed` of the orders change, `moved` move money and `notifications`
    notifications are written (all per order)."""
    calls = 0.01 + changed + (0.01 if confirmation else 0)
    wru = 2 * changed + 2 * 2 * moved + 2 * notifications
    return {
        "dynamodb_calls": round(calls, 3),
        "rru": 1.0,
        "wru": round(wru, 3),
        "assumes": "BatchGetItem pages of 100 (consistent, items <= 4 KB); one TransactWriteItems per changed "
        "order: order 2 WRU + journal 2 + balance 2 when money moves + outbox 2 per notification "
        "(items <= 1 KB)",
    }


def run(n: int, emulator: str, shoppers: int = 400) -> dict:
    orders, keys = pick(n, shoppers)
    times = step_times(orders)
    with tempfile.TemporaryDirectory(prefix="accrual-steps-") as folder_name, emulator_server(emulator) as server:
        folder = Path(folder_name)
        files = write_files(folder, orders, keys, times)
        stack = f"steps{uuid.uuid4().hex[:6]}"
        from accrual_dev.local.server import LOCAL_ENVIRONMENT

        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            {
                **LOCAL_ENVIRONMENT,
                **getattr(server, "endpoints", {"AWS_ENDPOINT_URL": server.url}),
                "ACCRUAL_STACK": stack,
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "LOG_LEVEL": "ERROR",
            }
        )
        from accrual_dev.local.provision import provision

        provision(stack, template_path=ROOT / "template.yaml")
        project = run_project(dict(os.environ), files, times, folder)
        callmeter.install()
        reference = run_reference(orders, keys, times)

    steps = {}
    for step in STEPS:
        mine, theirs = project[step], reference[step]
        notifications = (mine["printed"] or {}).get("notifications", 0) / n
        steps[step] = {
            "project": {
                **per_order(mine["counted"], n),
                "ledger_counts": mine["printed"],
                "cli_seconds": mine["seconds"],
                "cli_cpu_seconds": round(mine["cpu_seconds"], 3),
                "cli_startup_cpu_seconds": round(mine["startup_cpu_seconds"], 3),
                "cpu_ms_per_line": round(
                    1000 * (mine["cpu_seconds"] - mine["startup_cpu_seconds"]) / result_lines(orders, keys, step), 2
                ),
                "item_weights": mine["weights"],
                "balances": mine["balances"],
            },
            "reference": {
                **per_order(theirs["counted"], n),
                "orders_changed": theirs["changed"],
                "orders_moving_money": theirs["moved"],
            },
            "lower_bound": lower_bound(
                theirs["changed"] / n, theirs["moved"] / n, notifications, step == "confirmation"
            ),
        }
    return {
        "orders": n,
        "shoppers": len(
            {
                orders.clicks[line.sub_id].user_id
                for k in keys
                for line in orders.first[k]
                if line.sub_id in orders.clicks
            }
        ),
        "emulator": emulator,
        "lines_first": sum(len(orders.first[k]) for k in keys),
        "lines_final": sum(len(orders.final[k]) for k in keys),
        "steps": steps,
        "audit_ok": project["reversal"].get("audit_ok"),
    }


def result_lines(orders, keys, step: str) -> int:
    """Lines a step's command works through (confirmation: the lines of the orders it confirms)."""
    report = orders.first if step in ("first_report", "replay") else orders.final
    return sum(len(report[key]) for key in keys)


def report(result: dict) -> str:
    rows = []
    for step, figures in result["steps"].items():
        for side in ("project", "reference", "lower_bound"):
            values = figures[side]
            rows.append(
                [
                    step if side == "project" else "",
                    side.replace("_", " "),
                    values["dynamodb_calls"],
                    values["rru"],
                    values["wru"],
                    values.get("other_calls", ""),
                ]
            )
    lines = [
        table(
            rows,
            ["step", "implementation", "DynamoDB calls", "RRU", "WRU", "other AWS calls"],
            title=f"\n== Calls and capacity units per order, {result['orders']} orders ({result.get('lines_first')} lines, "
            f"{result.get('shoppers')} shoppers) on {result['emulator']} "
            "(counted by botocore hooks, units as the emulator charged them) ==",
        )
    ]
    rows = [
        [
            step,
            ", ".join(f"{name} {value:g}" for name, value in figures["project"]["dynamodb_calls_by_operation"].items()),
        ]
        for step, figures in result["steps"].items()
    ]
    lines.append(table(rows, ["step", "project: DynamoDB calls per order by operation"]))
    rows = [
        [
            step,
            figures["project"]["cpu_ms_per_line"],
            figures["project"]["cli_cpu_seconds"],
            figures["project"]["cli_startup_cpu_seconds"],
        ]
        for step, figures in result["steps"].items()
    ]
    lines.append(
        table(
            rows,
            ["step", "CLI CPU ms per line (start-up taken off)", "CLI CPU s", "start-up CPU s"],
            title="CPU of the accrual process (user + system, from the OS); the machine's load affects it a little",
        )
    )
    for step in ("first_report", "settlement"):
        weights = result["steps"][step]["project"]["item_weights"]
        rows = [
            [kind, w["items"], w["median_bytes"], w["mean_bytes"], w["mean_transaction_wru"]]
            for kind, w in weights.items()
        ]
        lines.append(
            table(
                rows,
                ["item", "items", "median bytes", "mean bytes", "WRU in a transaction (mean)"],
                title=f"items held after {step.replace('_', ' ')}",
            )
        )
    confirm = result["steps"]["confirmation"]["project"]["calls_by_table"]
    lines.append(
        "confirmation, calls by table: " + ", ".join(f"{name}: {count}" for name, count in sorted(confirm.items()))
    )
    lines.append(
        table(
            [
                [step, b["digest"], b["shoppers"], b["pending_usd"], b["confirmed_usd"]]
                for step, figures in result["steps"].items()
                for b in [figures["project"]["balances"]]
            ],
            ["step", "balances digest", "shoppers", "pending USD", "confirmed USD"],
            title=f"the shoppers' balances after each step; audit after the last: {'ok' if result.get('audit_ok') else 'NOT ok'}",
        )
    )
    return "\n".join(lines)


def same_money(result: dict, other: dict) -> str:
    """Whether two runs on the same data (this checkout and another's, `--code`) left every balance the same after
    every step."""
    if (other.get("orders"), other.get("emulator")) != (result.get("orders"), result.get("emulator")):
        return ""
    if "balances" not in other["steps"].get("first_report", {}).get("project", {}):
        return ""  # measured before the bench read the balances
    differing = [
        step
        for step, figures in result["steps"].items()
        if figures["project"].get("balances", {}).get("digest")
        != other["steps"].get(step, {}).get("project", {}).get("balances", {}).get("digest")
    ]
    verdict = "the same after every step" if not differing else f"DIFFERENT after {', '.join(differing)}"
    return f"balances against {other.get('code')}: {verdict}; audit {'ok' if other.get('audit_ok') else 'NOT ok'} there"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--emulator", choices=("ministack", "dynamodb-local", "moto"), default="ministack")
    parser.add_argument(
        "--shoppers", type=int, default=400, help="shoppers of the simulated world the orders are drawn from"
    )
    parser.add_argument("--code", help="run the CLI of this checkout of the project (its figures go to --section)")
    parser.add_argument("--section", default="steps", help="the results.json section (default steps)")
    args = parser.parse_args()
    if args.code:
        CODE[:] = [str(Path(args.code) / "layers" / "accrual"), str(Path(args.code) / "dev")]
    result = run(args.orders, args.emulator, args.shoppers)
    result["code"] = args.code or "this checkout"
    save_results(args.section, result)
    print(report(result))
    for section, other in load_results().items():
        if section != args.section and isinstance(other, dict) and "steps" in other:
            compared = same_money(result, other)
            if compared:
                print(f"{section}: {compared}")


if __name__ == "__main__":
    main()
