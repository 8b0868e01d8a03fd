"""Replay: finished deliveries queued again, through the consent rule: one older than a live
change for its contact becomes superseded instead."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update

from connector.contract import FINISHED, State
from connector.outbox import consent, contacts
from connector.outbox.consent import Change
from connector.outbox.engine import now
from connector.outbox.storing import stored_event
from connector.outbox.tables import deliveries, events


def replay(
    engine,
    delivery_ids=None,
    dead: bool = False,
    partner: str | None = None,
    since: float | None = None,
    runtime=None,
) -> dict[str, int]:
    """Queue matching finished deliveries again. Explicit ids may be any finished state;
    otherwise `dead=True` selects dead ones (and skipped ones are never picked implicitly).
    With a runtime, a delivery skipped at intake (e.g. no staging key then) is planned anew
    with the current config. Returns counts: queued, superseded, unchanged."""
    conditions: list[ColumnElement[bool]] = []
    if delivery_ids:
        conditions.append(deliveries.c.id.in_(list(delivery_ids)))
        conditions.append(deliveries.c.state.in_(FINISHED))
    else:
        conditions.append(deliveries.c.state == State.DEAD if dead else deliveries.c.state.in_(()))
    if partner:
        conditions.append(deliveries.c.partner_id == partner)
    if since is not None:
        conditions.append(deliveries.c.updated_at >= since)
    counts = {"queued": 0, "superseded": 0, "unchanged": 0}
    at = now()
    with engine.begin() as conn:
        rows = list(
            conn.execute(
                select(deliveries).where(and_(*conditions)).order_by(deliveries.c.event_time, deliveries.c.id)
            )
        )
        for row in rows:
            values: dict[str, Any] = {"updated_at": at}
            if row.state == State.SKIPPED and row.attempts == 0 and runtime is not None:
                replanned = _replan(conn, runtime, row)
                if replanned is None or replanned.skip_reason:
                    counts["unchanged"] += 1
                    continue
                values.update(partner_key_id=replanned.partner_key_id, spec=json.dumps(replanned.spec))
            change = Change(row.id, row.contact_key, row.event_time, row.state)
            decision = consent.Decision(goes=change)
            if row.contact_key:
                stored = contacts.live_changes(conn, [row.contact_key]).get(row.contact_key, [])
                decision = consent.decide(stored, [change], at)
            if decision.goes is None:
                (refused,) = decision.superseded
                values.update(
                    state=State.SUPERSEDED,
                    superseded_by=refused.by,
                    reason=f"replay refused: {refused.reason}",
                )
                counts["superseded"] += 1
            else:
                if row.contact_key:
                    contacts.supersede(conn, list(decision.superseded), at)
                    contacts.remember(conn, [change], at)
                values.update(
                    state=State.QUEUED,
                    superseded_by=None,
                    reason="replayed",
                    attempts=0,
                    next_attempt_at=at,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                counts["queued"] += 1
            conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
    return counts


def _replan(conn, runtime, row):
    partner = runtime.config.partners.get(row.partner_id)
    event_row = conn.execute(select(events).where(events.c.id == row.event_pk)).first()
    if partner is None or event_row is None:
        return None
    event = stored_event(event_row)
    for planned in runtime.destination(partner).plan(event, partner):
        if planned.action == row.action:
            return planned
    return None
