"""`accrual config load | diff`: validate a configuration document, store it as the new current version, or say what
it would change."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import (
    FX_BAND,
    UsageError,
    command_group,
    describe_validation_error,
    force_fx_option,
    json_option,
    print_json,
    read_text,
    settings,
)

if TYPE_CHECKING:
    from accrual.domain.models import AccrualConfig
    from accrual.settings import Settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, config = command_group(subparsers, "config", "the accrual configuration")
    load_parser = config.add_parser(
        "load",
        help="validate a configuration JSON file and store it as a new version",
        description="Validate a configuration document (known partners, rates 0..max_rate, days, plausible fx rates) "
        f"and store it as a new version that becomes current. An fx rate more than a factor of {FX_BAND} "
        "away from the current version's rate for that currency is refused unless --force-fx --reason "
        "TEXT; values that would make orders earn nothing (a cap of 0, a minimum above the cap, no rate card in "
        "force, every category virtual, awaiting_payment_days 0) are refused unless --force --reason TEXT. An "
        "unknown key is refused, naming the known key it resembles. Exit 2 when the document is refused.",
    )
    load_parser.add_argument(
        "file",
        help="the configuration, one JSON document (the accrual configuration format: "
        "version, rate_cards, promotions, fx_rates, ...)",
    )
    force_fx_option(load_parser)
    load_parser.add_argument(
        "--force",
        action="store_true",
        help="accept values that would make orders earn nothing (`config diff` says which orders would change)",
    )
    load_parser.add_argument(
        "--reason",
        default=None,
        help="why the forced values are right (required with --force and --force-fx; stored with the version)",
    )
    diff_parser = config.add_parser(
        "diff",
        help="what a configuration file changes relative to the current version, without loading it",
        description="Validate a configuration document as `config load` does and print what it changes relative to "
        "the current stored version (rate cards, promotions, rates, exclusions, fx rates, days), the values "
        "`config load` would accept only with --force, and what it would do to the orders placed in the last "
        "--days days: how many would change state or cashback (a dry run of the ledger; orders holding "
        "confirmed money never change). Stores nothing. Exit 0, or 2 when the document would be refused.",
    )
    diff_parser.add_argument("file", help="the configuration JSON document to compare with the current version")
    json_option(diff_parser)
    force_fx_option(diff_parser)
    diff_parser.add_argument(
        "--days",
        type=int,
        default=30,
        metavar="N",
        help="decide the orders placed in the last N days again under the document (default 30; 0: none)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    return {"load": load, "diff": diff}[args.config_command](args)


def _read_config(path: str) -> AccrualConfig | None:
    """The document validated on its own, or None after printing one line per problem (field and value)."""
    from pydantic import ValidationError

    from accrual.domain.models import AccrualConfig

    text = read_text(path, "a configuration JSON document")
    try:
        return AccrualConfig.model_validate_json(text)
    except ValidationError as error:
        print(f"configuration {path} is invalid:\n{describe_validation_error(error, AccrualConfig)}", file=sys.stderr)
        return None


def _checked_against_current(
    args: argparse.Namespace, config: AccrualConfig
) -> tuple[AccrualConfig | None, list, bool]:
    """The current stored configuration, the fx rates outside the band around it, and whether that refuses the
    document (it does unless --force-fx; the refusal is printed)."""
    from accrual.adapters import reference_data
    from accrual.domain.config_diff import fx_out_of_band

    version, current = reference_data.stored_current_config()
    if version is not None and current is None:
        print(
            f"note: the current version {version!r} no longer passes today's checks; there is nothing to compare with",
            file=sys.stderr,
        )
    out_of_band = fx_out_of_band(current, config) if current is not None and current.version != config.version else []
    if out_of_band and not args.force_fx:
        print(
            f"configuration {args.file} is invalid:\n"
            + "\n".join(map(str, out_of_band))
            + "\nif these rates are right, load with --force-fx --reason TEXT",
            file=sys.stderr,
        )
        return current, out_of_band, True
    return current, out_of_band, False


def _implausible(config: AccrualConfig) -> list:
    from accrual.domain.config_checks import implausible

    return implausible(config, datetime.now(UTC))


def load(args: argparse.Namespace) -> int:
    from accrual.adapters import reference_data

    for flag, given in (("--force-fx", args.force_fx), ("--force", args.force)):
        if given and not (args.reason or "").strip():
            print(f"accrual config load: {flag} needs --reason TEXT (stored with the version)", file=sys.stderr)
            return 2
    config = _read_config(args.file)
    if config is None:
        return 2
    settings()
    _current, forced, refused = _checked_against_current(args, config)
    if refused:
        return 2
    implausible = _implausible(config)
    if implausible and not args.force:
        print(
            f"configuration {args.file} would make orders earn nothing:\n"
            + "\n".join(map(str, implausible))
            + f"\nif this is meant, load with --force --reason TEXT (`accrual config diff {args.file}` counts the "
            "orders it would change)",
            file=sys.stderr,
        )
        return 2
    reason = args.reason.strip() if args.force_fx or args.force else None
    try:
        created = reference_data.save_config(config, now=datetime.now(UTC), reason=reason)
    except reference_data.ConfigVersionConflict as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"configuration {config.version} {'stored' if created else 'already stored'}; it is now current")
    for problem in forced:
        print(f"forced (--force-fx, reason: {reason}): {problem}")
    for problem in implausible:
        print(f"forced (--force, reason: {reason}): {problem}")
    return 0


def diff(args: argparse.Namespace) -> int:
    from accrual.domain.config_diff import describe
    from accrual.domain.config_diff import diff as config_diff

    if args.days < 0:
        raise UsageError(f"--days {args.days}: give a number of days, 0 or more")
    config = _read_config(args.file)
    if config is None:
        return 2
    stack = settings()
    current, out_of_band, refused = _checked_against_current(args, config)
    if refused:
        return 2
    result = config_diff(current, config)
    result["fx_forced"] = [problem.to_dict() for problem in out_of_band]
    implausible = _implausible(config)
    result["implausible"] = [problem.to_dict() for problem in implausible]
    result["orders"] = _effect_on_orders(stack, config, args.days)
    if args.json:
        print_json(result)
    else:
        print("\n".join(describe(result)))
        for problem in out_of_band:
            print(f"  ! would be forced (--force-fx): {problem}")
        for problem in implausible:
            print(f"  ! would be forced (--force): {problem}")
        print(_describe_effect(result["orders"]))
    return 0


def _effect_on_orders(stack: Settings, config: AccrualConfig, days: int) -> dict[str, Any]:
    """What deciding the orders placed in the last `days` days again under `config` would do: a dry run of the
    ledger's redecide (nothing is written), counted by state change and cashback change."""
    from collections import Counter
    from datetime import timedelta

    from accrual.adapters.ledger_store import DynamoLedgerStore
    from accrual.ports.ledger import utc_text
    from accrual.service.ledger import Ledger

    at = datetime.now(UTC)
    since = at - timedelta(days=days)
    store = DynamoLedgerStore(stack)
    keys = store.orders_between(utc_text(since), None) if days else []
    results, _counts = Ledger(store, config=config).redecide(keys, now=at, dry_run=True)
    changed = [item for item in results if item.outcome == "changed"]
    transitions = Counter(
        f"{item.state_from} → {item.state_to}" for item in changed if item.state_from != item.state_to
    )
    return {
        "since": since.isoformat(timespec="seconds"),
        "days": days,
        "checked": len(keys),
        "change_state": sum(transitions.values()),
        "change_cashback": sum(1 for item in changed if item.cashback_usd_from != item.cashback_usd_to),
        "transitions": dict(sorted(transitions.items())),
        "holding_confirmed_money": sum(1 for item in results if item.outcome == "skipped_confirmed"),
        "failed": sum(1 for item in results if item.outcome == "failed"),
    }


def _describe_effect(effect: dict[str, Any]) -> str:
    text = (
        f"orders placed in the last {effect['days']} days: {effect['checked']} decided again, "
        f"{effect['change_state']} would change state, {effect['change_cashback']} would change cashback"
    )
    if effect["transitions"]:
        text += " (" + ", ".join(f"{change}: {count}" for change, count in effect["transitions"].items()) + ")"
    if effect["holding_confirmed_money"]:
        text += f"; {effect['holding_confirmed_money']} hold confirmed money and stay as they are"
    if effect["failed"]:
        text += f"; {effect['failed']} could not be decided (see the log)"
    return text
