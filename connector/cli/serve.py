"""`connector serve`: web app and worker in one process, for development."""

from __future__ import annotations

import threading

from connector.cli.runtimes import build_runtime
from connector.delivery.worker import Worker


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="web app + worker in one process (development)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.set_defaults(func=run)


def run(args) -> int:
    # Imported here: every command registers through this module, and the web app's imports
    # (Flask, the admin API, the rate limiter) are a third of a second the others never need.
    from werkzeug.serving import run_simple

    from connector.app import create_app

    runtime = build_runtime(args)
    app = create_app(runtime=runtime)
    worker = Worker(runtime)
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    thread.start()
    try:
        run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    finally:
        worker.stop_event.set()
        thread.join(timeout=10)
    return 0
