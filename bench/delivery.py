"""Delivery throughput against its yardstick: one worker process draining a backlog of opt-ins
to a Listrak look-alike answering in 50 ms on SQLite, and a **bare sender** (bench/bare_sender.py:
32 threads, a `requests.Session` each, one POST per contact, nothing stored, nothing retried)
sending as many other contacts to the same look-alike in the same run. Then two workers on
PostgreSQL (fsync on) against a bare sender of their own run.
`python bench/delivery.py [--contacts 3000 --latency-ms 50 --no-postgres]`.

Measured from outside: the store's attempt log and deliveries (the drain: first attempt to last
result), the sandbox's token count (one fetch per key per worker process) and each worker's CPU
time from /proc, read once it has started and is idle and again when the backlog is delivered
(so planning, claiming, sending and recording are counted, imports are not)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from connector.testing import Stack, StoreReader, cpu_seconds, example_stack, postgres, wait_until
from plugins.extole.testing import referral_event

HERE = Path(__file__).resolve().parent
PER_REQUEST = 1000  # events per webhook request (the intake limit)


def bare_sender(stack: Stack, contacts: int, threads: int) -> dict:
    """bench/bare_sender.py against this stack's look-alike, in a process of its own."""
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "bare_sender.py"),
            "--url",
            stack.part("listrak").url,
            "--contacts",
            str(contacts),
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def started(stack: Stack, index: int) -> bool:
    log = stack.workdir / f"worker-{index}.log"
    return log.exists() and " started: " in log.read_text(errors="replace")


def drain(args, database_url: str | None = None, workers: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stack = example_stack(
            Path(tmp), settings={"worker": {"threads": args.threads}}, database_url=database_url
        )
        try:
            stack.start(workers=0)
            stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": args.latency_ms})
            bare = bare_sender(stack, args.contacts, args.threads * workers)
            tokens_before = sum(stack.part("listrak").state()["requests"]["token_fetches"].values())
            procs = [stack.add_worker() for _ in range(workers)]
            for index in range(workers):
                wait_until(lambda index=index: started(stack, index), timeout=60, message="worker started")
            time.sleep(0.5)  # past its first (empty) plan and claim
            cpu_before = [cpu_seconds(proc.pid) for proc in procs]
            events = [referral_event(f"d-{i}", email=f"c{i}@example.com") for i in range(args.contacts)]
            posting = time.monotonic()
            for start in range(0, len(events), PER_REQUEST):
                assert stack.post_events(events[start : start + PER_REQUEST]).status_code == 202
            wait_until(
                lambda: stack.delivery_states() == {"delivered": args.contacts},
                timeout=600,
                interval=0.1,
                message="backlog drained",
            )
            seconds = time.monotonic() - posting
            cpu = sum(cpu_seconds(proc.pid) for proc in procs) - sum(cpu_before)
            state = stack.part("listrak").state()
            store = StoreReader(stack.database_url)
            first, last = store.drain_span()
            store.close()
        finally:
            stack.stop()
    drained = args.contacts / (last - first)
    cpu_ms = cpu * 1000 / args.contacts
    return {
        "contacts": args.contacts,
        "latency_ms": args.latency_ms,
        "workers": workers,
        "threads": args.threads,
        "bound_per_second": round(workers * args.threads * 1000 / args.latency_ms),
        "seconds": round(seconds, 2),
        "contacts_per_second": round(args.contacts / seconds, 1),
        "drain_seconds": round(last - first, 2),
        "drain_contacts_per_second": round(drained, 1),
        "worker_cpu_seconds": round(cpu, 2),
        "worker_cpu_ms_per_contact": round(cpu_ms, 3),
        "token_fetches": sum(state["requests"]["token_fetches"].values()) - tokens_before,
        "bare_sender": bare,
        "ratio_to_bare": round(drained / bare["contacts_per_second"], 2),
        "cpu_ratio_to_bare": round(cpu_ms / bare["cpu_ms_per_contact"], 2),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=3000)
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
