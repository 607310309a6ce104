"""`accrual clicks load`: clicks recorded by the site, stored as facts."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from accrual_dev.commands._common import (
    command_group,
    describe_validation_error,
    print_json,
    progress_option,
    read_text,
    settings,
)

CLICKS_STEP = 500  # clicks stored together (one BatchGetItem finds those already stored)


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, clicks = command_group(subparsers, "clicks", "clicks recorded by the site")
    load_parser = clicks.add_parser(
        "load",
        help="load clicks from a JSON Lines file (clicks are facts: a changed click is refused)",
        description="Load clicks, one JSON object a line. A click is a fact: a sub_id already stored with other "
        "content is refused (the same content again counts as unchanged); a sub_id twice in the file "
        "with different content is refused (the same content twice counts once); a click whose user "
        "already has another account currency (stored, or earlier in the file) is refused. The valid "
        "clicks of the file are stored even when others are refused. Prints JSON counts (stored, "
        "unchanged, repeated, refused, refusals with reasons). Exit 0 when nothing is refused, 2 when "
        "anything is (the valid clicks are stored all the same).",
    )
    load_parser.add_argument(
        "file",
        help="JSON Lines, one click a line: sub_id, user_id, clicked_at (ISO-8601 with "
        "a zone), partner, account_currency (ISO 4217), country",
    )
    progress_option(load_parser)
    return parser


def run(args: argparse.Namespace) -> int:
    return {"load": load}[args.clicks_command](args)


def load(args: argparse.Namespace) -> int:
    """Clicks are facts: a sub_id stored with other content is refused, as is a click whose shopper already has
    another account currency; the valid clicks of the file are stored all the same. Exit 2 when any is refused."""
    from pydantic import ValidationError

    from accrual.adapters import reference_data
    from accrual.domain.click_batch import Refusal, screen
    from accrual.domain.models import Click
    from accrual.partners.normalized import json_lines
    from accrual_dev.progress import Progress, interrupted

    entries: list[tuple[int | None, Click]] = []
    refusals: list[Refusal] = []
    read = 0
    # JSON Lines end at \n only: U+2028 and the like inside a string do not split a click in two
    for number, text in enumerate(json_lines(read_text(args.file, "clicks as JSON Lines")), start=1):
        if not text.strip():
            continue
        read += 1
        try:
            entries.append((number, Click.model_validate_json(text)))
        except ValidationError as error:
            for problem in describe_validation_error(error).splitlines():
                refusals.append(Refusal(number, _sub_id_of(text) or "", problem))
    screened = screen(entries)
    refusals += screened.refusals
    settings()
    accepted = [click for _, click in screened.accepted]
    stored: list[str] = []
    unchanged: list[str] = []
    refused: dict[str, str] = {}
    # a step of clicks at a time: a bar on a terminal, and Ctrl-C between two steps (what is stored stays stored:
    # loading the file again counts it unchanged)
    with Progress("clicks load", total=len(accepted), unit="click", enabled=args.progress) as progress:
        try:
            for start in range(0, len(accepted), CLICKS_STEP):
                progress.check()
                step = reference_data.store_clicks(accepted[start : start + CLICKS_STEP], now=datetime.now(UTC))
                stored += step.stored
                unchanged += step.unchanged
                refused.update(step.refused)
                progress.step(min(CLICKS_STEP, len(accepted) - start))
        except KeyboardInterrupt:
            return interrupted(
                "clicks load",
                {"file": str(args.file), "read": read, "stored": len(stored), "unchanged": len(unchanged)},
                "loading the file again finishes it: the clicks stored count as unchanged",
            )
    lines = {click.sub_id: number for number, click in screened.accepted}
    refusals += [Refusal(lines[sub_id], sub_id, reason) for sub_id, reason in refused.items()]
    refusals.sort(key=lambda refusal: refusal.line or 0)
    print_json(
        {
            "file": str(args.file),
            "read": read,
            "stored": len(stored),
            "unchanged": len(unchanged),
            "repeated": screened.repeated,
            "refused": len({refusal.line for refusal in refusals}),
            "refusals": [refusal.to_dict() for refusal in refusals],
        }
    )
    for refusal in refusals:
        print(refusal, file=sys.stderr)
    return 2 if refusals else 0


def _sub_id_of(text: str) -> str | None:
    try:
        value = json.loads(text).get("sub_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
