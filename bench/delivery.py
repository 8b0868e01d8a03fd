"""Delivery throughput: one worker process draining a backlog of opt-ins to a sandbox that
answers in 50 ms. `python bench/delivery.py [--contacts 2000 --latency-ms 50]`.

Measured from outside: the store's attempt log and deliveries, and the sandbox's token count."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from connector.testing import StoreReader, wait_until
from plugins.extole.testing import referral_event
from plugins.listrak.testing import Stack

PER_REQUEST = 1000  # events per webhook request (the intake limit)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), settings={"worker": {"threads": args.threads}})
        try:
            stack.start(workers=0)
            stack.sandbox("POST", "/_sandbox/latency", json={"ms": args.latency_ms})
            events = [referral_event(f"d-{i}", email=f"c{i}@example.com") for i in range(args.contacts)]
            for start in range(0, len(events), PER_REQUEST):
                assert stack.post_events(events[start : start + PER_REQUEST]).status_code == 202
            started = time.monotonic()
            stack.add_worker()
            wait_until(
                lambda: stack.delivery_states() == {"delivered": args.contacts},
                timeout=600,
                interval=0.2,
                message="backlog drained",
            )
            seconds = time.monotonic() - started
            state = stack.sandbox_state()
            store = StoreReader(stack.database_url)
            first, last = store.drain_span()
            store.close()
        finally:
            stack.stop()
    figures = {
        "contacts": args.contacts,
        "latency_ms": args.latency_ms,
        "threads": args.threads,
        "seconds": round(seconds, 2),
        "contacts_per_second": round(args.contacts / seconds, 1),
        "drain_seconds": round(last - first, 2),
        "drain_contacts_per_second": round(args.contacts / (last - first), 1),
        "token_fetches": sum(state["requests"]["token_fetches"].values()),
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
