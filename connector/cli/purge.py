"""`connector purge`: remove finished deliveries past the retention in connector.yaml."""

from __future__ import annotations

from connector.cli.runtimes import build_runtime
from connector.outbox.retention import purge


def register(subparsers) -> None:
    parser = subparsers.add_parser("purge", help="delete finished deliveries past retention")
    parser.set_defaults(func=run)


def run(args) -> int:
    runtime = build_runtime(args)
    counts = purge(runtime.engine, runtime.config.settings["retention"])
    print(
        f"purged {counts['deliveries']} deliveries, {counts['attempts']} attempts, {counts['events']} events"
    )
    return 0
