"""Single-threaded moto server for the local stack (SQS, EventBridge, Secrets Manager).

Why not the stock ``moto_server``: it serves with werkzeug's *threaded* server, and
moto's in-memory backends are not safe under concurrent requests (measured on its
DynamoDB backend: two winners of an ``attribute_not_exists`` race, conditional
decrements succeeding more often than the balance allowed, HTTP 500s on concurrent
transactions; the other backends take no more care with locking). This script
serves the very same WSGI application, moto's
``DomainDispatcherApplication(create_backend_app)``, one request at a time.

Things that follow from serving one request at a time:

* werkzeug speaks HTTP/1.0 when neither threaded nor multi-process, so every response
  closes its connection; an idle keep-alive connection can therefore never block the
  other clients. Waiting requests queue in the listen backlog.
* A connection idle for ``QuietRequestHandler.timeout`` (1 s) before its request is
  complete is dropped, so that one silent client cannot stop the server.
* An SQS ``ReceiveMessage`` with ``WaitTimeSeconds > 0`` on an empty queue holds the
  whole server for that long (moto sleeps inside the request, and nothing can send a
  message meanwhile). Local pollers should use short waits (0 or 1 s) and sleep on
  the client side.

DynamoDB is *not* served from here: the local stack uses AWS's DynamoDB Local for it.

Usage (from the moto venv, see infra/tools.sh ``ensure_moto``)::

    .local/moto-venv/bin/python infra/moto_server.py --port 5000 [--host 127.0.0.1]
"""

import argparse
import logging
import os
import signal
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class QuietRequestHandler(MotoRequestHandler):
    """moto's request handler (keeps its header handling) without a log line per request.

    Errors are still logged: werkzeug logs them through ``log_error``/``log`` at the
    "error" level, which the logger set up in ``main`` lets through.
    """

    # A connection that sends nothing for this long is closed. Served one at a time, a
    # connection whose client went away unseen (under load the listen backlog overflows, and
    # a handshake the client gave up on can still be accepted here) would otherwise hold the
    # server, and every AWS call of the stack behind it, for ever.
    timeout = 1

    def log_request(self, code="-", size="-"):  # noqa: D102 - werkzeug override
        pass


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    # moto builds some URLs (e.g. SQS queue URLs) from MOTO_PORT; the stock server sets it too.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    # werkzeug logs each request and its startup banner at INFO: keep only warnings/errors.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Exit cleanly (status 0) on SIGTERM as on Ctrl-C, like the stock server.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    print(f"moto (single-threaded) listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(
        args.host,
        args.port,
        app,
        threaded=False,
        processes=1,
        use_reloader=False,
        request_handler=QuietRequestHandler,
    )


if __name__ == "__main__":
    main()
