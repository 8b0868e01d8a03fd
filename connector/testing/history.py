"""A store with a long history, written straight into the tables (fast enough for a million
rows): events, one delivery and one attempt each, spread evenly over `days` up to `until`,
with the per-minute rollups, queue samples and poll history the workers would have kept for
the charts' last week. Used by the tests of the purge and the Live View at scale, and by
`bench/operator_view.py`."""

from __future__ import annotations

import json
import random
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from connector.outbox.rollups import MINUTE, minute_of
from connector.outbox.tables import (
    LATENCY_COLUMNS,
    LATENCY_EDGES_MS,
    attempt_minutes,
    attempts,
    deliveries,
    events,
    poll_runs,
    pollers,
    queue_minutes,
)

PARTNERS = ("crm", "analytics")
#: Outcomes of finished deliveries, by weight; the newest 1% are still queued.
FINISHED_MIX = (("delivered", 90), ("dead", 3), ("skipped", 4), ("superseded", 3))
CHUNK = 20_000
WEEK = 7 * 86400.0


@dataclass
class Seeded:
    rows: int  # events, deliveries and attempts, each
    since: float
    until: float
    rollup_rows: int


def seed_history(
    engine,
    rows: int,
    days: float,
    until: float,
    pull_source: str | None = None,
    seed: int = 15,
    partners: tuple[str, str] = PARTNERS,
    source: str = "referrals",
) -> Seeded:
    """`rows` events from `source`, with deliveries (4 in 5 to the first partner) and attempts
    (ids from 1), between `until - days` and `until`; a pull source's polls every 10 s of the
    last week, its last one good."""
    chooser = random.Random(seed)
    states = [state for state, weight in FINISHED_MIX for _ in range(weight)]
    since = until - days * 86400.0
    step = (until - since) / rows
    request = json.dumps(
        {"method": "POST", "url": "https://api.example.com/List/12345/Contact", "body": "x" * 200}
    )
    response = json.dumps({"status": 201, "body": {"status": 201, "resourceId": "r" * 40}})
    rollups: dict[tuple, dict] = {}
    pending_from = rows - max(1, rows // 100)
    with engine.begin() as conn:
        for start in range(1, rows + 1, CHUNK):
            event_rows, delivery_rows, attempt_rows = [], [], []
            for i in range(start, min(start + CHUNK, rows + 1)):
                at = since + i * step
                partner = partners[i % 5 == 0]
                state = "queued" if i > pending_from else chooser.choice(states)
                latency = chooser.lognormvariate(4.5, 0.6)  # around 90 ms
                email = f"person-{i}@example.com"
                event_rows.append(
                    {
                        "id": i,
                        "source_id": source,
                        "event_id": f"seed-{i}",
                        "type": "opt_in",
                        "environment": "production",
                        "email": email,
                        "event_time": at,
                        "received_at": at,
                        "payload": json.dumps({"event_id": f"seed-{i}", "person": {"email": email}}),
                    }
                )
                delivery_rows.append(
                    {
                        "id": i,
                        "event_pk": i,
                        "partner_id": partner,
                        "action": "contact_subscription",
                        "environment": "production",
                        "partner_key_id": f"{partner}-production",
                        "contact_key": f"{partner}|production|12345|{email}",
                        "batch_key": None,
                        "event_time": at,
                        "spec": json.dumps({"email": email, "list_id": 12345}),
                        "state": state,
                        "reason": None,
                        "attempts": 0 if state == "queued" else 1,
                        "next_attempt_at": at if state == "queued" else None,
                        "last_status": None if state == "queued" else 201,
                        "last_latency_ms": None if state == "queued" else latency,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
                attempt_rows.append(
                    {
                        "id": i,
                        "delivery_id": i,
                        "started_at": at,
                        "outcome": "retrying" if state == "queued" else state,
                        "status": 201,
                        "latency_ms": latency,
                        "batch_size": 1,
                        "request": request,
                        "response": response,
                    }
                )
                if at >= until - WEEK - 86400.0 and state != "queued":
                    rollup = rollups.setdefault(
                        (minute_of(at), partner, state),
                        {
                            "deliveries": 0,
                            "requests": 0,
                            "latency_ms_sum": 0.0,
                            **dict.fromkeys(LATENCY_COLUMNS, 0),
                        },
                    )
                    rollup["deliveries"] += 1
                    rollup["requests"] += 1
                    rollup["latency_ms_sum"] += latency
                    rollup[LATENCY_COLUMNS[bisect_left(LATENCY_EDGES_MS, latency)]] += 1
            conn.execute(insert(events), event_rows)
            conn.execute(insert(deliveries), delivery_rows)
            conn.execute(insert(attempts), attempt_rows)
        conn.execute(
            insert(attempt_minutes),
            [{"minute": m, "partner_id": p, "outcome": o, **v} for (m, p, o), v in rollups.items()],
        )
        minute = minute_of(until - WEEK)
        samples = []
        while minute <= until:
            for partner in ("", *partners):
                depth = 0 if not partner else chooser.randrange(0, 50)
                samples.append(
                    {
                        "minute": minute,
                        "partner_id": partner,
                        "queued": depth,
                        "retrying": 0,
                        "paused": 0,
                        "oldest_due_seconds": float(depth),
                        "sampled_at": minute,
                    }
                )
            minute += MINUTE
        conn.execute(insert(queue_minutes), samples)
        if pull_source:
            polls, at = [], until - WEEK
            while at <= until:
                polls.append(
                    {
                        "source_id": pull_source,
                        "started_at": at,
                        "finished_at": at + 1,
                        "ok": 1,
                        "rows_read": chooser.randrange(0, 500),
                        "events_produced": chooser.randrange(0, 50),
                    }
                )
                at += 10.0
            conn.execute(insert(poll_runs), polls)
            last: dict[str, Any] = polls[-1]
            conn.execute(
                insert(pollers).values(
                    source_id=pull_source,
                    next_poll_at=last["finished_at"] + 10,
                    last_poll_at=last["started_at"],
                    last_ok_at=last["finished_at"],
                    failures=0,
                    rows_read=last["rows_read"],
                    events_produced=last["events_produced"],
                    updated_at=last["finished_at"],
                )
            )
    return Seeded(rows, since, until, len(rollups))
