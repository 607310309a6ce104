"""`accrual config load | diff`: validate a configuration document, store it as the new current version, or say what
it would change."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from accrual_dev.commands._common import (
    FX_BAND,
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


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser, config = command_group(subparsers, "config", "the accrual configuration")
    load_parser = config.add_parser(
        "load",
        help="validate a configuration JSON file and store it as a new version",
        description="Validate a configuration document (known partners, rates 0..max_rate, days, plausible fx rates) "
        f"and store it as a new version that becomes current. An fx rate more than a factor of {FX_BAND} "
        "away from the current version's rate for that currency is refused unless --force-fx --reason "
        "TEXT. Exit 2 when the document is refused.",
    )
    load_parser.add_argument(
        "file",
        help="the configuration, one JSON document (the accrual configuration format: "
        "version, rate_cards, promotions, fx_rates, ...)",
    )
    force_fx_option(load_parser)
    load_parser.add_argument(
        "--reason",
        default=None,
        help="why the forced fx rates are right (required with --force-fx; stored with the version)",
    )
    diff_parser = config.add_parser(
        "diff",
        help="what a configuration file changes relative to the current version, without loading it",
        description="Validate a configuration document as `config load` does and print what it changes relative to "
        "the current stored version (rate cards, promotions, rates, exclusions, fx rates, days), without "
        "storing anything. Exit 0, or 2 when the document would be refused.",
    )
    diff_parser.add_argument("file", help="the configuration JSON document to compare with the current version")
    json_option(diff_parser)
    force_fx_option(diff_parser)
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
        print(f"configuration {path} is invalid:\n{describe_validation_error(error)}", file=sys.stderr)
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


def load(args: argparse.Namespace) -> int:
    from accrual.adapters import reference_data

    if args.force_fx and not (args.reason or "").strip():
        print("accrual config load: --force-fx needs --reason TEXT (stored with the version)", file=sys.stderr)
        return 2
    config = _read_config(args.file)
    if config is None:
        return 2
    settings()
    _current, forced, refused = _checked_against_current(args, config)
    if refused:
        return 2
    reason = args.reason.strip() if args.force_fx else None
    try:
        created = reference_data.save_config(config, now=datetime.now(UTC), reason=reason)
    except reference_data.ConfigVersionConflict as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"configuration {config.version} {'stored' if created else 'already stored'}; it is now current")
    for problem in forced:
        print(f"forced (--force-fx, reason: {reason}): {problem}")
    return 0


def diff(args: argparse.Namespace) -> int:
    from accrual.domain.config_diff import describe
    from accrual.domain.config_diff import diff as config_diff

    config = _read_config(args.file)
    if config is None:
        return 2
    settings()
    current, out_of_band, refused = _checked_against_current(args, config)
    if refused:
        return 2
    result = config_diff(current, config)
    result["fx_forced"] = [problem.to_dict() for problem in out_of_band]
    if args.json:
        print_json(result)
    else:
        print("\n".join(describe(result)))
        for problem in out_of_band:
            print(f"  ! would be forced (--force-fx): {problem}")
    return 0
