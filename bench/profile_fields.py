"""Profile-field throughput: Listrak's bulk route versus one Contact POST per event.

Real processes (sandbox, gunicorn, one worker) from tests/e2e/stack.py, the sandbox answering
every API call after `--latency-ms` (50 by default). In one run, two backlogs of `--contacts`
contacts each are queued with no worker running, then drained by one worker:

  bulk     Segment audience events → update_email_contact_profile_fields
           (POST /List/{id}/Contact/SegmentationField, up to CHUNK_SIZE contacts per request)
  contact  referral opt-ins → contact_subscription (one POST /List/{id}/Contact per event)

Throughput is contacts / (last delivery recorded − the worker's "started" log line), so
process start-up and intake are not counted; claiming, sending and recording are.

Run:  .venv/bin/python bench/profile_fields.py [--contacts 5000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from connector.outbox.engine import make_engine  # noqa: E402
from connector.outbox.tables import deliveries  # noqa: E402
from tests.conftest import referral_event  # noqa: E402
from tests.e2e.stack import SANDBOX_ENV, Stack, wait_until  # noqa: E402
from tests.plugins.segment_events import audience_event, segment_signature  # noqa: E402

PER_REQUEST = 1000  # events per webhook request (the intake limit)


def post_segment(stack: Stack, events: list[dict]) -> None:
    body = json.dumps({"batch": events}).encode()
    signature = segment_signature(body, SANDBOX_ENV["SEGMENT_WEBHOOK_SECRET"])
    response = requests.post(f"{stack.base_url}/webhooks/segment", data=body, timeout=60,
                             headers={"Content-Type": "application/json",
                                      "X-Signature": signature})
    response.raise_for_status()


def queue_backlog(stack: Stack, kind: str, count: int) -> None:
    for start in range(0, count, PER_REQUEST):
        ids = range(start, min(count, start + PER_REQUEST))
        if kind == "bulk":
            post_segment(stack, [audience_event(f"seg-{i}", f"bulk{i}@example.com",
                                                entered=i % 2 == 0) for i in ids])
        else:
            response = stack.post_events([referral_event(f"ref-{i}", email=f"contact{i}@example.com")
                                          for i in ids])
            response.raise_for_status()


def started_times(stack: Stack) -> list[float]:
    """When each worker run logged that it started (JSON logs; one file per worker slot)."""
    times = []
    for path in stack.workdir.glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"connector.worker"' in line and " started with " in line:
                stamp = json.loads(line)["time"]
                times.append(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
                             .replace(tzinfo=UTC).timestamp())
    return sorted(times)


def drain(stack: Stack, engine, action: str, count: int) -> float:
    """Start one worker, wait until `count` deliveries of `action` are delivered; contacts/s."""
    before = len(started_times(stack))
    worker = stack.add_worker()
    try:
        start = wait_until(lambda: started_times(stack)[before:], interval=0.05,
                           message="worker start")[0]

        def delivered() -> bool:
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).where(
                    deliveries.c.action == action, deliveries.c.state == "delivered")).scalar()
            return done == count

        wait_until(delivered, timeout=600, interval=0.2, message=f"{action} drained")
        with engine.connect() as conn:
            last = conn.execute(select(func.max(deliveries.c.updated_at))
                                .where(deliveries.c.action == action)).scalar()
    finally:
        stack.kill_worker(worker, sig=15)
    return count / (last - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-profile-fields-") as workdir:
        stack = Stack(Path(workdir), settings={"logging": {"format": "json"}}, partner_overrides={
            "mappings": [{"name": "my_audience", "action": "update_email_contact_profile_fields",
                          "when": [{"field": "context.personas.computation_key",
                                    "is": "my_audience"}],
                          "list_id": 12345, "profile_field_values": {"6789": "useAudienceKey"}}]})
        try:
            stack.start(workers=0)
            stack.sandbox("POST", "/_sandbox/latency", json={"ms": args.latency_ms}).raise_for_status()
            engine = make_engine(stack.database_url)
            results = {}
            for kind, action in (("bulk", "update_email_contact_profile_fields"),
                                 ("contact", "contact_subscription")):
                queue_backlog(stack, kind, args.contacts)
                time.sleep(1.5)  # past the batch window, so the whole backlog is due
                results[kind] = drain(stack, engine, action, args.contacts)
            state = stack.sandbox_state()
            engine.dispose()
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.stop()

    bulk_calls = [c for c in state["requests"].get("bulk_calls", [])]
    sizes = sorted({c["items"] for c in bulk_calls})
    print(f"sandbox latency {args.latency_ms:.0f} ms, {args.contacts} contacts per route, "
          "one worker (16 threads)")
    print(f"  bulk route (POST …/Contact/SegmentationField): {results['bulk']:8.0f} contacts/s"
          f"  ({len(bulk_calls)} requests, sizes {sizes})")
    print(f"  one Contact POST per event (POST …/Contact):  {results['contact']:8.0f} contacts/s")
    print(f"  ratio bulk / per-event: {results['bulk'] / results['contact']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
