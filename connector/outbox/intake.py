"""Intake: accepted events and their planned deliveries, committed in one short transaction.

The consent rule (`consent.py`) applies here first: a new delivery older than a live one for
its contact is `superseded` at once; older pending ones for that contact lose to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connector.contract import InboundEvent, PlannedDelivery, State
from connector.outbox import consent
from connector.outbox.consent import Change
from connector.outbox.engine import dumps, now
from connector.outbox.tables import deliveries, events


@dataclass
class IngestResult:
    accepted: int
    duplicates: int


def _event_row(source_id: str, event: InboundEvent, received_at: float) -> dict:
    return {
        "source_id": source_id,
        "event_id": event.event_id,
        "type": event.type,
        "environment": event.environment,
        "email": event.email,
        "event_time": event.event_time.timestamp(),
        "received_at": received_at,
        "payload": dumps(event.payload),
    }


def ingest(
    engine,
    source_id: str,
    items: list[tuple[InboundEvent, list[tuple[str, PlannedDelivery]]]],
    due_delay: dict[str, float] | None = None,
    also=None,
) -> IngestResult:
    """Store events with their deliveries [(partner_id, planned)]; repeated event ids are
    duplicates. `due_delay` maps an action name to a gathering window (batching). `also(conn)`
    runs in the same transaction (a pull source's cursor moves with the events it read)."""
    received_at = now()
    due_delay = due_delay or {}
    seen: set[str] = set()
    unique = []
    for event, planned in items:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        unique.append((event, planned))

    rows = [_event_row(source_id, e, received_at) for e, _ in unique]
    with engine.begin() as conn:
        if also is not None:
            also(conn)
        if not rows:
            return IngestResult(0, 0)
        # ON CONFLICT DO NOTHING: an event id already stored (a retry by the sender, or a
        # concurrent request on PostgreSQL) is a duplicate, never an error.
        pk_by_event_id = {event_id: pk for pk, event_id in conn.execute(_insert_events(engine), rows)}
        fresh = [(e, p) for e, p in unique if e.event_id in pk_by_event_id]
        duplicates = len(items) - len(fresh)
        if not fresh:
            return IngestResult(0, duplicates)

        delivery_rows = []
        for event, planned in fresh:
            pk = pk_by_event_id[event.event_id]
            for partner_id, plan in planned:
                delivery_rows.append(
                    {
                        "event_pk": pk,
                        "partner_id": partner_id,
                        "action": plan.action,
                        "environment": event.environment,
                        "partner_key_id": plan.partner_key_id,
                        "contact_key": plan.contact_key,
                        "batch_key": plan.batch_key,
                        "event_time": event.event_time.timestamp(),
                        "spec": dumps(plan.spec),
                        "state": State.SKIPPED if plan.skip_reason else State.QUEUED,
                        "reason": plan.skip_reason,
                        "attempts": 0,
                        "next_attempt_at": None
                        if plan.skip_reason
                        else received_at + due_delay.get(plan.action, 0.0),
                        "created_at": received_at,
                        "updated_at": received_at,
                    }
                )
        _apply_consent_order(conn, delivery_rows, received_at)
        if delivery_rows:
            conn.execute(_INSERT_DELIVERIES, delivery_rows)
    return IngestResult(len(fresh), duplicates)


def _insert_events(engine):
    """One statement per dialect, built once so its compiled form is cached."""
    statement = _INSERT_EVENTS.get(engine.dialect.name)
    if statement is None:
        dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        statement = (
            dialect_insert(events)
            .on_conflict_do_nothing(index_elements=["source_id", "event_id"])
            .returning(events.c.id, events.c.event_id)
        )
        _INSERT_EVENTS[engine.dialect.name] = statement
    return statement


_INSERT_EVENTS: dict = {}


_INSERT_DELIVERIES = insert(deliveries)
#: Deliveries of this request get stamps after every stored id, in arrival order.
_ARRIVING = 2**62


def _apply_consent_order(conn, rows: list[dict], at: float) -> None:
    """The consent rule on a request's new deliveries: per contact only the newest stays
    queued, and then only if nothing stored is newer; older pending ones lose to it."""
    arriving = [
        Change(_ARRIVING + i, r["contact_key"], r["event_time"], State.QUEUED)
        for i, r in enumerate(rows)
        if r["contact_key"] and r["state"] == State.QUEUED
    ]
    if not arriving:
        return
    keys = {c.contact_key for c in arriving}
    consent.lock_contacts(conn, keys)
    stored = consent.live_changes(conn, keys)
    by_contact: dict[str, list[Change]] = {}
    for change in arriving:
        by_contact.setdefault(change.contact_key, []).append(change)
    stale: list[int] = []
    for key, changes in by_contact.items():
        others = stored.get(key, [])
        for change in changes:
            if consent.is_newest(change, others + changes):
                stale += consent.older_pending(change, others, at)
            else:
                row = rows[change.id - _ARRIVING]
                row.update(
                    state=State.SUPERSEDED,
                    next_attempt_at=None,
                    reason="a newer event for this contact is already queued or delivered",
                )
    consent.supersede(conn, stale, at, "a newer event for this contact arrived")
