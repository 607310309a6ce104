"""Extrapolation from the counts in bench/results.json: AWS calls, write and read request units per order over its
whole life, per million orders, and an on-demand cost estimate.

Two sources, both printed when present: bench/steps.py (the CLI counted from outside the project's code, capacity
units as the emulator charged them; the figures docs/performance.md quotes) and bench/ledger.py (the ledger in-process, with
the stream relay's cost per notification, F).

The life of one order, as the design runs it:
  A first report + C final report (one reconcile each), B one replay per report (the next pull re-reads its overlap),
  D one confirmation, and each notification published once by the deployed stream relay (F, Powertools
  Idempotency). The sweep (E) is the fallback for what the relay left behind; its cost is shown apart.

    .venv/bin/python bench/cost.py
"""

from __future__ import annotations

from _common import load_results, save_results, table

# ASSUMED prices, not read from anywhere: DynamoDB on-demand (pay-per-request), us-east-1, standard table class, as
# published after the November 2024 price reduction; SNS standard topic publish requests. Check current pricing.
PRICES = {
    "dynamodb_write_request_unit_usd_per_million": 0.625,
    "dynamodb_read_request_unit_usd_per_million": 0.125,
    "sns_publish_usd_per_million": 0.50,
}
ORDERS_PER_DAY = 1_000_000
LIFE = {"A_first_report": 1, "B_replay": 2, "C_final_report": 1, "D_confirm": 1}


def per_order(volume: dict) -> dict:
    phases = volume["phases"]
    notifications_per_order = volume["notifications"] / volume["orders"]
    life = {"api_calls": 0.0, "wru": 0.0, "rru": 0.0, "transactions": 0.0, "sns_publish": 0.0}
    by_operation: dict[str, float] = {}

    def add(phase: dict, weight: float) -> None:
        n = phase["orders"]
        life["api_calls"] += weight * phase["api_calls"] / n
        life["wru"] += weight * (phase["wru_base_tables"] + phase["wru_gsi"]) / n
        life["rru"] += weight * phase["rru"] / n
        life["transactions"] += weight * phase["transactions"] / n
        for name, count in phase["calls_by_operation"].items():
            by_operation[name] = by_operation.get(name, 0.0) + weight * count / n
        life["sns_publish"] += weight * phase["calls_by_operation"].get("sns:Publish", 0) / n

    for name, weight in LIFE.items():
        add(phases[name], weight)
    add(phases["F_stream_relay"], notifications_per_order)
    sweep = phases["E_outbox_sweep"]
    return {
        "per_order": {key: round(value, 3) for key, value in life.items()},
        "per_order_by_operation": {key: round(value, 3) for key, value in sorted(by_operation.items())},
        "notifications_per_order": round(notifications_per_order, 3),
        "sweep_instead_of_relay_per_order": {
            "api_calls": round(sweep["api_calls"] / sweep["orders"], 3),
            "wru": round((sweep["wru_base_tables"] + sweep["wru_gsi"]) / sweep["orders"], 3),
            "rru": round(sweep["rru"] / sweep["orders"], 3),
        },
    }


STEPS_LIFE = {"first_report": 1, "replay": 2, "settlement": 1, "confirmation": 1}


