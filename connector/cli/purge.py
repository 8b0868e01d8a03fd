"""`connector purge`: remove finished deliveries past the retention in connector.yaml, now
(workers also do it every `retention.every`); the Live View shows the last purge either way."""

from __future__ import annotations

import os
import socket

from connector.cli.runtimes import build_runtime
from connector.outbox import retention


def register(subparsers) -> None:
    parser = subparsers.add_parser("purge", help="delete finished deliveries past retention")
    parser.set_defaults(func=run)


def run(args) -> int:
    runtime = build_runtime(args)
    settings = runtime.config.settings
    owner = f"connector purge on {socket.gethostname()}:{os.getpid()}"
    result = retention.run(
        runtime.engine,
        settings["retention"],
        owner,
        settings["worker"]["lease"],
        settings["retention"]["every"],
        due_only=False,
    )
    if result is None:
        holder = (retention.last_run(runtime.engine) or {}).get("owner") or "another process"
        print(f"a purge is running now ({holder}); nothing done")
        return 1
    print(
        f"purged {result['deliveries']} deliveries, {result['attempts']} attempts, {result['events']} events "
        f"in {result['transactions']} transactions (the longest {result['longest_transaction_ms']:.1f} ms)"
    )
    return 0
