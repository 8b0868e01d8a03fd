"""Draining a large backlog: does delivery keep its pace, and the worker its memory, however
many deliveries wait? `python bench/backlog.py [--backlog 200000 --small 3000 --stores sqlite,postgresql]`

For each store, a backlog of `--small` and one of `--backlog` opt-ins (one delivery each) are
written straight into the store through the intake function, in transactions of 5,000 events
(not one HTTP request each), then drained to the Listrak sandbox answering at once (latency 0)
by one worker on SQLite, two on PostgreSQL (connector.testing.postgres: fsync on). Reported per
run ("small", "large"): drain contacts/s overall and over the first and last tenth of the
deliveries (from the attempt log), the drain time, and each worker's resident memory when its
first result was recorded against its peak (VmRSS / VmHWM from /proc)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import func, select

from connector.outbox.intake import ingest
from connector.outbox.tables import attempts
from connector.runtime import Runtime
from connector.testing import Stack, StoreReader, example_stack, postgres, wait_until
from plugins.extole.testing import referral_event

PER_TRANSACTION = 5000
PER_REQUEST = 1000  # events one webhook request may carry (what the source parses at once)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def load(stack: Stack, contacts: int) -> float:
    """Queue one opt-in per contact through the intake function; seconds it took."""
    os.environ.update(stack.env)
    runtime = Runtime.build(str(stack.config_dir), stack.database_url)
    source_config = runtime.config.sources["extole"]
    source = runtime.registry.sources[source_config["plugin"]]
    started = time.monotonic()
    for start in range(0, contacts, PER_TRANSACTION):
        batch = [
            referral_event(f"b-{i}", email=f"c{i}@example.com")
            for i in range(start, min(start + PER_TRANSACTION, contacts))
        ]
        parsed = [
            event
            for first in range(0, len(batch), PER_REQUEST)
            for event in source.parse(json.dumps(batch[first : first + PER_REQUEST]).encode(), source_config)
        ]
        items = [(event, runtime.plan("extole", event)) for event in parsed]
        assert ingest(runtime.engine, "extole", items, runtime.due_delays).accepted == len(batch)
    seconds = time.monotonic() - started
    runtime.engine.dispose()
    return seconds


def rates(store: StoreReader, contacts: int) -> dict:
    """Contacts/s over the whole drain and over its first and last tenth, from the attempt log."""
    with store.engine.connect() as conn:
        times = sorted(conn.execute(select(attempts.c.started_at)).scalars())
        assert conn.execute(select(func.count()).select_from(attempts)).scalar() == contacts
    tenth = max(2, len(times) // 10)

    def rate(window: list[float]) -> float:
        return round((len(window) - 1) / max(window[-1] - window[0], 1e-9), 1)

    return {
        "contacts_per_second": rate(times),
        "first_tenth_contacts_per_second": rate(times[:tenth]),
        "last_tenth_contacts_per_second": rate(times[-tenth:]),
    }


def drain(contacts: int, workers: int, threads: int, database_url: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stack = example_stack(Path(tmp), settings={"worker": {"threads": threads}}, database_url=database_url)
        try:
            stack.start(workers=0)
            stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": 0})
            load_seconds = load(stack, contacts)
            store = StoreReader(stack.database_url)
            assert store.pending() == contacts
            started = time.monotonic()
            procs = [stack.add_worker() for _ in range(workers)]
            wait_until(lambda: store.attempt_count() > 0, timeout=60, interval=0.05, message="first result")
            memory_at_start = [memory_kb(p.pid)["VmRSS"] for p in procs]
            wait_until(lambda: store.pending() == 0, timeout=1800, interval=1.0, message="backlog drained")
            seconds = time.monotonic() - started
            memory_at_end = [memory_kb(p.pid) for p in procs]
            assert store.delivery_states() == {"delivered": contacts}
            figures = rates(store, contacts)
            store.close()
        finally:
            stack.stop()
    return {
        "backlog": contacts,
        "workers": workers,
        "load_seconds": round(load_seconds, 1),
        "drain_seconds": round(seconds, 1),
        **figures,
        "worker_rss_mb_at_first_result": [round(kb / 1024, 1) for kb in memory_at_start],
        "worker_peak_rss_mb": [round(m["VmHWM"] / 1024, 1) for m in memory_at_end],
        # the most any one worker grew from its first result to its peak
        "worker_rss_growth_mb": max(
            round((m["VmHWM"] - kb) / 1024, 1) for m, kb in zip(memory_at_end, memory_at_start, strict=True)
        ),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    figures: dict = {}
    for store in args.stores.split(","):
        workers = 2 if store == "postgresql" else 1
        figures[store] = {}
        for size, contacts in (("small", args.small), ("large", args.backlog)):
            with postgres.bench_database() if store == "postgresql" else nullcontext() as database_url:
                figures[store][size] = drain(contacts, workers, args.threads, database_url)
            print(json.dumps({store: {size: figures[store][size]}}), file=sys.stderr, flush=True)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