def from_steps(results: dict, section: str = "steps") -> dict | None:
    """Cost of one order's life from bench/steps.py: first report, two replays, settlement, confirmation (a reversal
    is priced apart: most orders never have one), and the stream relay per notification when bench/ledger.py measured
    it (else SNS publishes only)."""
    steps = (results.get(section) or {}).get("steps")
    if not steps:
        return None
    life = {"dynamodb_calls": 0.0, "rru": 0.0, "wru": 0.0}
    for step, weight in STEPS_LIFE.items():
        for key in life:
            life[key] += weight * steps[step]["project"][key]
    orders = results[section]["orders"]
    notifications = (
        sum((steps[step]["project"]["ledger_counts"] or {}).get("notifications", 0) for step in STEPS_LIFE) / orders
    )
    relay = {"api_calls": 1.0, "wru": 0.0, "rru": 0.0, "measured": False}
    full = [item for item in ((results.get("ledger") or {}).get("volumes") or []) if "F_stream_relay" in item["phases"]]
    if full:
        phase = full[-1]["phases"]["F_stream_relay"]
        relay = {
            "api_calls": phase["api_calls_per_order"],
            "wru": phase["wru_per_order"],
            "rru": phase["rru_per_order"],
            "measured": True,
        }
    wru = life["wru"] + notifications * relay["wru"]
    rru = life["rru"] + notifications * relay["rru"]
    cost_write = wru * PRICES["dynamodb_write_request_unit_usd_per_million"]
    cost_read = rru * PRICES["dynamodb_read_request_unit_usd_per_million"]
    cost_sns = notifications * PRICES["sns_publish_usd_per_million"]
    reversal = steps["reversal"]["project"]
    return {
        "from": f"bench/steps.py, {orders} orders on {results[section]['emulator']}, {results[section].get('code')}",
        "life": dict(STEPS_LIFE),
        "notifications_per_order": round(notifications, 3),
        "per_order": {key: round(value, 3) for key, value in life.items()},
        "stream_relay_per_notification": relay,
        "per_order_with_relay": {"wru": round(wru, 3), "rru": round(rru, 3)},
        "usd_per_million_orders": {
            "dynamodb_writes": round(cost_write, 2),
            "dynamodb_reads": round(cost_read, 2),
            "sns_publishes": round(cost_sns, 2),
            "total": round(cost_write + cost_read + cost_sns, 2),
        },
        "reversal_usd_per_million_reversed_orders": round(
            reversal["wru"] * PRICES["dynamodb_write_request_unit_usd_per_million"]
            + reversal["rru"] * PRICES["dynamodb_read_request_unit_usd_per_million"]
            + PRICES["sns_publish_usd_per_million"],
            2,
        ),
        "prices_assumed": PRICES,
    }


def report_steps(out: dict) -> str:
    per, money = out["per_order"], out["usd_per_million_orders"]
    rows = [
        ["figures taken from", out["from"]],
        [
            "life of an order",
            "first report + 2 replays + settlement + confirmation + stream relay × "
            f"{out['notifications_per_order']} notifications",
        ],
        ["DynamoDB calls / order (ledger steps)", per["dynamodb_calls"]],
        ["RRU / order (with relay)", out["per_order_with_relay"]["rru"]],
        ["WRU / order (with relay)", out["per_order_with_relay"]["wru"]],
        [
            "stream relay per notification",
            "measured (bench/ledger.py F)"
            if out["stream_relay_per_notification"]["measured"]
            else "not measured: SNS publish only",
        ],
        ["$ per million orders: DynamoDB writes", money["dynamodb_writes"]],
        ["$ per million orders: DynamoDB reads", money["dynamodb_reads"]],
        ["$ per million orders: SNS publishes", money["sns_publishes"]],
        ["$ per million orders, total", money["total"]],
        ["$ per million reversed orders (extra)", out["reversal_usd_per_million_reversed_orders"]],
        [
            "ASSUMED prices (us-east-1 on-demand)",
            f"${PRICES['dynamodb_write_request_unit_usd_per_million']}/M WRU, "
            f"${PRICES['dynamodb_read_request_unit_usd_per_million']}/M RRU, "
            f"${PRICES['sns_publish_usd_per_million']}/M SNS publishes",
        ],
    ]
    return table(
        rows,
        ["cost per million orders (from the CLI's counted steps)", "value"],
        title="\n== Cost per million orders ==",
    )


