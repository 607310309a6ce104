"""The month's HTML report in a real headless browser (Debian's Chromium): it renders with every network name
unresolvable (so nothing is fetched at view time), its four charts are drawn, and the totals it shows are the JSON
report's."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from accrual_dev.books.html import render_html
from accrual_dev.books.report import STATES_OF_MONEY, Quarantined, month_report
from support.books import march_ledger

CHARTS = ("chart-state-by-partner", "chart-daily", "chart-exclusions", "chart-lag")


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed and could not be (`make chromium` installs Debian's package)")


class _Page(HTMLParser):
    """What the browser drew: the chart divs that hold a plotly SVG, and every `data-figure` cell's text."""

    def __init__(self) -> None:
        super().__init__()
        self.open_chart: str | None = None
        self.drawn: set[str] = set()
        self.figures: dict[str, str] = {}
        self._figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id") in CHARTS:
            self.open_chart = attributes["id"]
        if tag == "svg" and "main-svg" in (attributes.get("class") or "") and self.open_chart:
            self.drawn.add(self.open_chart)
        self._figure = attributes.get("data-figure")

    def handle_data(self, data: str) -> None:
        if self._figure is not None:
            self.figures[self._figure] = data.strip()
            self._figure = None


def test_the_html_report_renders_offline_with_its_charts_and_the_jsons_totals(tmp_path: Path) -> None:
    browser = chromium()
    quarantined = [Quarantined("aliexpress", datetime(2026, 3, 9, tzinfo=UTC), "amount")]
    report = month_report(march_ledger().store, "2026-03", quarantined=quarantined)
    page = tmp_path / "books.html"
    page.write_text(render_html(report), encoding="utf-8")
    assert "<script src=" not in page.read_text(encoding="utf-8")  # plotly.js is inside the file

    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: a fetch at view time would fail
            "--virtual-time-budget=20000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    drawn = _Page()
    drawn.feed(dom)

    assert drawn.drawn == set(CHARTS)
    totals = report["totals"]
    assert drawn.figures["orders"] == str(totals["orders"])
    for state in STATES_OF_MONEY:
        assert drawn.figures[f"cashback_usd.{state}"] == totals["cashback_usd"][state]
    assert drawn.figures["commission_usd"] == totals["commission_usd"]
    assert drawn.figures["margin_usd"] == totals["margin_usd"]
    for partner, figures in report["partners"].items():
        for state in STATES_OF_MONEY:
            assert drawn.figures[f"{partner}.cashback_usd.{state}"] == figures["cashback_usd"][state]
        assert drawn.figures[f"{partner}.margin_usd"] == figures["margin_usd"]
    assert drawn.figures["quarantined.aliexpress"] == str(report["quarantined"]["aliexpress"]) == "1"
    # the hand-worked month's own totals (tests/support/books.py), so the page is not only equal to itself
    assert drawn.figures["cashback_usd.pending"] == "10.00" and drawn.figures["margin_usd"] == "-5.00"
