"""A real HTTP partner simulator speaking AliExpress's sync gateway and Admitad's API, for tests and `make run`.

    with running_simulator(seed=7) as simulator:
        simulator.url            # http://127.0.0.1:<free port>
        simulator.world.clicks   # the clicks that match its orders (Click fields)
        simulator.app.now = ...  # the simulator's clock: statuses are served as of it
        simulator.app.faults.rate_limit = 2

`launch(seed=..., faults=...)` returns a `Simulator` (with `.stop()`) for callers that manage the lifetime themselves;
`python -m accrual_dev.simulator --port 0 --seed N` serves until interrupted and prints its URL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from werkzeug.serving import WSGIRequestHandler, make_server

from accrual_dev.simulator.generator import World, generate
from accrual_dev.simulator.server import Credentials, Faults, SimulatorApp

DEFAULT_START = datetime(2026, 10, 1, tzinfo=UTC)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # a line per request would drown test and demo output
        pass


@dataclass
class Simulator:
    url: str
    app: SimulatorApp
    stop: Callable[[], None]

    @property
    def world(self) -> World:
        return self.app.world

    @property
    def credentials(self) -> Credentials:
        return self.app.credentials


def launch(
    *,
    seed: int = 1,
    faults: Faults | None = None,
    start: datetime = DEFAULT_START,
    days: int = 30,
    orders_per_day: int = 8,
    now: datetime | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    credentials: Credentials | None = None,
) -> Simulator:
    """Generate the seeded world and serve it on a threaded server (port 0: a free port)."""
    world = generate(seed, start=start, days=days, orders_per_day=orders_per_day)
    app = SimulatorApp(world, credentials=credentials, faults=faults, now=now)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="partner-simulator", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return Simulator(url=f"http://{host}:{server.server_port}", app=app, stop=stop)


@contextmanager
def running_simulator(**options) -> Iterator[Simulator]:
    simulator = launch(**options)
    try:
        yield simulator
    finally:
        simulator.stop()


__all__ = ["Credentials", "Faults", "Simulator", "World", "generate", "launch", "running_simulator"]