def run() -> dict:
    results = load_results()
    volumes = (results.get("ledger") or {}).get("volumes") or []
    if not volumes:
        raise SystemExit("no ledger figures in bench/results.json: run bench/ledger.py first")
    full = [item for item in volumes if "F_stream_relay" in item["phases"]] or volumes
    volume = max(full, key=lambda item: (item["orders"], item.get("emulator", "")))
    figures = per_order(volume)
    life = figures["per_order"]
    day = {key: value * ORDERS_PER_DAY for key, value in life.items()}
    cost_write = day["wru"] / 1e6 * PRICES["dynamodb_write_request_unit_usd_per_million"]
    cost_read = day["rru"] / 1e6 * PRICES["dynamodb_read_request_unit_usd_per_million"]
    cost_sns = day["sns_publish"] / 1e6 * PRICES["sns_publish_usd_per_million"]
    out = {
        "from_volume": {"orders": volume["orders"], "emulator": volume.get("emulator")},
        "life_of_an_order": {"phases": dict(LIFE), "stream_relay_per_notification": figures["notifications_per_order"]},
        **figures,
        "per_million_orders_a_day": {
            "api_calls": round(day["api_calls"]),
            "api_calls_per_second_average": round(day["api_calls"] / 86400, 1),
            "transactions": round(day["transactions"]),
            "write_request_units": round(day["wru"]),
            "read_request_units": round(day["rru"]),
            "sns_publishes": round(day["sns_publish"]),
            "dynamodb_usd_per_day": round(cost_write + cost_read, 2),
            "dynamodb_write_usd_per_day": round(cost_write, 2),
            "dynamodb_read_usd_per_day": round(cost_read, 2),
            "sns_usd_per_day": round(cost_sns, 2),
            "dynamodb_usd_per_30_days": round((cost_write + cost_read) * 30, 2),
            "usd_per_million_orders_total": round(cost_write + cost_read + cost_sns, 2),
        },
        "prices_assumed": {
            **PRICES,
            "note": "ASSUMPTION: us-east-1 on-demand list prices (standard table class), "
            "not fetched; storage, streams, backups, Lambda and data transfer are "
            "not included",
        },
    }
    return out


def report(out: dict) -> str:
    life, day = out["per_order"], out["per_million_orders_a_day"]
    rows = [
        ["figures taken from", f"N={out['from_volume']['orders']} ({out['from_volume']['emulator']})"],
        [
            "life of an order",
            f"A + 2×B (replays) + C + D + stream relay × {out['notifications_per_order']} notifications",
        ],
        ["API calls / order", life["api_calls"]],
        ["  by operation", ", ".join(f"{k.split(':')[1]} {v:g}" for k, v in out["per_order_by_operation"].items())],
        ["TransactWriteItems / order", life["transactions"]],
        ["write request units / order", life["wru"]],
        ["read request units / order", life["rru"]],
        ["API calls / day (1 M orders/day)", f"{day['api_calls']:,} (avg {day['api_calls_per_second_average']:,}/s)"],
        ["WRU / day", f"{day['write_request_units']:,}"],
        ["RRU / day", f"{day['read_request_units']:,}"],
        [
            "DynamoDB on-demand $ / day",
            f"{day['dynamodb_usd_per_day']:,} (writes {day['dynamodb_write_usd_per_day']}, "
            f"reads {day['dynamodb_read_usd_per_day']})",
        ],
        ["SNS publish $ / day", day["sns_usd_per_day"]],
        ["$ per million orders (DynamoDB + SNS)", day["usd_per_million_orders_total"]],
        [
            "sweep instead of relay, per order",
            ", ".join(f"{k} {v}" for k, v in out["sweep_instead_of_relay_per_order"].items()),
        ],
        [
            "ASSUMED prices (us-east-1)",
            f"${out['prices_assumed']['dynamodb_write_request_unit_usd_per_million']}/M WRU, "
            f"${out['prices_assumed']['dynamodb_read_request_unit_usd_per_million']}/M RRU, "
            f"${out['prices_assumed']['sns_publish_usd_per_million']}/M SNS publishes",
        ],
    ]
    return table(
        rows, ["extrapolation", "value"], title="\n== 4. Extrapolation from the counts (1,000,000 orders a day) =="
    )


def main() -> None:
    results = load_results()
    steps = from_steps(results)
    if steps is not None:
        save_results("cost_from_steps", steps)
        print(report_steps(steps))
    before = from_steps(results, "steps_before")
    if before is not None:
        save_results("cost_from_steps_before", before)
        print(report_steps(before))
    if (results.get("ledger") or {}).get("volumes"):
        out = run()
        save_results("cost", out)
        print(report(out))
    elif steps is None:
        raise SystemExit("no figures in bench/results.json: run bench/steps.py or bench/ledger.py first")


if __name__ == "__main__":
    main()
