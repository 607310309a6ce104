"""`accrual ingest | pull | confirm | run --workers N` and `accrual dlq list | redrive`: the operator's commands
drive the same path as the deployed functions. Work is handed on to the work queue as units (archived pages, due
shards) and the local poller (accrual_dev.poller) runs the real reconcile handler over it with N threads per unit;
the commands print the counts the units reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from accrual.adapters.ledger_tables import bind_ledger_tables
from accrual.service.fanout import check_workers
from accrual.settings import Settings

COUNTS = ("read", "accepted", "quarantined")


def _settings() -> Settings:
    settings = Settings.from_env()
    bind_ledger_tables(settings)
    return settings


def _now(args) -> datetime:
    return args.now or datetime.now(UTC)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _unsettled(counts: dict[str, Any]) -> int:
    return sum(counts.get(name, 0) for name in ("orders_failed", "journal_conflicts"))


def _sum(results: list[dict[str, Any]], key: str | None = None) -> dict[str, int]:
    total: Counter[str] = Counter()
    for result in results:
        for name, value in (result.get(key, {}) if key else result).items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[name] += value
    return dict(total)


def drain(settings: Settings, workers: int) -> dict[str, Any]:
    from accrual_dev import poller

    return poller.drain(settings, check_workers(workers))


def _page_summary(results: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    pages = [result for result in results if result.get("kind") == "page" and result.get("run_id") == run_id]
    summary: dict[str, Any] = {name: sum(page.get(name, 0) for page in pages) for name in COUNTS}
    summary["reconciled"] = _sum(pages, "reconciled")
    summary["quarantine_reasons"] = [reason for page in pages for reason in page.get("quarantine_reasons", [])]
    return summary


def part_lines(lines: int, workers: int) -> int:
    """Lines per unit of a file ingested with `workers`: a dropped file's part size, smaller when that would leave
    a poller process without units (two units per process at least, 50 lines at the smallest)."""
    from accrual.service.work import DROP_PAGE_LINES
    from accrual_dev.poller import poller_processes

    processes = poller_processes(workers, units=workers)
    if processes == 1:
        return DROP_PAGE_LINES
    return max(50, min(DROP_PAGE_LINES, -(-lines // (2 * processes))))


# ---- the commands ---------------------------------------------------------------------------------------------------
def ingest(args) -> int:
    """A saved report: archived, split into page-sized units when large, reconciled by the workers."""
    from accrual.composition import composition
    from accrual_dev.commands import lines_partner, read_report

    check_workers(args.workers)
    data = read_report(args)  # the same checks and one-line errors as the in-process ingest
    settings, now = _settings(), _now(args)
    work = composition(settings).work
    path = Path(args.file)
    # `--partner csv --as NAME`: the lines are NAME's, read with the CSV reader
    partner, report_format = lines_partner(args), args.partner
    digest = hashlib.sha256(data).hexdigest()[:16]
    source = work.archive.put_raw(
        partner, now.replace(hour=0, minute=0, second=0, microsecond=0), f"{path.stem}-{digest}", data
    )
    run_id = uuid.uuid4().hex
    units = work.file_units(
        data,
        report_format,
        partner=partner,
        key=source,
        now=now,
        run_id=run_id,
        parts_prefix=f"raw/{partner}/files/{path.stem}-{digest}",
        lines_per_part=part_lines(data.count(b"\n"), args.workers),
    )
    work.hand_on(units)
    drained = drain(settings, args.workers)
    report = {
        "partner": partner,
        "source": source,
        "format": report_format,
        "run_id": run_id,
        "units": len(units),
        **_page_summary(drained["results"], run_id),
        "fanout": drained["fanout"],
    }
    _print(report)
    return 1 if _unsettled(report["reconciled"]) or drained["fanout"].get("unit_failures") else 0


def _pull(settings: Settings, now: datetime, partner: str | None, workers: int) -> dict[str, Any]:
    from accrual.composition import composition

    root = composition(settings)
    run_id = uuid.uuid4().hex
    summary = root.puller.pull_all(
        now=now,
        partners=[partner] if partner else None,
        run_id=run_id,
        hand_on=lambda unit: root.work.hand_on([unit]),
    ).as_dict()
    drained = drain(settings, workers)
    for name, result in summary["partners"].items():
        if "error" in result:
            continue
        done = _page_summary([item for item in drained["results"] if item.get("partner") == name], run_id)
        result.update(done)
        for key in COUNTS:
            summary[key] += done[key]
    summary["fanout"] = drained["fanout"]
    return summary


def pull(args) -> int:
    summary = _pull(_settings(), _now(args), args.partner, check_workers(args.workers))
    _print(summary)
    if summary["failed"]:
        return 1
    unsettled = sum(_unsettled(result.get("reconciled", {})) for result in summary["partners"].values())
    return 1 if unsettled or summary["fanout"].get("unit_failures") else 0


def _confirm(settings: Settings, now: datetime, workers: int) -> dict[str, Any]:
    from accrual.composition import composition
    from accrual.service.work import confirm_units

    run_id = uuid.uuid4().hex
    composition(settings).work.hand_on(confirm_units(now=now, run_id=run_id))
    drained = drain(settings, workers)
    shards = [result for result in drained["results"] if result.get("kind") == "confirm"]
    counts = _sum([{key: value for key, value in shard.items() if key != "shard"} for shard in shards])
    return {**counts, "shards": len(shards), "fanout": drained["fanout"]}


def confirm(args) -> int:
    counts = _confirm(_settings(), _now(args), check_workers(args.workers))
    _print(counts)
    return 1 if _unsettled(counts) or counts["fanout"].get("unit_failures") else 0


def run(args) -> int:
    """One whole cycle as the deployed functions run it: pull (pages handed on and reconciled), confirm (shards
    handed on and settled), then the outbox published."""
    from accrual.composition import composition

    settings, now, workers = _settings(), _now(args), check_workers(args.workers)
    pulled = _pull(settings, now, None, workers)
    confirmed = _confirm(settings, now, workers)
    grace = timedelta(seconds=int(os.environ.get("OUTBOX_SWEEP_GRACE_SECONDS", "0")))
    published = composition(settings).relay.publish_unpublished(now=now, grace=grace)
    unsettled = _unsettled(confirmed) + sum(
        _unsettled(partner.get("reconciled", {})) for partner in pulled["partners"].values()
    )
    failures = pulled["fanout"].get("unit_failures", 0) + confirmed["fanout"].get("unit_failures", 0)
    summary = {
        "run_id": pulled["run_id"],
        "now": now.isoformat(),
        "pull": pulled,
        "confirm": confirmed,
        "notify": published,
        "orders_unsettled": unsettled,
        "unit_failures": failures,
        "ok": not pulled["failed"] and not unsettled and not failures,
    }
    _print(summary)
    return 0 if summary["ok"] else 1


# ---- the dead-letter queue ------------------------------------------------------------------------------------------
def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """Every message in the work dead-letter queue, with the reason its last attempt failed. The messages are
    received and made visible again at once: listing moves nothing."""
    from accrual.composition import composition

    root = composition(settings)
    queue = root.dead_letters
    seen: dict[str, dict[str, Any]] = {}
    handles = []
    while True:
        messages = queue.receive(limit=10, visibility_timeout=30)
        fresh = [message for message in messages if message.message_id not in seen]
        if not fresh:
            break
        for message in fresh:
            handles.append(message.receipt_handle)
            failure = root.work.failure_reason(message.message_id)
            try:
                unit = json.loads(message.body)
            except ValueError:
                unit = {"body": message.body}
            seen[message.message_id] = {
                "message_id": message.message_id,
                "unit": unit,
                "reason": failure.reason if failure else None,
                "failed_at": failure.at if failure else None,
                "receipt_handle": message.receipt_handle,
            }
    queue.release(handles)
    return list(seen.values())


def dlq_list(args) -> int:
    letters = dead_letters(_settings())
    if args.json:
        _print([{key: value for key, value in letter.items() if key != "receipt_handle"} for letter in letters])
    else:
        for letter in letters:
            unit = letter["unit"]
            what = unit.get("key") or f"confirm shard {unit.get('shard')}"
            print(
                f"{letter['message_id']}  {unit.get('kind')}  {what}  now={unit.get('now')}\n"
                f"    {letter['reason'] or '(no reason recorded)'}  [{letter['failed_at'] or '?'}]"
            )
        print(f"{len(letters)} unit(s) in the dead-letter queue", file=sys.stderr)
    return 0


def dlq_redrive(args) -> int:
    """Move the dead-letter queue's units back to the work queue (after the cause is fixed) and, with --workers,
    run them. (SQS's own message-move task does the same on AWS; this works on every emulator.)"""
    from accrual.composition import composition

    settings = _settings()
    root = composition(settings)
    work, dead = root.work_queue, root.dead_letters
    moved = 0
    while True:
        received = dead.receive(limit=10, visibility_timeout=30)
        if not received:
            break
        for message in received:
            work.send([message.body])
            dead.delete([message.receipt_handle])
            moved += 1
    result: dict[str, Any] = {"redriven": moved}
    if args.workers and moved:
        drained = drain(settings, args.workers)
        result["fanout"] = drained["fanout"]
        result["reconciled"] = _sum([item for item in drained["results"] if item.get("kind") == "page"], "reconciled")
    _print(result)
    return 1 if result.get("fanout", {}).get("unit_failures") else 0
