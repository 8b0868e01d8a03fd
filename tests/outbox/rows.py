"""Helpers for outbox tests: claimed ids, a breaker row put in place (reading the store is
connector.testing.store's)."""

from __future__ import annotations

from sqlalchemy import insert

from connector.outbox.engine import now
from connector.outbox.tables import breakers


def ids(claimed) -> list[int]:
    return [c.id for c in claimed]


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
