"""Profile-field throughput: Listrak's bulk route versus one Contact POST per event.

Real processes (sandbox, gunicorn, one worker) from connector.testing.example_stack, the sandbox
answering every API call after `--latency-ms` (50 by default). In one run, two backlogs of
`--contacts` contacts each are queued with no worker running, then drained by one worker:

  bulk     Segment audience events → update_email_contact_profile_fields
           (POST /List/{id}/Contact/SegmentationField, up to CHUNK_SIZE contacts per request)
  contact  referral opt-ins → contact_subscription (one POST /List/{id}/Contact per event)

Throughput is contacts / (last delivery recorded − first attempt started), both read from the
store, so process start-up and intake are not counted; claiming, sending and recording are.

Run:  .venv/bin/python bench/profile_fields.py [--contacts 5000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from connector.testing import Stack, StoreReader, example_stack, wait_until
from plugins.extole.testing import referral_event
from plugins.segment.testing import audience_event

PER_REQUEST = 1000  # events per webhook request (the intake limit)
ACTIONS = {"bulk": "update_email_contact_profile_fields", "contact": "contact_subscription"}
MAPPINGS = [
    {
        "name": "my_audience",
        "action": ACTIONS["bulk"],
        "when": [{"field": "context.personas.computation_key", "is": "my_audience"}],
        "list_id": 12345,
        "profile_field_values": {"6789": "useAudienceKey"},
    }
]


def queue_backlog(stack: Stack, kind: str, count: int) -> None:
    for start in range(0, count, PER_REQUEST):
        ids = range(start, min(count, start + PER_REQUEST))
        if kind == "bulk":
            response = stack.post_events(
                {
                    "batch": [
                        audience_event(f"seg-{i}", f"bulk{i}@example.com", entered=i % 2 == 0) for i in ids
                    ]
                },
                source="segment",
            )
        else:
            response = stack.post_events(
                [referral_event(f"ref-{i}", email=f"contact{i}@example.com") for i in ids]
            )
        response.raise_for_status()


def drain(stack: Stack, store: StoreReader, action: str, count: int) -> float:
    """Start one worker, wait until `count` deliveries of `action` are delivered; contacts/s."""
    # Past the batch window, so the whole backlog is due when the worker starts.
    wait_until(
        lambda: (store.latest_due(action) or 0.0) <= time.time(),
        timeout=60,
        interval=0.05,
        message=f"{action} backlog due",
    )
    worker = stack.add_worker()
    try:
        wait_until(
            lambda: store.delivery_states(action) == {"delivered": count},
            timeout=600,
            interval=0.2,
            message=f"{action} drained",
        )
    finally:
        stack.kill_worker(worker, sig=15)
    first, last = store.drain_span(action)
    return count / (last - first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-profile-fields-") as workdir:
        stack = example_stack(Path(workdir), partner_overrides={"listrak": {"mappings": MAPPINGS}})
        try:
            stack.start(workers=0)
            stack.part("listrak").request(
                "POST", "/_sandbox/latency", json={"ms": args.latency_ms}
            ).raise_for_status()
            store = StoreReader(stack.database_url)
            results = {}
            for kind, action in ACTIONS.items():
                queue_backlog(stack, kind, args.contacts)
                results[kind] = drain(stack, store, action, args.contacts)
            state = stack.part("listrak").state()
            store.close()
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.stop()

    bulk_calls = state["requests"]["bulk_calls"]
    sizes = sorted({c["items"] for c in bulk_calls})
    print(
        f"sandbox latency {args.latency_ms:.0f} ms, {args.contacts} contacts per route, "
        "one worker (16 threads)"
    )
    print(
        f"  bulk route (POST …/Contact/SegmentationField): {results['bulk']:8.0f} contacts/s"
        f"  ({len(bulk_calls)} requests, sizes {sizes})"
    )
    print(f"  one Contact POST per event (POST …/Contact):  {results['contact']:8.0f} contacts/s")
    print(f"  ratio bulk / per-event: {results['bulk'] / results['contact']:.1f}x")
    figures = {
        "contacts": args.contacts,
        "latency_ms": args.latency_ms,
        "bulk_contacts_per_second": round(results["bulk"]),
        "bulk_requests": len(bulk_calls),
        "contact_contacts_per_second": round(results["contact"]),
        "ratio": round(results["bulk"] / results["contact"], 1),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
