"""`python -m accrual_dev.simulator --port 0 --seed N`: serve the partner simulator until interrupted.

Prints its URL on the first line of stdout (a script reads it), then the clicks file when `--clicks FILE` is given.
With `--configure`, writes the simulator's credentials and endpoints into the stack named by ACCRUAL_STACK.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime

from accrual_dev.simulator import DEFAULT_START, Faults, launch


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accrual_dev.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=_time, default=DEFAULT_START, help="first day of orders (ISO-8601)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders-per-day", type=int, default=8)
    parser.add_argument("--now", type=_time, default=None, help="the simulator's clock (default: the last day)")
    parser.add_argument("--clicks", default=None, help="write the matching clicks as JSON Lines to this file")
    parser.add_argument(
        "--configure",
        action="store_true",
        help="write the credentials and endpoints into the ACCRUAL_STACK stack (local setup)",
    )
    parser.add_argument("--rate-limit", type=int, default=0, help="refuse the first N data requests (rate limit)")
    parser.add_argument("--server-error", type=int, default=0, help="answer the first N data requests with 503")
    parser.add_argument("--malformed-line", action="store_true", help="one malformed line on every page")
    parser.add_argument("--slow-seconds", type=float, default=0.0)
    parser.add_argument("--slow-requests", type=int, default=0)
    args = parser.parse_args(argv)

    faults = Faults(
        rate_limit=args.rate_limit,
        server_error=args.server_error,
        malformed_line=args.malformed_line,
        slow_seconds=args.slow_seconds,
        slow_requests=args.slow_requests,
    )
    simulator = launch(
        seed=args.seed,
        faults=faults,
        start=args.start,
        days=args.days,
        orders_per_day=args.orders_per_day,
        now=args.now,
        port=args.port,
    )
    print(simulator.url, flush=True)
    if args.clicks:
        with open(args.clicks, "w", encoding="utf-8") as handle:
            handle.write(simulator.world.clicks_jsonl())
    if args.configure:
        from accrual.settings import Settings
        from accrual_dev.simulator.local import configure_local_partners

        configure_local_partners(
            Settings.from_env(), simulator.url, simulator.credentials, usd_rates=simulator.world.usd_rates
        )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
