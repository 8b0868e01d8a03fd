"""`connector poll <source_id>`: one poll of a pull source now (whatever its schedule), with
its events queued for delivery; exit 0 when the poll succeeded."""

from __future__ import annotations

import os
import socket
import sys

from connector.cli.runtimes import build_runtime
from connector.delivery.scheduler import Scheduler
from connector.outbox import pollers


def register(subparsers) -> None:
    parser = subparsers.add_parser("poll", help="poll a pull source once, now")
    parser.add_argument("source", help="pull source id (the file stem in config/sources/)")
    parser.set_defaults(func=run)


def run(args) -> int:
    runtime = build_runtime(args)
    if args.source not in runtime.config.pull_sources:
        known = ", ".join(sorted(runtime.config.pull_sources)) or "none"
        print(f"no pull source {args.source!r} (known: {known})", file=sys.stderr)
        return 2
    owner = f"{socket.gethostname()}:{os.getpid()}:poll"
    report = Scheduler(runtime, owner).poll(args.source)
    if report is None:
        print(
            f"{args.source} is being polled by {pollers.holder(runtime.engine, args.source)} "
            "right now; its events will be queued by that poll",
            file=sys.stderr,
        )
        return 1
    if not report.ok:
        print(f"poll of {args.source} failed: {report.error or 'lease lost'}", file=sys.stderr)
        return 1
    early = f"; {report.stopped_early}" if report.stopped_early else ""
    print(
        f"polled {args.source}: {report.rows_read} rows, {report.events} events, {report.accepted} new{early}"
    )
    return 0
