"""Helpers for outbox tests: claimed ids, one stored delivery, a breaker row put in place."""

from __future__ import annotations

from sqlalchemy import insert

from connector.outbox.engine import now
from connector.outbox.tables import breakers
from tests.store_rows import stored_deliveries


def ids(claimed) -> list[int]:
    return [c.id for c in claimed]


def by_id(runtime, delivery_id: int) -> dict:
    return next(d for d in stored_deliveries(runtime) if d["id"] == delivery_id)


def set_breaker(engine, scope, state: str, probe_at: float, opened: int = 1) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(breakers).values(
                scope=str(scope),
                state=state,
                reason="test",
                failures=1,
                opened=opened,
                probe_at=probe_at,
                updated_at=now(),
            )
        )
