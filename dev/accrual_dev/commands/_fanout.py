"""The deployed path of `ingest | pull | confirm | run --workers N` and `dlq redrive --workers N`: work is handed on to
the work queue as units (archived pages, due shards) and the local poller (accrual_dev.poller) runs the real reconcile
handler over it with N threads per unit; the commands print the counts the units reported."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accrual.settings import Settings

COUNTS = ("read", "accepted", "quarantined")


def unsettled(counts: dict[str, Any]) -> int:
    return sum(counts.get(name, 0) for name in ("orders_failed", "journal_conflicts"))


def sum_counts(results: list[dict[str, Any]], key: str | None = None) -> dict[str, int]:
    total: Counter[str] = Counter()
    for result in results:
        for name, value in (result.get(key, {}) if key else result).items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[name] += value
    return dict(total)


def drain(settings: Settings, workers: int, runs: dict[str, int]) -> dict[str, Any]:
    """Wait for the runs' units (run id -> units handed on), done by `workers` threads; other commands' units stay
    queued for them."""
    from accrual.service.fanout import check_workers
    from accrual_dev import poller

    return poller.drain(settings, check_workers(workers), runs=runs)


def page_summary(results: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    pages = [result for result in results if result.get("kind") == "page" and result.get("run_id") == run_id]
    summary: dict[str, Any] = {name: sum(page.get(name, 0) for page in pages) for name in COUNTS}
    summary["reconciled"] = sum_counts(pages, "reconciled")
    summary["quarantine_reasons"] = [reason for page in pages for reason in page.get("quarantine_reasons", [])]
    summary["top_reasons"] = _top_reasons(pages)
    return summary


def _top_reasons(pages: list[dict[str, Any]], limit: int = 3) -> list[dict[str, Any]]:
    """The pages' top reasons added up by kind."""
    lines: dict[str, int] = {}
    examples: dict[str, str] = {}
    for page in pages:
        for item in page.get("top_reasons", []):
            lines[item["reason"]] = lines.get(item["reason"], 0) + item["lines"]
            examples.setdefault(item["reason"], item["example"])
    ranked = sorted(lines, key=lambda kind: -lines[kind])[:limit]
    return [{"reason": kind, "lines": lines[kind], "example": examples[kind]} for kind in ranked]


def pull(settings: Settings, now: datetime, partner: str | None, workers: int) -> dict[str, Any]:
    """Every API partner's (or one partner's) new pages handed on as units and reconciled by the workers."""
    from accrual.composition import composition

    root = composition(settings)
    run_id = uuid.uuid4().hex
    summary = root.puller.pull_all(
        now=now, partners=[partner] if partner else None, run_id=run_id, hand_on=lambda unit: root.work.hand_on([unit])
    ).as_dict()
    handed = sum(result.get("handed_on", 0) for result in summary["partners"].values())
    drained = drain(settings, workers, {run_id: handed})
    for name, result in summary["partners"].items():
        if "error" in result:
            continue
        done = page_summary([item for item in drained["results"] if item.get("partner") == name], run_id)
        result.update(done)
        for key in COUNTS:
            summary[key] += done[key]
    summary["fanout"] = drained["fanout"]
    return summary


def confirm(settings: Settings, now: datetime, workers: int) -> dict[str, Any]:
    """The due index's shards handed on as units and settled by the workers."""
    from accrual.composition import composition
    from accrual.service.work import confirm_units

    run_id = uuid.uuid4().hex
    units = confirm_units(now=now, run_id=run_id)
    composition(settings).work.hand_on(units)
    drained = drain(settings, workers, {run_id: len(units)})
    shards = [result for result in drained["results"] if result.get("kind") == "confirm"]
    counts = sum_counts([{key: value for key, value in shard.items() if key != "shard"} for shard in shards])
    return {**counts, "shards": len(shards), "fanout": drained["fanout"]}
