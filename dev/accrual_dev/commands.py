"""The operator commands behind `accrual` (cli.py parses; these call the services and print)."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from accrual.adapters import reference_data
from accrual.adapters.ledger_tables import bind_ledger_tables
from accrual.domain.models import AccrualConfig, Click
from accrual.settings import Settings


def _exit_code(counts: dict) -> int:
    """1 when any order could not be settled (no fx rate, contention, a journal conflict): the counts say which."""
    failed = sum(counts.get(name, 0) for name in ("orders_failed", "journal_conflicts"))
    return 1 if failed else 0


def _now(args) -> datetime:
    return args.now or datetime.now(timezone.utc)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


def describe_validation_error(error: ValidationError) -> str:
    """Name the field and the value of every problem, in one line each."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(document)"
        value = problem.get("input")
        shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{…}"
        lines.append(f"{field}: {problem['msg']} (value: {shown[:120]})")
    return "\n".join(lines)


def _settings() -> Settings:
    settings = Settings.from_env()
    bind_ledger_tables(settings)
    return settings


def _read_config(path: str) -> AccrualConfig | None:
    """The document validated on its own, or None after printing one line per problem (field and value)."""
    try:
        return AccrualConfig.model_validate_json(Path(path).read_text())
    except ValidationError as error:
        print(f"configuration {path} is invalid:\n{describe_validation_error(error)}", file=sys.stderr)
        return None


def _checked_against_current(args, config: AccrualConfig) -> tuple[AccrualConfig | None, list, bool]:
    """The current stored configuration, the fx rates outside the band around it, and whether that refuses the
    document (it does unless --force-fx; the refusal is printed)."""
    from accrual.domain.config_diff import fx_out_of_band

    version, current = reference_data.stored_current_config()
    if version is not None and current is None:
        print(f"note: the current version {version!r} no longer passes today's checks; there is nothing to compare "
              "with", file=sys.stderr)
    out_of_band = fx_out_of_band(current, config) if current is not None and current.version != config.version else []
    if out_of_band and not args.force_fx:
        print(f"configuration {args.file} is invalid:\n" + "\n".join(map(str, out_of_band))
              + "\nif these rates are right, load with --force-fx --reason TEXT", file=sys.stderr)
        return current, out_of_band, True
    return current, out_of_band, False


def config_load(args) -> int:
    if args.force_fx and not (args.reason or "").strip():
        print("accrual config load: --force-fx needs --reason TEXT (stored with the version)", file=sys.stderr)
        return 2
    config = _read_config(args.file)
    if config is None:
        return 2
    _settings()
    _current, forced, refused = _checked_against_current(args, config)
    if refused:
        return 2
    reason = args.reason.strip() if args.force_fx else None
    try:
        created = reference_data.save_config(config, now=datetime.now(timezone.utc), reason=reason)
    except reference_data.ConfigVersionConflict as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"configuration {config.version} {'stored' if created else 'already stored'}; it is now current")
    for problem in forced:
        print(f"forced (--force-fx, reason: {reason}): {problem}")
    return 0


def config_diff(args) -> int:
    from accrual.domain.config_diff import describe, diff

    config = _read_config(args.file)
    if config is None:
        return 2
    _settings()
    current, out_of_band, refused = _checked_against_current(args, config)
    if refused:
        return 2
    result = diff(current, config)
    result["fx_forced"] = [problem.to_dict() for problem in out_of_band]
    if args.json:
        _print_json(result)
    else:
        print("\n".join(describe(result)))
        for problem in out_of_band:
            print(f"  ! would be forced (--force-fx): {problem}")
    return 0


