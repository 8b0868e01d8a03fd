"""`connector worker`: claims and delivers due deliveries until SIGTERM."""

from __future__ import annotations

from connector import logs
from connector.cli.runtimes import build_runtime
from connector.delivery.worker import Worker, run_forever


def register(subparsers) -> None:
    parser = subparsers.add_parser("worker", help="deliver queued events to partners")
    parser.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    runtime = build_runtime(args)
    logs.configure(runtime.config.settings["logging"], runtime.redactor)
    if args.once:
        print(f"delivered {Worker(runtime).run_once()} deliveries")
        return 0
    run_forever(runtime)
    return 0
