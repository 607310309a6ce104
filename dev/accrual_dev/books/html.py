"""The month's report as one self-contained HTML file for the finance team: the figures of the JSON report in tables
and four charts made with plotly (cashback by state and partner, daily accruals, declined orders by reason, the
confirmation lag). plotly.js is written into the file once, so it opens without a network.

Every figure shown comes from the JSON report itself (`month_report`), never recomputed here; the totals carry a
`data-figure` attribute so a test can hold them to the JSON's."""

from __future__ import annotations

from html import escape
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from accrual_dev.books.report import STATES_OF_MONEY

STATE_COLOURS = {"pending": "#f2a93b", "confirmed": "#2f9e44", "declined": "#868e96", "reversed": "#e03131"}
CHART_CONFIG = {"displaylogo": False}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #212529; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #dee2e6; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #6c757d; font-size: 0.9rem; max-width: 60rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML document (plotly.js inlined)."""
    charts = [
        _state_by_partner(report),
        _daily(report),
        _exclusions(report),
        _lag(report),
    ]
    chart_html = [
        pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=index == 0,  # the library once, in the first chart's block
            config=CHART_CONFIG,
            div_id=f"chart-{name}",
        )
        for index, (name, figure) in enumerate(charts)
    ]
    month = escape(report["month"])
    scope = f" — {escape(report['partner'])}" if report.get("partner") else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Cashback books {month}{scope}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Cashback books for {month}{scope}</h1>",
        '<p class="note">Orders placed in the month (UTC). Amounts in USD. Pending and confirmed: what the orders hold'
        " now; declined: pending cashback withdrawn by declines; reversed: confirmed cashback clawed back. Commission and"
        " margin count the orders that earn (pending or confirmed).</p>",
        _totals_table(report),
        _partners_table(report),
        '<div class="charts">',
        *[f'<div class="chart">{block}</div>' for block in chart_html],
        "</div>",
        _negative_margin_table(report),
        _exclusions_tables(report),
        _quarantine_table(report),
        _counts_table("Missing-cashback claims about the month's orders, by state", "state", report["claims"]),
        _lag_table(report),
        "</body></html>",
    ]
    return "\n".join(parts)


# ---- charts ----------------------------------------------------------------------------------------------------------


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    # a fixed size: a chart is drawn as its script runs, before the page around it is laid out
    return {
        "title": {"text": title},
        "margin": {"t": 50, "l": 60, "r": 20, "b": 60},
        "width": 640,
        "height": 380,
        **extra,
    }


def _state_by_partner(report: dict[str, Any]) -> tuple[str, go.Figure]:
    partners = list(report["partners"])
    figure = go.Figure(
        [
            go.Bar(
                name=state,
                x=partners,
                y=[float(report["partners"][partner]["cashback_usd"][state]) for partner in partners],
                marker_color=STATE_COLOURS[state],
            )
            for state in STATES_OF_MONEY
        ],
        layout=_layout("Cashback by state and partner (USD)", barmode="group"),
    )
    return "state-by-partner", figure


def _daily(report: dict[str, Any]) -> tuple[str, go.Figure]:
    days = [day["day"] for day in report["daily"]]
    figure = go.Figure(
        [
            go.Bar(
                name=state,
                x=days,
                y=[float(day[f"{state}_usd"]) for day in report["daily"]],
                marker_color=STATE_COLOURS[state],
            )
            for state in ("pending", "confirmed")
        ],
        layout=_layout("Daily accruals by order day (USD held now)", barmode="stack"),
    )
    return "daily", figure


def _exclusions(report: dict[str, Any]) -> tuple[str, go.Figure]:
    codes = sorted(report["exclusions"], key=lambda code: (-report["exclusions"][code], code))
    figure = go.Figure(
        [go.Bar(x=[report["exclusions"][code] for code in codes], y=codes, orientation="h", marker_color="#868e96")],
        layout=_layout("Declined orders by reason", yaxis={"autorange": "reversed"}, margin={"l": 220, "t": 50}),
    )
    return "exclusions", figure


def _lag(report: dict[str, Any]) -> tuple[str, go.Figure]:
    series = report["lag_distribution"]
    figure = go.Figure(
        [
            go.Bar(name=name.replace("_", " "), x=[hours for hours, _ in buckets], y=[count for _, count in buckets])
            for name, buckets in series.items()
        ],
        layout=_layout(
            "Confirmation lag (orders by whole hours)",
            barmode="group",
            showlegend=True,
            xaxis={"title": {"text": "hours"}},
            yaxis={"title": {"text": "orders"}},
        ),
    )
    return "lag", figure