def clicks_load(args) -> int:
    """Clicks are facts: a sub_id stored with other content is refused, as is a click whose shopper already has
    another account currency; the valid clicks of the file are stored all the same. Exit 2 when any is refused."""
    from accrual.domain.click_batch import Refusal, screen

    entries, refusals, read = [], [], 0
    for number, text in enumerate(Path(args.file).read_text().splitlines(), start=1):
        if not text.strip():
            continue
        read += 1
        try:
            entries.append((number, Click.model_validate_json(text)))
        except ValidationError as error:
            for problem in describe_validation_error(error).splitlines():
                refusals.append(Refusal(number, _sub_id_of(text), problem))
    screened = screen(entries)
    refusals += screened.refusals
    _settings()
    result = reference_data.store_clicks([click for _, click in screened.accepted], now=datetime.now(timezone.utc))
    lines = {click.sub_id: number for number, click in screened.accepted}
    refusals += [Refusal(lines[sub_id], sub_id, reason) for sub_id, reason in result.refused.items()]
    refusals.sort(key=lambda refusal: refusal.line or 0)
    _print_json({"file": str(args.file), "read": read,
                 "stored": len(result.stored), "unchanged": len(result.unchanged), "repeated": screened.repeated,
                 "refused": len({refusal.line for refusal in refusals}),
                 "refusals": [refusal.to_dict() for refusal in refusals]})
    for refusal in refusals:
        print(refusal, file=sys.stderr)
    return 2 if refusals else 0


def _sub_id_of(text: str) -> str | None:
    try:
        value = json.loads(text).get("sub_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def ingest(args) -> int:
    from accrual.service.ingest import ingest_file

    report = ingest_file(Path(args.file), args.partner, settings=_settings(), now=_now(args))
    _print_json(report)
    return _exit_code(report["reconciled"])


def pull(args) -> int:
    from accrual.service.cycle import pull_partners

    summary = pull_partners(_settings(), now=_now(args), partner=args.partner)
    _print_json(summary)
    if summary["failed"]:
        return 1
    return max((_exit_code(result.get("reconciled", {})) for result in summary["partners"].values()), default=0)


def confirm(args) -> int:
    from accrual.service.ledger import Ledger

    counts = Ledger(_settings()).confirm(now=_now(args))
    _print_json(counts)
    return _exit_code(counts)


def run_cycle(args) -> int:
    from accrual.service.cycle import run_cycle as cycle

    summary = cycle(_settings(), now=_now(args))
    _print_json(summary)
    return 0 if summary["ok"] else 1


def balance(args) -> int:
    from accrual.service.reading import balance as read_balance

    result = read_balance(_settings(), args.user_id)
    if args.json:
        _print_json(result)
    else:
        currency = result["account_currency"]
        print(f"{result['user_id']}: pending {result['pending']} {currency} ({result['pending_usd']} USD), "
              f"confirmed {result['confirmed']} {currency} ({result['confirmed_usd']} USD)")
    return 0


def explain(args) -> int:
    from accrual.service.reading import explain as read_explain

    result = read_explain(_settings(), args.order_id, lang=args.lang)
    if result is None:
        print(f"no order {args.order_id!r} (neither a store nor a partner order number)", file=sys.stderr)
        return 1
    if args.json:
        _print_json(result)
    else:
        print(f"order {result['order_id']} ({result['partner']}), {result['state']}: "
              f"{result['cashback']} {result['account_currency']} ({result['cashback_usd']} USD)")
        print(result["explanation"])
    return 0


def review(args) -> int:
    from accrual.domain.lifecycle import ReviewVerdict
    from accrual.service.ledger import Ledger
    from accrual.service.reading import find_orders

    settings = _settings()
    keys = find_orders(args.order_id)
    if len(keys) != 1:
        print(f"{args.order_id!r} names {len(keys)} orders; give the order as partner#order_id", file=sys.stderr)
        return 2
    try:
        state = Ledger(settings).review(keys[0], ReviewVerdict(args.verdict), now=_now(args),
                                        user_id=getattr(args, "user", None))
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(f"order {keys[0]}: {args.verdict}, now {state.value}")
    return 0


def audit(args) -> int:
    from accrual.service.reading import audit as run_audit

    result = run_audit(_settings())
    if args.json:
        _print_json(result)
    else:
        print(f"{result['orders']} orders, {result['balances']} balances, {result['journal_entries']} journal entries: "
              + ("all agree" if result["ok"] else f"{len(result['differences'])} differences"))
        for difference in result["differences"]:
            print("  " + json.dumps(difference))
        for user_id in result["negative_confirmed_balances"]:
            print(f"  negative confirmed balance: {user_id}")
    return 0 if result["ok"] else 1
