"""Retention: finished deliveries (and their attempts) past their keep time are deleted,
dead ones never before 7 days; then events left with no delivery, and events that planned
none (an event no mapping matched) after a day.

What outlives a purge: every contact's consent mark, for good (an event older than what the
contact said last never changes the partner), and each source's accepted event ids for the
replay window (the same id sent again is a duplicate). Replay keys go once expired."""

from __future__ import annotations

from sqlalchemy import delete, select

from connector.contract import FINISHED, State
from connector.outbox.engine import now
from connector.outbox.tables import attempts, deliveries, events, replay_keys, seen_events

#: How long accepted event ids are remembered unless `retention.replay_window` says otherwise.
REPLAY_WINDOW = 30 * 86400.0
#: How long an event that planned no delivery stays visible (at most `retention.delivered`).
UNPLANNED_KEEP = 86400.0


def purge(engine, retention: dict) -> dict[str, int]:
    """Delete finished deliveries (and their attempts) past retention; dead ones only after
    `retention.dead` (never under 7 days); then events left with no delivery; then event ids
    past the replay window and expired replay keys."""
    at = now()
    done = [s for s in FINISHED if s != State.DEAD]
    expired = (deliveries.c.state.in_(done) & (deliveries.c.updated_at < at - retention["delivered"])) | (
        (deliveries.c.state == State.DEAD) & (deliveries.c.updated_at < at - retention["dead"])
    )
    unplanned_keep = min(UNPLANNED_KEEP, retention["delivered"])
    window = retention.get("replay_window", REPLAY_WINDOW)
    with engine.begin() as conn:
        ids = list(conn.execute(select(deliveries.c.id).where(expired)).scalars())
        removed_attempts = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            removed_attempts += conn.execute(
                delete(attempts).where(attempts.c.delivery_id.in_(chunk))
            ).rowcount
            conn.execute(delete(deliveries).where(deliveries.c.id.in_(chunk)))
        # An event's deliveries are stored with it, so one with none left either had them
        # purged just now or earlier (received before `delivered` ago) or never planned any.
        orphan = select(deliveries.c.id).where(deliveries.c.event_pk == events.c.id).exists()
        removed_events = conn.execute(
            delete(events).where(~orphan, events.c.received_at < at - unplanned_keep)
        ).rowcount
        conn.execute(delete(seen_events).where(seen_events.c.received_at < at - window))
        conn.execute(delete(replay_keys).where(replay_keys.c.expires_at < at))
    return {"deliveries": len(ids), "attempts": removed_attempts, "events": removed_events}