# ---- tables ----------------------------------------------------------------------------------------------------------


def _table(title: str, head: list[str], rows: list[list[Any]], empty: str = "none") -> str:
    if not rows:
        return f"<h2>{escape(title)}</h2><p class='note'>{escape(empty)}</p>"
    header = "".join(f"<th>{escape(str(cell))}</th>" for cell in head)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    return f"<h2>{escape(title)}</h2><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _cell(cell: Any) -> str:
    """A cell is text, or (text, figure name) for a total the tests read back."""
    if isinstance(cell, tuple):
        text, figure = cell
        return f'<td data-figure="{escape(figure)}">{escape(str(text))}</td>'
    return f"<td>{escape(str(cell))}</td>"


def _totals_table(report: dict[str, Any]) -> str:
    totals = report["totals"]
    rows = [
        ["orders", (totals["orders"], "orders")],
        *[[state, (totals["cashback_usd"][state], f"cashback_usd.{state}")] for state in STATES_OF_MONEY],
        ["commission", (totals["commission_usd"], "commission_usd")],
        ["margin", (totals["margin_usd"], "margin_usd")],
    ]
    return _table("Totals", ["figure", "USD / count"], rows)


def _partners_table(report: dict[str, Any]) -> str:
    rows = []
    for partner, figures in report["partners"].items():
        rows.append(
            [
                partner,
                sum(figures["orders"].values()),
                *[(figures["cashback_usd"][state], f"{partner}.cashback_usd.{state}") for state in STATES_OF_MONEY],
                (figures["commission_usd"], f"{partner}.commission_usd"),
                (figures["margin_usd"], f"{partner}.margin_usd"),
                ", ".join(f"{state} {count}" for state, count in figures["orders"].items()),
                ", ".join(
                    f"{currency} {' / '.join(amounts[state] for state in STATES_OF_MONEY)}"
                    for currency, amounts in figures["by_currency"].items()
                ),
            ]
        )
    head = [
        "partner",
        "orders",
        *STATES_OF_MONEY,
        "commission",
        "margin",
        "orders by state",
        "by account currency (pending / confirmed / declined / reversed)",
    ]
    return _table("By partner", head, rows, "no orders placed in this month")


def _negative_margin_table(report: dict[str, Any]) -> str:
    rows = [
        [
            item["order_id"],
            item["partner"],
            item["state"],
            item["cashback_usd"],
            item["commission_usd"],
            item["margin_usd"],
        ]
        for item in report["negative_margin"]
    ]
    head = ["order", "partner", "state", "cashback", "commission", "margin"]
    return _table("Orders paying more cashback than the partner's commission", head, rows)


def _exclusions_tables(report: dict[str, Any]) -> str:
    by_reason = _counts_table("Declined orders, by reason", "reason", report["exclusions"])
    rows = [
        [item["shop"], item["orders"], ", ".join(f"{code} {n}" for code, n in item["reasons"].items())]
        for item in report["exclusions_by_shop"]
    ]
    return by_reason + _table("Declined orders, by shop (top 20)", ["shop", "orders", "reasons"], rows)


def _quarantine_table(report: dict[str, Any]) -> str:
    rows = [
        [
            partner,
            (count, f"quarantined.{partner}"),
            ", ".join(f"{kind} {n}" for kind, n in report["quarantined_by_reason"].get(partner, {}).items()),
        ]
        for partner, count in report["quarantined"].items()
    ]
    return _table("Lines quarantined, by partner", ["partner", "lines", "by what the reason names"], rows)


def _counts_table(title: str, name: str, counts: dict[str, int]) -> str:
    return _table(title, [name, "count"], [[key, count] for key, count in counts.items()])


def _lag_table(report: dict[str, Any]) -> str:
    rows = []
    for name, figures in report["lag"].items():
        rows.append(
            [
                name.replace("_", " "),
                figures["orders"],
                *[figures.get(key, "") for key in ("p50_hours", "p90_hours", "p99_hours", "max_hours")],
            ]
        )
    return _table("Confirmation lag (hours)", ["from → to", "orders", "p50", "p90", "p99", "max"], rows)
