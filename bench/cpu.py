"""CPU per line of normalisation and of the rules, as a ratio to `json.loads` of the same lines in the same run (so
the ratio holds on any machine; the microseconds describe this one).

  json.loads          each text line of a report, parsed and dropped: the floor any reader pays
  normalised lines    `partners.normalized.parse_jsonl` over the same JSON Lines: parse, check, validate an OrderLine
  partner records     AliExpress and Admitad API records (one JSON object a line) mapped by the partners' own
                      mappers (`aliexpress.map_order`, `admitad.map_position`), loads included
  rules               `decide_order` over the orders those lines make (first and final reports), per line

CPU is `time.process_time` of this process, the best of --repeat passes (garbage collector as in production).

    .venv/bin/python bench/cpu.py [--lines 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta

from _common import accrual_config, build_orders, save_results, table
from accrual.domain.decision import MissingFxRate
from accrual.domain.rules import decide_order
from accrual.partners import PartnerOptions, admitad, aliexpress
from accrual.partners.normalized import parse_jsonl


def best_cpu(work, repeat: int) -> float:
    spent = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        spent.append(time.process_time() - started)
    return min(spent)


def _number(value):
    """The simulator's Decimals as the partners send them: minor units as numbers, amounts as decimal strings."""
    return int(value) if value == value.to_integral_value() else str(value)


def workload(wanted: int):
    orders = build_orders()
    options = PartnerOptions(usd_rates=orders.world.usd_rates)
    far = orders.last_event + timedelta(seconds=1)
    groups = [lines for report in (orders.first, orders.final) for lines in report.values()]
    normalised = [line.model_dump_json() for lines in groups for line in lines]
    partner = [
        ("ali", json.dumps(order.as_of(far), default=_number)) for order in orders.world.aliexpress if order.as_of(far)
    ]
    partner += [
        ("adm", json.dumps(action.as_of(far), default=_number)) for action in orders.world.admitad if action.as_of(far)
    ]
    copies = max(1, -(-wanted // len(normalised)))
    return orders, options, groups * copies, normalised * copies, partner * max(1, -(-wanted // len(partner)))


def run(wanted: int, repeat: int) -> dict:
    orders, options, groups, normalised, partner = workload(wanted)
    config = accrual_config()
    now = orders.last_event + timedelta(hours=1)
    text = "\n".join(normalised)
    partner_texts = [record for _, record in partner]

    def loads_normalised():
        for line in normalised:
            json.loads(line)

    def parse_normalised():
        report = parse_jsonl(text, source="bench")
        assert not report.quarantined, report.quarantined[:1]

    def loads_partner():
        for record in partner_texts:
            json.loads(record)

    def map_partner():
        for kind, record in partner:
            if kind == "ali":
                aliexpress.map_order(json.loads(record), options)
            else:
                action = json.loads(record)
                for index, position in enumerate(action.get("positions") or [None], 1):
                    admitad.map_position(action, position, index, options)

    def rules():
        for lines in groups:
            try:
                decide_order(lines, orders.clicks.get(lines[0].sub_id or ""), config, now=now)
            except MissingFxRate:
                pass

    n_lines, n_partner = len(normalised), len(partner)
    figures = {"lines": n_lines, "orders": len(groups), "partner_records": n_partner, "repeat": repeat}
    base = best_cpu(loads_normalised, repeat)
    base_partner = best_cpu(loads_partner, repeat)
    measured = {
        "json_loads": base,
        "normalised_lines": best_cpu(parse_normalised, repeat),
        "rules": best_cpu(rules, repeat),
    }
    figures["us_per_line"] = {name: round(value / n_lines * 1e6, 2) for name, value in measured.items()}
    figures["ratio_to_json_loads"] = {name: round(value / base, 1) for name, value in measured.items()}
    partner_cpu = best_cpu(map_partner, repeat)
    figures["partner_records"] = {
        "records": n_partner,
        "us_per_record_json_loads": round(base_partner / n_partner * 1e6, 2),
        "us_per_record_mapped": round(partner_cpu / n_partner * 1e6, 2),
        "ratio_to_json_loads": round(partner_cpu / base_partner, 1),
    }
    return figures


def report(result: dict) -> str:
    rows = [
        [name, result["us_per_line"][name], result["ratio_to_json_loads"][name]]
        for name in ("json_loads", "normalised_lines", "rules")
    ]
    partner = result["partner_records"]
    rows.append(["partner API records (loads + map)", partner["us_per_record_mapped"], partner["ratio_to_json_loads"]])
    return table(
        rows,
        [f"per line (CPU, best of {result['repeat']})", "µs", "× json.loads"],
        title=f"\n== CPU per line, {result['lines']:,} normalised lines ({result['orders']:,} orders) ==",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = run(args.lines, args.repeat)
    save_results("cpu", result)
    print(report(result))


if __name__ == "__main__":
    main()
