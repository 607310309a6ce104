"""moto's server, answering one request at a time.

moto's threaded server runs requests side by side, and a cancelled TransactWriteItems rolls back by putting back
whole-table copies taken when it started: a transaction another client committed in between is silently undone
(measured: three concurrent runs over the same lines lost a credit about one time in six). DynamoDB keeps each
transaction atomic; serving requests one at a time gives moto the same property while clients stay concurrent, so
the race tests exercise the ledger's conditions rather than the emulator's rollback.

    python -m accrual_dev.local.moto_serial -H 127.0.0.1 -p PORT
"""
from __future__ import annotations

import argparse
import threading
from collections.abc import Iterable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def serialised(app):
    lock = threading.Lock()

    def serve_one_at_a_time(environ, start_response) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))  # the whole response is made inside the lock

    return serve_one_at_a_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
