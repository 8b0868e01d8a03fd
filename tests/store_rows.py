"""Reading the store's tables in tests, so assertions check what was committed. Events and
deliveries are read after a worker's planning step (webhooks commit accepted events, a worker
plans them): what a worker would have made of the accepted events by now."""

from __future__ import annotations

import json

from sqlalchemy import select

from connector.delivery.planner import Planner
from connector.outbox.tables import attempts, breakers, deliveries, events


def rows(runtime, table) -> list[dict]:
    order = table.c.scope if table is breakers else table.c.id
    with runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(order))]


def stored_events(runtime) -> list[dict]:
    Planner(runtime).plan_all()
    return rows(runtime, events)


def stored_deliveries(runtime) -> list[dict]:
    Planner(runtime).plan_all()
    found = rows(runtime, deliveries)
    for row in found:
        row["spec"] = json.loads(row["spec"])
    return found


def stored_attempts(runtime) -> list[dict]:
    found = rows(runtime, attempts)
    for row in found:
        for name in ("request", "response"):
            row[name] = json.loads(row[name]) if row[name] else None
    return found


def stored_breakers(runtime) -> list[dict]:
    return rows(runtime, breakers)
