"""`connector worker`: claims and delivers due deliveries until SIGTERM."""

from __future__ import annotations

import gc
import sys

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
    settle_garbage_collection()
    sys.setswitchinterval(SWITCH_INTERVAL)
    run_forever(runtime)
    return 0


#: Seconds a thread runs before one waiting for the GIL may take it (CPython's default: 5 ms).
#: Dozens of delivery threads wake for their answers at once, and at 5 ms the thread holding
#: the GIL was asked to drop it again and again: at 20 ms the worker's CPU per delivery was
#: about 5% lower (bench/delivery.py, paired runs). A thread waits at most that long for its
#: turn; requests have seconds.
SWITCH_INTERVAL = 0.02
#: Allocations between two young-generation collections (CPython's default: 700). At 50,000
#: an activity run's worker spent 3.9 s collecting (257 young and 20 older collections, timed
#: with `gc.callbacks`): a page's events and rows, alive while it is stored and sent, were
#: scanned again and again. At 500,000: 0.2 s, with the same peak memory (367 against 386 MB).
YOUNG_COLLECTION_EVERY = 500_000


def settle_garbage_collection() -> None:
    """A worker allocates a few short-lived dicts and records per event and keeps its
    configuration, plugins and statements for its whole life. With CPython's defaults the
    cyclic collector ran every 700 allocations and rescanned all that long-lived state; an
    activity run spent about a seventh of its CPU there (bench/activity.py: 204 → 176 µs an
    event). What exists at start is frozen out of collection, and young collections are rarer;
    reference counting still frees everything that is not a cycle at once."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 20, 10)
