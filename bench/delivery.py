"""Delivery throughput: one worker process draining a backlog of opt-ins to a sandbox that
answers in 50 ms on SQLite, then two on PostgreSQL (fsync on).
`python bench/delivery.py [--contacts 2000 --latency-ms 50 --no-postgres]`.

Measured from outside: the store's attempt log and deliveries, and the sandbox's token count
(one fetch per key per worker process). The bound is workers × threads / latency."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from connector.testing import StoreReader, example_stack, postgres, wait_until
from plugins.extole.testing import referral_event

PER_REQUEST = 1000  # events per webhook request (the intake limit)


def drain(args, database_url: str | None = None, workers: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stack = example_stack(
            Path(tmp), settings={"worker": {"threads": args.threads}}, database_url=database_url
        )
        try:
            stack.start(workers=0)
            stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": args.latency_ms})
            events = [referral_event(f"d-{i}", email=f"c{i}@example.com") for i in range(args.contacts)]
            for start in range(0, len(events), PER_REQUEST):
                assert stack.post_events(events[start : start + PER_REQUEST]).status_code == 202
            started = time.monotonic()
            for _ in range(workers):
                stack.add_worker()
            wait_until(
                lambda: stack.delivery_states() == {"delivered": args.contacts},
                timeout=600,
                interval=0.2,
                message="backlog drained",
            )
            seconds = time.monotonic() - started
            state = stack.part("listrak").state()
            store = StoreReader(stack.database_url)
            first, last = store.drain_span()
            store.close()
        finally:
            stack.stop()
    return {
        "contacts": args.contacts,
        "latency_ms": args.latency_ms,
        "workers": workers,
        "threads": args.threads,
        "bound_per_second": round(workers * args.threads * 1000 / args.latency_ms),
        "seconds": round(seconds, 2),
        "contacts_per_second": round(args.contacts / seconds, 1),
        "drain_seconds": round(last - first, 2),
        "drain_contacts_per_second": round(args.contacts / (last - first), 1),
        "token_fetches": sum(state["requests"]["token_fetches"].values()),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    args = parser.parse_args(argv)
    figures = drain(args)  # SQLite's figures at the top, as before
    if args.postgres:
        with postgres.bench_database() as url:
            figures["postgresql"] = drain(args, url, workers=2)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
