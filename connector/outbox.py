"""Ingest: accepted events and their planned deliveries, committed in one short transaction.

Consent order starts here: a new delivery older than a live or delivered one for the same
contact is `superseded`; older pending ones for that contact are superseded by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connector.contract import InboundEvent, PlannedDelivery
from connector.queue import LOCK_CONTACTS
from connector.store import deliveries, dumps, events, now

LIVE = ("queued", "retrying", "paused", "delivered")


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


def ingest(engine, source_id: str, items: list[tuple[InboundEvent, list[tuple[str, PlannedDelivery]]]],
           due_delay: dict[str, float] | None = None) -> IngestResult:
    """Store events with their deliveries [(partner_id, planned)]; repeated event ids are
    duplicates. `due_delay` maps an action name to a gathering window (batching)."""
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
        # ON CONFLICT DO NOTHING: an event id already stored (a retry by the sender, or a
        # concurrent request on PostgreSQL) is a duplicate, never an error.
        pk_by_event_id = {event_id: pk for pk, event_id in
                          conn.execute(_insert_events(engine), rows)}
        fresh = [(e, p) for e, p in unique if e.event_id in pk_by_event_id]
        duplicates = len(items) - len(fresh)
        if not fresh:
            return IngestResult(0, duplicates)

        delivery_rows = []
        for event, planned in fresh:
            pk = pk_by_event_id[event.event_id]
            for partner_id, plan in planned:
                delivery_rows.append({
                    "event_pk": pk,
                    "partner_id": partner_id,
                    "action": plan.action,
                    "environment": event.environment,
                    "partner_key_id": plan.partner_key_id,
                    "contact_key": plan.contact_key,
                    "batch_key": plan.batch_key,
                    "event_time": event.event_time.timestamp(),
                    "spec": dumps(plan.spec),
                    "state": "skipped" if plan.skip_reason else "queued",
                    "reason": plan.skip_reason,
                    "attempts": 0,
                    "next_attempt_at": None if plan.skip_reason
                    else received_at + due_delay.get(plan.action, 0.0),
                    "created_at": received_at,
                    "updated_at": received_at,
                })
        _apply_consent_order(conn, delivery_rows, received_at)
        if delivery_rows:
            conn.execute(_INSERT_DELIVERIES, delivery_rows)
    return IngestResult(len(fresh), duplicates)


def _insert_events(engine):
    """One statement per dialect, built once so its compiled form is cached."""
    statement = _INSERT_EVENTS.get(engine.dialect.name)
    if statement is None:
        dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        statement = (dialect_insert(events)
                     .on_conflict_do_nothing(index_elements=["source_id", "event_id"])
                     .returning(events.c.id, events.c.event_id))
        _INSERT_EVENTS[engine.dialect.name] = statement
    return statement


_INSERT_EVENTS: dict = {}


# Built once: statements are compiled and cached, the hot path only binds values.
_LIVE_FOR_CONTACTS = (
    select(deliveries.c.id, deliveries.c.contact_key, deliveries.c.event_time,
           deliveries.c.state, deliveries.c.lease_expires_at)
    .where(deliveries.c.contact_key.in_(bindparam("keys", expanding=True)),
           deliveries.c.state.in_(LIVE))
)
_INSERT_DELIVERIES = insert(deliveries)


def _apply_consent_order(conn, rows: list[dict], at: float) -> None:
    """Newest event_time wins per contact_key; on a tie the later arrival wins."""
    ordered = [r for r in rows if r["contact_key"] and r["state"] == "queued"]
    if not ordered:
        return
    keys = sorted({r["contact_key"] for r in ordered})
    if conn.dialect.name == "postgresql":
        # Intake and claims of one contact take turns (see queue._lock_for_claim); sorted
        # order, so two intakes never deadlock.
        conn.execute(LOCK_CONTACTS, {"keys": keys})
    newest_stored: dict[str, float] = {}
    older_pending: list[tuple[int, str, float]] = []
    for start in range(0, len(keys), 500):
        for row in conn.execute(_LIVE_FOR_CONTACTS, {"keys": keys[start:start + 500]}):
            newest_stored[row.contact_key] = max(newest_stored.get(row.contact_key, float("-inf")),
                                                 row.event_time)
            leased = row.lease_expires_at is not None and row.lease_expires_at >= at
            if row.state != "delivered" and not leased:
                older_pending.append((row.id, row.contact_key, row.event_time))

    # Within the request: only the newest per contact stays queued.
    newest_new: dict[str, dict] = {}
    for row in ordered:
        current = newest_new.get(row["contact_key"])
        if current is None or row["event_time"] >= current["event_time"]:
            if current is not None:
                _supersede_row(current)
            newest_new[row["contact_key"]] = row
        else:
            _supersede_row(row)

    stale_ids = []
    for key, row in newest_new.items():
        if row["event_time"] < newest_stored.get(key, float("-inf")):
            _supersede_row(row)
    for delivery_id, key, event_time in older_pending:
        row = newest_new.get(key)
        if row is not None and row["state"] == "queued" and event_time <= row["event_time"]:
            stale_ids.append(delivery_id)
    for start in range(0, len(stale_ids), 500):
        conn.execute(
            update(deliveries)
            .where(and_(deliveries.c.id.in_(stale_ids[start:start + 500]),
                        deliveries.c.state.in_(("queued", "retrying", "paused")),
                        or_(deliveries.c.lease_expires_at.is_(None),
                            deliveries.c.lease_expires_at < at)))
            .values(state="superseded", reason="a newer event for this contact arrived",
                    next_attempt_at=None, updated_at=at)
        )


def _supersede_row(row: dict) -> None:
    row["state"] = "superseded"
    row["reason"] = "a newer event for this contact is already queued or delivered"
    row["next_attempt_at"] = None
