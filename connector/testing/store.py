"""Reading the store, for tests and benchmarks: every table's rows as dicts (JSON columns
decoded), deliveries, attempts and breakers by event, and the figures benchmarks measure
(states, backlog, when requests were sent). Reading never writes: a test that needs accepted
events planned first says so with `after_planning(runtime)`, which does what a worker's first step does.
"""

from __future__ import annotations

import json

from sqlalchemy import func, select

from connector.contract import PENDING
from connector.outbox import intake
from connector.outbox.engine import make_engine
from connector.outbox.tables import attempts, breakers, deliveries, events


def rows(runtime, table) -> list[dict]:
    """Every row of `table` (breakers by scope, the rest by id), as dicts."""
    order = table.c.scope if table is breakers else table.c.id
    with runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(order))]


def after_planning(runtime):
    """Plan every accepted event as a worker does before it delivers (this writes: the
    deliveries it plans), and return `runtime`: `stored_deliveries(after_planning(runtime))`."""
    from connector.delivery.planner import Planner  # the worker's own planning step

    Planner(runtime).plan_all()
    return runtime


def stored_events(runtime) -> list[dict]:
    return rows(runtime, events)


def stored_deliveries(runtime) -> list[dict]:
    """Every delivery, its `spec` decoded."""
    found = rows(runtime, deliveries)
    for row in found:
        row["spec"] = json.loads(row["spec"])
    return found


def stored_delivery(runtime, delivery_id: int) -> dict:
    return next(d for d in stored_deliveries(runtime) if d["id"] == delivery_id)


def stored_attempts(runtime) -> list[dict]:
    """Every attempt, its recorded `request` and `response` decoded."""
    found = rows(runtime, attempts)
    for row in found:
        for name in ("request", "response"):
            row[name] = json.loads(row[name]) if row[name] else None
    return found


def stored_breakers(runtime) -> list[dict]:
    return rows(runtime, breakers)


class StoreReader:
    """The store of a connector running elsewhere (a Stack's processes), read by URL."""

    def __init__(self, database_url: str):
        self.engine = make_engine(database_url)

    def deliveries_for(self, event_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(deliveries)
                    .join(events, deliveries.c.event_pk == events.c.id)
                    .where(events.c.event_id == event_id)
                    .order_by(deliveries.c.id)
                )
            ]

    def delivery(self, event_id: str) -> dict:
        (row,) = self.deliveries_for(event_id)
        return row

    def attempts_for(self, delivery_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.id)
                )
            ]

    def breakers(self) -> dict[str, dict]:
        with self.engine.connect() as conn:
            return {r.scope: dict(r._mapping) for r in conn.execute(select(breakers))}

    def all_deliveries(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(deliveries))]

    # -- figures -----------------------------------------------------------------------------
    def delivery_states(self, action: str | None = None) -> dict[str, int]:
        """{state: number of deliveries}, of one action if given."""
        query = select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
        if action is not None:
            query = query.where(deliveries.c.action == action)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def pending(self) -> int:
        """What is still to settle: deliveries queued, retrying or paused, and accepted events
        no worker has planned yet."""
        with self.engine.connect() as conn:
            deliveries_pending = conn.execute(
                select(func.count()).select_from(deliveries).where(deliveries.c.state.in_(PENDING))
            ).scalar()
        return deliveries_pending + self.waiting_to_plan()

    def waiting_to_plan(self) -> int:
        """Accepted events no worker has planned yet."""
        return intake.waiting_count(self.engine)

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar()

    def attempt_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(attempts)).scalar()

    def request_times(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """When the workers' requests started, from the attempt log: one per distinct
        `started_at` (the attempts of one batch request share it)."""
        query = select(attempts.c.started_at).distinct().where(attempts.c.started_at >= since)
        if until != float("inf"):
            query = query.where(attempts.c.started_at <= until)
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def latest_due(self, action: str) -> float | None:
        """When the last still-queued delivery of `action` becomes due (None: none queued)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.max(deliveries.c.next_attempt_at)).where(
                    deliveries.c.action == action, deliveries.c.state.in_(PENDING)
                )
            ).scalar()

    def drain_span(self, action: str | None = None) -> tuple[float, float]:
        """(first attempt started, last delivery updated): the workers' busy span."""
        first = select(func.min(attempts.c.started_at))
        last = select(func.max(deliveries.c.updated_at))
        if action is not None:
            first = first.join_from(attempts, deliveries).where(deliveries.c.action == action)
            last = last.where(deliveries.c.action == action)
        with self.engine.connect() as conn:
            return conn.execute(first).scalar(), conn.execute(last).scalar()

    def close(self) -> None:
        self.engine.dispose()
