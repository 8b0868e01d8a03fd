"""Listrak activity → Segment: 100,000 activity rows of one message reach the Segment look-alike,
against a bare pipeline doing the same reads and calls in the same run.

Real processes from connector.testing.example_stack: the Listrak sandbox seeded with one message sent
to `--rows` recipients (`--with-user-id` of them carry a userId in profile field 1006, every
third opened), the Segment look-alike, gunicorn, and one `connector worker` started once the
seed is in place. Its first poll reads everything (Message, Activity in pages of 5,000, the
contacts' userIds in pages of 5,000) and the worker sends the events in batches.

Before the worker starts, the yardstick: bench/bare_pipeline.py (the same Listrak reads and the
same Segment calls from one process with `requests`, nothing stored) against the same
look-alikes, whose Segment calls are checked and then cleared. The connector is measured from
the worker's start until every event is delivered (read from the store), then checked at the
look-alike: every expected messageId received, none unexpected. Targets (DESIGN): at least 0.5×
the bare pipeline's events/s, at most 60 Listrak requests and 400 Segment requests.

Run:  .venv/bin/python bench/activity.py [--rows 100000] [--with-user-id 90000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector.testing import Stack, StoreReader, cpu_seconds, example_stack, wait_until
from plugins.listrak.testing import ACTIVITY_FLOW
from plugins.listrak_activity.testing import bulk_seed, expected_message_ids, seed, source_file

HERE = Path(__file__).resolve().parent
LIMITS = {"ratio_to_bare": 0.5, "listrak_requests": 60, "segment_requests": 400}


def bare_pipeline(stack: Stack, expected: set[str]) -> dict:
    """bench/bare_pipeline.py against this stack's look-alikes, in a process of its own; its
    calls checked at the Segment look-alike (the same events), which then forgets them."""
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "bare_pipeline.py"),
            "--listrak",
            stack.part("listrak").url,
            "--segment",
            stack.part("segment").url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout.splitlines()[-1])
    received = stack.part("segment").state()["message_ids"]
    if set(received) != expected or len(received) != len(expected):
        raise AssertionError(
            f"the bare pipeline sent {len(received)} events, not the {len(expected)} expected"
        )
    stack.part("segment").reset()
    return figures


class PeakRss(threading.Thread):
    """The worker process's peak resident memory (VmHWM) and its RSS at the start."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.done = pid, threading.Event()
        self.start_kb = self.peak_kb = 0

    def read(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        return 0

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                self.start_kb = self.start_kb or self.read("VmRSS:")
                self.peak_kb = max(self.peak_kb, self.read("VmHWM:"))
            except OSError:
                return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--with-user-id", type=int, default=90_000)
    args = parser.parse_args()

    body = bulk_seed(501, args.rows, datetime.now(UTC) - timedelta(hours=3), with_user_id=args.with_user_id)
    expected = expected_message_ids(body)
    with tempfile.TemporaryDirectory(prefix="bench-activity-") as workdir:
        stack = example_stack(Path(workdir), extra_files=source_file(poll_interval="5m"), keep=ACTIVITY_FLOW)
        try:
            stack.start(workers=0)
            seed(stack, body)
            bare = bare_pipeline(stack, expected)
            listrak_before = stack.part("listrak").state()["requests"]
            store = StoreReader(stack.database_url)
            started = time.time()
            worker = stack.add_worker()
            memory = PeakRss(worker.pid)
            memory.start()
            wait_until(
                lambda: store.delivery_states() == {"delivered": len(expected)},
                timeout=600,
                interval=0.25,
                message="every event delivered",
            )
            finished = time.time()
            worker_cpu = cpu_seconds(worker.pid)
            memory.done.set()
            first, last = store.drain_span()
            store.close()
            segment = stack.part("segment").state()
            listrak = stack.part("listrak").state()["requests"]
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.stop()

    received = set(segment["message_ids"])
    seconds = finished - started
    listrak_requests = listrak["total"] - listrak_before["total"]
    by_route = {
        route: count - listrak_before["per_route"].get(route, 0)
        for route, count in listrak["per_route"].items()
        if route.startswith("GET")
    }
    figures = {
        "rows": args.rows,
        "with_user_id": args.with_user_id,
        "events": len(expected),
        "seconds_to_complete": round(seconds, 1),
        "seconds_first_to_last_delivery": round(last - first, 1),
        "events_per_second": round(len(expected) / seconds),
        "listrak_requests": listrak_requests,
        "listrak_requests_by_route": by_route,
        "segment_requests": segment["requests"]["total"],
        "requests_per_1000_rows": round(
            (listrak_requests + segment["requests"]["total"]) * 1000 / args.rows, 2
        ),
        "segment_calls": segment["calls"]["total"],
        "duplicates_at_segment": segment["duplicates"],
        "missing_at_segment": len(expected - received),
        "unexpected_at_segment": len(received - expected),
        "worker_rss_mb_at_start": round(memory.start_kb / 1024, 1),
        "worker_peak_rss_mb": round(memory.peak_kb / 1024, 1),
        "worker_cpu_seconds": round(worker_cpu, 1),
        "worker_cpu_us_per_event": round(worker_cpu * 1e6 / len(expected)),
        "bare_pipeline": bare,
        "ratio_to_bare": round(len(expected) / seconds / bare["events_per_second"], 2),
    }
    print(json.dumps(figures, indent=2))
    met = (
        figures["ratio_to_bare"] >= LIMITS["ratio_to_bare"]
        and listrak_requests <= LIMITS["listrak_requests"]
        and segment["requests"]["total"] <= LIMITS["segment_requests"]
        and received == expected
    )
    print(f"targets {LIMITS}: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
