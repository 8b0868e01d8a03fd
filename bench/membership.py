"""Listrak lists → Segment audiences: a list of 100,000 subscribers backfilled to the Segment look-alike.

Real processes from connector.testing.example_stack: the Listrak sandbox with `--subscribers` contacts
on list 12345 (`--with-user-id` of them with a userId in profile field 1006), the Segment
look-alike, gunicorn, and one `connector worker` started once the seed is in place, its
`listrak-activity` source following membership (`membership: true`, polled every 5 minutes, so
once here). Its first poll reads every subscriber in pages of 5,000, the unsubscribes within
lookback and the (empty) message listing, and sends one identify per subscriber.

The yardstick, measured in the same run against the same look-alikes: a bare pipeline in one
process with `requests` doing the same Listrak reads (token, the subscriber pages, the
unsubscribes, the message listing) and the same Segment calls (the same identify payloads, 1,000
per `POST /v1/batch`), nothing stored. It runs first; the Segment look-alike's record is reset
before the connector runs.

Figures: seconds from the worker's start until every identify is delivered (read from the
store; the worker's start-up included), the bare pipeline's seconds, the ratio of their rates,
Listrak and Segment requests. Targets (DESIGN): at most 25 Listrak and 110 Segment requests,
every subscriber's identify received once.

Run:  .venv/bin/python bench/membership.py [--subscribers 100000] [--with-user-id 90000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from connector.testing import Stack, StoreReader, example_stack, wait_until
from plugins.listrak.testing import ACTIVITY_FLOW, SANDBOX_CLIENTS_ENV
from plugins.listrak_activity.events import membership_change, parse_time
from plugins.listrak_activity.membership import changed_at, when
from plugins.listrak_activity.testing import (
    LIST_ID,
    USER_ID_FIELD,
    membership_message_ids,
    seed,
    source_file,
    subscribers_seed,
)
from plugins.listrak_activity.users import field_value
from plugins.segment.sandbox import DEMO_WRITE_KEY

LIMITS = {"listrak_requests": 25, "segment_requests": 110}
LOOKBACK = 7 * 86400
PAGE, PER_BATCH = 5000, 1000


def bare_pipeline(stack: Stack) -> float:
    """The connector's reads and calls from one process, nothing stored: its seconds."""
    started = time.time()
    listrak, segment = requests.Session(), requests.Session()
    token = listrak.post(
        f"{stack.part('listrak').url}/OAuth2/Token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_ID"],
            "client_secret": SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_SECRET"],
        },
        timeout=30,
    ).json()["access_token"]
    listrak.headers["Authorization"] = f"Bearer {token}"
    segment.auth = (DEMO_WRITE_KEY, "")
    api = f"{stack.part('listrak').url}/email/v1/List/{LIST_ID}"
    end = when(started)
    window = {"startDate": when(started - LOOKBACK), "endDate": end}
    read_at = parse_time(end)
    reads = [
        ("Subscribed", {}),
        ("Unsubscribed", window),
    ]
    for state, dates in reads:
        cursor = "Start"
        while cursor:
            params = {
                "subscriptionState": state,
                "segmentationFieldIds": str(USER_ID_FIELD),
                "cursor": cursor,
                "count": str(PAGE),
                **dates,
            }
            page = listrak.get(f"{api}/Contact", params=params, timeout=60).json()
            calls = [
                membership_change(
                    LIST_ID,
                    c["emailAddress"].strip().lower(),
                    state == "Subscribed",
                    field_value(c, USER_ID_FIELD),
                    changed_at(c, state),
                    read_at,
                    "production",
                ).payload
                for c in page["data"]
            ]
            for first in range(0, len(calls), PER_BATCH):
                sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                body = {"batch": calls[first : first + PER_BATCH], "sentAt": sent_at}
                segment.post(
                    f"{stack.part('segment').url}/v1/batch", json=body, timeout=60
                ).raise_for_status()
            cursor = page["nextPageCursor"] if page["data"] else None
    listrak.get(f"{api}/Message", params={**window, "cursor": "Start", "count": str(PAGE)}, timeout=60)
    return time.time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--with-user-id", type=int, default=90_000)
    args = parser.parse_args()

    members = subscribers_seed(args.subscribers, datetime.now(UTC) - timedelta(days=30), args.with_user_id)
    expected = membership_message_ids(members)
    with tempfile.TemporaryDirectory(prefix="bench-membership-") as workdir:
        stack = example_stack(
            Path(workdir), extra_files=source_file(poll_interval="5m", membership=True), keep=ACTIVITY_FLOW
        )
        try:
            stack.start(workers=0)
            seed(stack, members)

            before = stack.part("listrak").request_counts()["total"]
            bare_seconds = bare_pipeline(stack)
            bare_listrak = stack.part("listrak").request_counts()["total"] - before
            bare_segment = stack.part("segment").state()
            stack.part("segment").reset()

            before = stack.part("listrak").request_counts()
            store = StoreReader(stack.database_url)
            started = time.time()
            stack.add_worker()
            wait_until(
                lambda: store.delivery_states() == {"delivered": len(expected)},
                timeout=600,
                interval=0.25,
                message="every identify delivered",
            )
            seconds = time.time() - started
            first, last = store.drain_span()
            store.close()
            listrak = stack.part("listrak").request_counts()
            segment = stack.part("segment").state()
        except Exception:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.stop()

    received = set(segment["message_ids"])
    listrak_requests = listrak["total"] - before["total"]
    by_route = {
        route: count - before["per_route"].get(route, 0)
        for route, count in listrak["per_route"].items()
        if route.startswith("GET") and count > before["per_route"].get(route, 0)
    }
    figures = {
        "subscribers": args.subscribers,
        "with_user_id": args.with_user_id,
        "seconds_to_complete": round(seconds, 1),
        "seconds_first_to_last_delivery": round(last - first, 1),
        "contacts_per_second": round(args.subscribers / seconds),
        "bare_seconds": round(bare_seconds, 1),
        "bare_contacts_per_second": round(args.subscribers / bare_seconds),
        "ratio_to_bare": round(bare_seconds / seconds, 2),
        "listrak_requests": listrak_requests,
        "listrak_requests_by_route": by_route,
        "bare_listrak_requests": bare_listrak,
        "segment_requests": segment["requests"]["total"],
        "bare_segment_requests": bare_segment["requests"]["total"],
        "segment_calls": segment["calls"]["total"],
        "duplicates_at_segment": segment["duplicates"],
        "missing_at_segment": len(expected - received),
        "unexpected_at_segment": len(received - expected),
        "bare_calls_as_the_connectors": set(bare_segment["message_ids"]) == expected,
    }
    print(json.dumps(figures, indent=2))
    met = (
        listrak_requests <= LIMITS["listrak_requests"]
        and segment["requests"]["total"] <= LIMITS["segment_requests"]
        and received == expected
        and segment["duplicates"] == 0
    )
    print(f"targets {LIMITS}, every identify once: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
