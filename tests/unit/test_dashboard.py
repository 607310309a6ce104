"""The operations dashboard in template.yaml shows only metrics the functions write: every CashbackAccrual metric name
on it (in a widget, a SEARCH expression or an alarm) is a name the handlers emit, read from their code; the by-partner
lines are written with a partner dimension; the ledger counts what the money metrics report."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from accrual_dev.local.provision import load_template
from support.ledger import T0, line
from support.memory import memory_ledger

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "CashbackAccrual"
# what the dashboard must show (the metrics the month-end runbook reads)
REQUIRED = {
    "LinesRead",
    "LinesAccepted",
    "LinesQuarantined",
    "CashbackMovesPending",
    "CashbackMovesConfirmed",
    "CashbackPendingUSD",
    "CashbackConfirmedUSD",
    "NegativeMarginOrders",
    "ClaimsResolved",
    "ClaimsEscalated",
    "UnitsDone",
    "UnitsFailed",
    "PendingLaterThanPromised",
    "ConfirmationLagHours",
}


def emitted_names() -> set[str]:
    """Every metric name a handler passes to add_metric or single_metric: a literal, or a value of a module-level
    `*_METRICS` mapping the call takes its names from."""
    names: set[str] = set()
    for path in sorted((ROOT / "functions").glob("*/app.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        mappings: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                if any(isinstance(target, ast.Name) and target.id.endswith("_METRICS") for target in node.targets):
                    mappings |= {value.value for value in node.value.values if isinstance(value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "add_metric",
                "single_metric",
            ):
                for keyword in node.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        names.add(keyword.value.value)
                    elif keyword.arg == "name" and isinstance(keyword.value, ast.IfExp):
                        names |= {part.value for part in (keyword.value.body, keyword.value.orelse)}
                    elif keyword.arg == "name":
                        names |= mappings
    return names


def dashboard_body() -> dict[str, Any]:
    template = load_template(ROOT / "template.yaml")
    dashboards = [item for item in template["Resources"].values() if item["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1
    text = dashboards[0]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "resolved", text))


def dashboard_names(body: dict[str, Any]) -> set[str]:
    names = set()
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):
                expression = metric[0]["expression"]
                assert expression.startswith(f"SEARCH('{{{NAMESPACE},")
                names |= set(re.findall(r'MetricName="(\w+)"', expression))
            elif metric[0] == NAMESPACE:
                names.add(metric[1])
            else:
                assert metric[0] in ("AWS/SQS", "AWS/Lambda"), metric  # written by AWS itself
    return names


def alarm_names() -> set[str]:
    template = load_template(ROOT / "template.yaml")
    names = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        if properties.get("Namespace") == NAMESPACE:
            names.add(properties["MetricName"])
        for query in properties.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric", {})
            if metric.get("Namespace") == NAMESPACE:
                names.add(metric["MetricName"])
    return names


def test_every_metric_on_the_dashboard_and_in_the_alarms_is_written_by_a_handler():
    emitted = emitted_names()
    shown = dashboard_names(dashboard_body())
    assert shown - emitted == set()
    assert alarm_names() - emitted == set()
    assert REQUIRED <= shown
    assert {"LinesQuarantined", "LinesRead", "NegativeMarginOrders", "PendingLaterThanPromised"} <= alarm_names()


def test_the_lines_by_partner_carry_a_partner_dimension():
    spec = importlib.util.spec_from_file_location("reconcile_app_for_metrics", ROOT / "functions/reconcile/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        module.partner_metric("LinesQuarantined", 3, "admitad")
    record = json.loads(printed.getvalue())
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["service", "partner"]]
    assert record["partner"] == "admitad" and record["service"] == "accrual" and record["LinesQuarantined"] == [3.0]


def test_the_ledger_counts_the_money_the_dashboard_shows():
    ledger = memory_ledger()
    settled = T0 + timedelta(days=10)
    counts = ledger.reconcile(
        [line("A", commission="7.00"), line("B", commission="1.00", status="settled", at=settled)], now=settled
    )
    assert counts["cashback_pending_cents"] == 1000  # 5.00 + 5.00 at 5%
    assert counts["orders_negative_margin"] == 1  # B pays 5.00 on a 1.00 commission
    confirmed = ledger.confirm(now=settled + timedelta(days=2))
    assert confirmed["cashback_confirmed_cents"] == 500
    assert confirmed["confirmation_lag_minutes"] == 2 * 24 * 60  # settled, then confirmed two days later
