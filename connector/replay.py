"""Replay (send again) and purge (retention). A replay passes through the consent-order rule:
a delivery older than a newer live or delivered one for its contact becomes superseded."""

from __future__ import annotations

import json

from sqlalchemy import and_, delete, select, update

from connector.contract import InboundEvent
from connector.store import FINISHED, attempts, deliveries, events, now

REPLAYABLE = ("dead", "skipped", "superseded", "delivered")
LIVE = ("queued", "retrying", "paused", "delivered")


def replay(engine, delivery_ids=None, dead: bool = False, partner: str | None = None,
           since: float | None = None, runtime=None) -> dict[str, int]:
    """Queue matching finished deliveries again. Explicit ids may be any finished state;
    otherwise `dead=True` selects dead ones (and skipped ones are never picked implicitly).
    With a runtime, a delivery skipped at intake (e.g. no staging key then) is planned anew
    with the current config. Returns counts: queued, superseded, unchanged."""
    conditions = []
    if delivery_ids:
        conditions.append(deliveries.c.id.in_(list(delivery_ids)))
        conditions.append(deliveries.c.state.in_(REPLAYABLE))
    else:
        conditions.append(deliveries.c.state == "dead" if dead else deliveries.c.state.in_(()))
    if partner:
        conditions.append(deliveries.c.partner_id == partner)
    if since is not None:
        conditions.append(deliveries.c.updated_at >= since)
    counts = {"queued": 0, "superseded": 0, "unchanged": 0}
    at = now()
    with engine.begin() as conn:
        rows = list(conn.execute(select(deliveries).where(and_(*conditions))
                                 .order_by(deliveries.c.event_time, deliveries.c.id)))
        for row in rows:
            values = {"updated_at": at}
            if row.state == "skipped" and row.attempts == 0 and runtime is not None:
                replanned = _replan(conn, runtime, row)
                if replanned is None or replanned.skip_reason:
                    counts["unchanged"] += 1
                    continue
                values.update(partner_key_id=replanned.partner_key_id,
                              spec=json.dumps(replanned.spec))
            newer = conn.execute(select(deliveries.c.id).where(
                deliveries.c.contact_key == row.contact_key, deliveries.c.id != row.id,
                deliveries.c.state.in_(LIVE),
                (deliveries.c.event_time > row.event_time)
                | and_(deliveries.c.event_time == row.event_time, deliveries.c.id > row.id),
            ).limit(1)).first() if row.contact_key else None
            if newer is not None:
                values.update(state="superseded",
                              reason="replay refused: a newer event for this contact exists")
                counts["superseded"] += 1
            else:
                values.update(state="queued", reason="replayed", attempts=0, next_attempt_at=at,
                              lease_owner=None, lease_expires_at=None)
                counts["queued"] += 1
            conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
    return counts


def _replan(conn, runtime, row):
    partner = runtime.config.partners.get(row.partner_id)
    event_row = conn.execute(select(events).where(events.c.id == row.event_pk)).first()
    if partner is None or event_row is None:
        return None
    from datetime import UTC, datetime

    event = InboundEvent(event_row.event_id, event_row.type,
                         datetime.fromtimestamp(event_row.event_time, UTC),
                         event_row.environment, event_row.email, json.loads(event_row.payload))
    for planned in runtime.destination(partner).plan(event, partner):
        if planned.action == row.action:
            return planned
    return None


def purge(engine, retention: dict) -> dict[str, int]:
    """Delete finished deliveries (and their attempts) past retention; dead ones only after
    `retention.dead` (never under 7 days); then events left with no delivery."""
    at = now()
    done = [s for s in FINISHED if s != "dead"]
    expired = ((deliveries.c.state.in_(done) & (deliveries.c.updated_at < at - retention["delivered"]))
               | ((deliveries.c.state == "dead") & (deliveries.c.updated_at < at - retention["dead"])))
    with engine.begin() as conn:
        ids = list(conn.execute(select(deliveries.c.id).where(expired)).scalars())
        removed_attempts = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            removed_attempts += conn.execute(
                delete(attempts).where(attempts.c.delivery_id.in_(chunk))).rowcount
            conn.execute(delete(deliveries).where(deliveries.c.id.in_(chunk)))
        orphan = select(deliveries.c.id).where(deliveries.c.event_pk == events.c.id).exists()
        removed_events = conn.execute(delete(events).where(
            ~orphan, events.c.received_at < at - retention["delivered"])).rowcount
    return {"deliveries": len(ids), "attempts": removed_attempts, "events": removed_events}
