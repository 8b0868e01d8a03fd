"""Retention: finished deliveries (and their attempts) past their keep time are deleted,
dead ones never before 7 days; then events left with no delivery."""

from __future__ import annotations

from sqlalchemy import delete, select

from connector.contract import FINISHED, State
from connector.outbox.engine import now
from connector.outbox.tables import attempts, deliveries, events


def purge(engine, retention: dict) -> dict[str, int]:
    """Delete finished deliveries (and their attempts) past retention; dead ones only after
    `retention.dead` (never under 7 days); then events left with no delivery."""
    at = now()
    done = [s for s in FINISHED if s != State.DEAD]
    expired = (deliveries.c.state.in_(done) & (deliveries.c.updated_at < at - retention["delivered"])) | (
        (deliveries.c.state == State.DEAD) & (deliveries.c.updated_at < at - retention["dead"])
    )
    with engine.begin() as conn:
        ids = list(conn.execute(select(deliveries.c.id).where(expired)).scalars())
        removed_attempts = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            removed_attempts += conn.execute(
                delete(attempts).where(attempts.c.delivery_id.in_(chunk))
            ).rowcount
            conn.execute(delete(deliveries).where(deliveries.c.id.in_(chunk)))
        orphan = select(deliveries.c.id).where(deliveries.c.event_pk == events.c.id).exists()
        removed_events = conn.execute(
            delete(events).where(~orphan, events.c.received_at < at - retention["delivered"])
        ).rowcount
    return {"deliveries": len(ids), "attempts": removed_attempts, "events": removed_events}
