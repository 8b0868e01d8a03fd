"""Intake: accepted events and their planned deliveries.

A webhook request commits its events with `accept`: one row each in `seen_events` (the id
that makes a repeat a duplicate, with the event beside it) in one short transaction, and
nothing else: no delivery, no consent order, nothing the worker can do later. A worker's
`plan_accepted` then plans them in batches: it stores each event in `events` with its
deliveries and clears it from its `seen_events` row, in one transaction. Pull sources, which
run in the worker anyway, store and plan at once with `ingest`.

The consent rule (`consent.py`) applies when deliveries are stored: a new delivery older than a
live one for its contact (or than its mark) is `superseded` at once; older pending ones for
that contact lose to it, and the one left queued becomes the contact's mark.

An event id is a duplicate while its event is stored, and after its purge for as long as
`seen_events` remembers it (the replay window). A request's replay key (see
`contract.ReplayGuard`) is recorded in the same transaction, so of two requests carrying one
key exactly one is stored, whichever web process takes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, null, select, update

from connector.contract import InboundEvent, PlannedDelivery, State, Unauthorized
from connector.fields import has_control_characters
from connector.outbox import consent, rollups
from connector.outbox.consent import Change
from connector.outbox.engine import dialect_insert, dumps, now, reading
from connector.outbox.statements import Prepared, insert_new_rows, insert_rows, stored_keys, writing
from connector.outbox.tables import deliveries, events, replay_keys, seen_events
from connector.records import ReplayGuard

#: source_id, event → [(partner_id, planned)], or None to leave the event waiting.
Planning = Callable[[str, InboundEvent], "list[tuple[str, PlannedDelivery]] | None"]


@dataclass
class IngestResult:
    accepted: int
    duplicates: int


def _event_row(source_id: str, event: InboundEvent, received_at: float) -> dict:
    # An address holding a control character is no one's (and PostgreSQL cannot store U+0000
    # in a text column): the event is stored without one; its payload keeps what was sent.
    email = event.email if event.email and not has_control_characters(event.email) else None
    return {
        "source_id": source_id,
        "event_id": event.event_id,
        "type": event.type,
        "environment": event.environment,
        "email": email,
        "event_time": event.event_time.timestamp(),
        "received_at": received_at,
        "payload": dumps(event.payload),
        "warnings": dumps(event.warnings) if event.warnings else None,
        "phone": event.phone,
    }


def stored_event(row) -> InboundEvent:
    """The event a row of `events` or a waiting row of `seen_events` holds (`_event_row`'s
    columns), as a source gave it."""
    return InboundEvent(
        row.event_id,
        row.type,
        datetime.fromtimestamp(row.event_time, UTC),
        row.environment,
        row.email,
        json.loads(row.payload),
        tuple(json.loads(row.warnings)) if row.warnings else (),
        row.phone,
    )


def accept(
    engine, source_id: str, accepted: list[InboundEvent], replay: ReplayGuard | None = None
) -> IngestResult:
    """Commit a request's events for a worker to plan (`plan_accepted`): one `seen_events` row
    each, in one transaction; an id seen before is a duplicate. Raises Unauthorized, storing
    nothing, when `replay`'s key was used already."""
    received_at = now()
    unique: dict[str, InboundEvent] = {}
    for event in accepted:
        unique.setdefault(event.event_id, event)
    # A microsecond apart in the order sent: planning goes by arrival, and of two changes for
    # one contact at one event time the later arrival wins.
    rows = [_event_row(source_id, event, received_at + i * 1e-6) for i, event in enumerate(unique.values())]
    with writing(engine) as conn:
        if replay is not None:
            _use_once(conn, source_id, replay, received_at)
        stored = len(_ACCEPT.rows(conn, rows))
    return IngestResult(stored, len(accepted) - stored)


def waiting_keys(engine, limit: int) -> list[tuple[str, str]]:
    """(source_id, event_id) of the oldest accepted events waiting to be planned (a read that
    holds no writer up)."""
    with reading(engine) as conn:
        query = select(seen_events.c.source_id, seen_events.c.event_id).where(_WAITING_NOW)
        return [tuple(row) for row in conn.execute(query.order_by(seen_events.c.received_at).limit(limit))]


def oldest_waiting(engine) -> float | None:
    """When the oldest accepted event still waiting to be planned arrived (None: none waits)."""
    with reading(engine) as conn:
        return conn.execute(select(func.min(seen_events.c.received_at)).where(_WAITING_NOW)).scalar()


def waiting_count(engine) -> int:
    """How many accepted events wait for a worker to plan them."""
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(seen_events).where(_WAITING_NOW)).scalar()


def plan_accepted(
    engine,
    plan: Planning,
    due_delay: dict[str, float] | None = None,
    limit: int = 500,
    only: tuple[str, str] | None = None,
) -> int:
    """Plan up to `limit` accepted events, oldest first, in one transaction: each is stored in
    `events` with its deliveries (the consent rule applied), and its `seen_events` row keeps
    only the id. `plan(source_id, event)` gives [(partner_id, planned)], or None to leave the
    event waiting (its planning failed; the caller says when to try again). Returns how many
    events left the wait. An event whose id is stored already (its seen id was purged while
    the event was kept) is a duplicate: it leaves the wait with nothing stored. `only`, a
    (source_id, event_id), plans that one event if it waits."""
    if not waiting_keys(engine, 1):
        return 0
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        query = select(seen_events).where(_WAITING_NOW).order_by(seen_events.c.received_at).limit(limit)
        if only is not None:
            query = query.where(seen_events.c.source_id == only[0], seen_events.c.event_id == only[1])
        if postgres:
            # One planner at a time, as SQLite's single writer is: batches are planned in the
            # order events arrived, so of two changes at one event time the later arrival
            # still gets the later stamp. Another worker planning now is not waited for.
            if not conn.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({PLANNING_LOCK})").scalar():
                return 0
            consent.indexes_only(conn)
            query = query.with_for_update()
        items, done = [], []
        for row in conn.execute(query):
            event = stored_event(row)
            planned = plan(row.source_id, event)
            if planned is not None:
                items.append((row.source_id, event, planned, row.received_at))
                done.append({"key_source": row.source_id, "key_event": row.event_id})
        if done:
            at = now()
            _store(conn, _rows(items, at, due_delay or {}), at)
            _PLANNED.many(conn, done)
    return len(done)


def ingest(
    engine,
    source_id: str,
    items: list[tuple[InboundEvent, list[tuple[str, PlannedDelivery]]]],
    due_delay: dict[str, float] | None = None,
    also=None,
) -> IngestResult:
    """Store events with their deliveries [(partner_id, planned)] at once (pull sources, which
    run in the worker); repeated event ids are duplicates. `due_delay` maps an action name to
    a gathering window (batching). `also(conn)` runs in the same transaction (a pull source's
    cursor moves with the events it read)."""
    received_at = now()
    seen: set[str] = set()
    unique = []
    for event, planned in items:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        unique.append((source_id, event, planned, received_at))
    # Rows built before the write transaction: it holds the store's one writer (SQLite).
    prepared = _rows(unique, received_at, due_delay or {})
    with engine.begin() as conn:
        if also is not None:
            also(conn)
        if not unique:
            return IngestResult(0, 0)
        # An event id seen before (a retry by the sender, a captured request sent again, or a
        # concurrent request on PostgreSQL) is a duplicate, never an error. Its event may be
        # purged since: the seen id still counts.
        ids = [
            {"source_id": source_id, "event_id": event.event_id, "received_at": received_at}
            for _, event, _, _ in unique
        ]
        first_seen = _remember_ids(conn, source_id, ids)
        stored = _store(conn, [item for item in prepared if item[0]["event_id"] in first_seen], received_at)
    return IngestResult(stored, len(items) - stored)


def _remember_ids(conn, source_id: str, rows: list[dict]) -> set[str]:
    """Those of the (distinct) event ids of `rows` no event of the source had before, now
    remembered in `seen_events`."""
    if conn.dialect.name != "sqlite":
        return {event_id for (event_id,) in _INSERT_NEW_SEEN_IDS.rows(conn, rows)}
    # SQLite: this transaction is the only writer, so an id not stored now is new.
    seen = stored_keys(conn, seen_events, source_id, [row["event_id"] for row in rows])
    new = [row for row in rows if row["event_id"] not in seen]
    insert_rows(conn, seen_events, new, ids=False)
    return {row["event_id"] for row in new}


def _rows(items: list[tuple[str, InboundEvent, list, float]], at: float, due_delay: dict) -> list[tuple]:
    """(event row, its delivery rows without their event's id) for each of
    [(source_id, event, planned, received_at)]."""
    prepared = []
    for source_id, event, planned, received_at in items:
        event_row = _event_row(source_id, event, received_at)
        delivery_rows = []
        for partner_id, plan in planned:
            # Due when planned, or at the end of its action's gathering window (batching).
            delay = due_delay.get(plan.action, 0.0)
            delivery_rows.append(
                {
                    "partner_id": partner_id,
                    "action": plan.action,
                    "environment": event.environment,
                    "partner_key_id": plan.partner_key_id,
                    "contact_key": plan.contact_key,
                    "batch_key": plan.batch_key,
                    "event_time": event_row["event_time"],
                    # A spec that is the event's payload (forwarded as it is) is written once.
                    "spec": event_row["payload"] if plan.spec is event.payload else dumps(plan.spec),
                    "state": State.SKIPPED if plan.skip_reason else State.QUEUED,
                    "reason": plan.skip_reason,
                    "attempts": 0,
                    "next_attempt_at": None if plan.skip_reason else received_at + delay if delay else at,
                    "created_at": at,
                    "updated_at": at,
                    "superseded_by": None,
                }
            )
        prepared.append((event_row, delivery_rows))
    return prepared


def _store(conn, prepared: list[tuple[dict, list[dict]]], at: float) -> int:
    """Store events with their deliveries (`_rows`) unless an event is stored already;
    returns how many were stored."""
    pks = {
        (source, event_id): pk
        for pk, source, event_id in insert_new_rows(
            conn,
            events,
            [event_row for event_row, _ in prepared],
            ("source_id", "event_id"),
            [events.c.id, events.c.source_id, events.c.event_id],
        )
    }
    delivery_rows = []
    for event_row, planned in prepared:
        pk = pks.get((event_row["source_id"], event_row["event_id"]))
        if pk is not None:
            for row in planned:
                row["event_pk"] = pk
            delivery_rows += planned
    if not delivery_rows:
        return len(pks)
    lost, beaten_by_arrival = _apply_consent_order(conn, delivery_rows, at)
    decided = rollups.Tally()  # skipped or superseded on arrival: charted like any outcome
    for row in delivery_rows:
        if row["state"] != State.QUEUED:
            decided.outcome(at, row["partner_id"], row["state"])
    rollups.add(conn, decided)
    changes = [
        i for i, row in enumerate(delivery_rows) if row["contact_key"] and row["state"] == State.QUEUED
    ]
    ids = insert_rows(conn, deliveries, delivery_rows, ids=bool(changes or lost or beaten_by_arrival))
    # Only now do the winners among the arriving rows have ids to be named by.
    for winner, losers in lost.items():
        consent.supersede(conn, losers, at, "a newer event for this contact arrived", by=ids[winner])
    if beaten_by_arrival:
        conn.execute(
            _NAME_WINNER,
            [{"loser": ids[loser], "winner": ids[winner]} for loser, winner in beaten_by_arrival.items()],
        )
    consent.remember(
        conn,
        [
            Change(ids[i], delivery_rows[i]["contact_key"], delivery_rows[i]["event_time"], State.QUEUED)
            for i in changes
        ],
        at,
    )
    return len(pks)


def _use_once(conn, source_id: str, guard: ReplayGuard, at: float) -> None:
    """Record the key, or refuse the request if it is recorded and not expired yet."""
    used = _USE_REPLAY_KEY.rows(
        conn, [{"source_id": source_id, "replay_key": guard.key, "expires_at": guard.expires_at, "at": at}]
    )
    if not used:
        raise Unauthorized(guard.refusal)


def _accept(dialect: str):
    return (
        dialect_insert(dialect)(seen_events)
        .values({name: bindparam(name) for name in _EVENT_COLUMNS})
        .on_conflict_do_nothing(index_elements=["source_id", "event_id"])
        .returning(seen_events.c.event_id)
    )


def _insert_new_seen_ids(dialect: str):
    return (
        dialect_insert(dialect)(seen_events)
        .values({name: bindparam(name) for name in ("source_id", "event_id", "received_at")})
        .on_conflict_do_nothing(index_elements=["source_id", "event_id"])
        .returning(seen_events.c.event_id)
    )


def _use_replay_key(dialect: str):
    """Inserts the key, or takes over an expired row of it; returns nothing if it is in use."""
    new = dialect_insert(dialect)(replay_keys).values(
        source_id=bindparam("source_id"),
        replay_key=bindparam("replay_key"),
        expires_at=bindparam("expires_at"),
    )
    return new.on_conflict_do_update(
        index_elements=["source_id", "replay_key"],
        set_={"expires_at": new.excluded.expires_at},
        where=replay_keys.c.expires_at < bindparam("at"),
    ).returning(replay_keys.c.replay_key)


_EVENT_COLUMNS = tuple(column.name for column in events.c if not column.primary_key)  # _event_row's
_ACCEPT = Prepared(_accept)
#: The PostgreSQL advisory lock a planning transaction holds ("plan").
PLANNING_LOCK = 0x706C616E
_WAITING_NOW = seen_events.c.payload.is_not(None)  # ix_seen_events_waiting
#: A planned event's row keeps its id and time of arrival only.
_PLANNED = Prepared(
    lambda _: (
        update(seen_events)
        .where(
            seen_events.c.source_id == bindparam("key_source"),
            seen_events.c.event_id == bindparam("key_event"),
        )
        .values(
            type=null(),
            environment=null(),
            email=null(),
            event_time=null(),
            payload=null(),
            warnings=null(),
            phone=null(),
        )
    )
)
_INSERT_NEW_SEEN_IDS = Prepared(_insert_new_seen_ids)
_USE_REPLAY_KEY = Prepared(_use_replay_key)
_NAME_WINNER = (
    update(deliveries).where(deliveries.c.id == bindparam("loser")).values(superseded_by=bindparam("winner"))
)
#: Deliveries of this request get stamps after every stored id, in arrival order.
_ARRIVING = 2**62


def _apply_consent_order(conn, rows: list[dict], at: float) -> tuple[dict[int, list[int]], dict[int, int]]:
    """The consent rule on a request's new deliveries: per contact only the newest stays
    queued, and then only if nothing stored is newer; older pending ones lose to it. Returns
    what waits for the rows' ids: the stored pending deliveries each arriving row beats
    ({row index: [delivery ids]}), and the rows beaten by another arriving row ({row index:
    winner's row index})."""
    arriving = [
        Change(_ARRIVING + i, r["contact_key"], r["event_time"], State.QUEUED)
        for i, r in enumerate(rows)
        if r["contact_key"] and r["state"] == State.QUEUED
    ]
    lost: dict[int, list[int]] = {}
    beaten_by_arrival: dict[int, int] = {}
    if not arriving:
        return lost, beaten_by_arrival
    keys = {c.contact_key for c in arriving}
    consent.indexes_only(conn)
    consent.lock_contacts(conn, keys)
    stored = consent.live_changes(conn, keys)
    by_contact: dict[str, list[Change]] = {}
    for change in arriving:
        by_contact.setdefault(change.contact_key, []).append(change)
    for key, changes in by_contact.items():
        others = stored.get(key, [])
        for change in changes:
            newer = consent.newer_than(change, others + changes)
            if newer is None:
                stale = consent.older_pending(change, others, at)
                if stale:
                    lost[change.id - _ARRIVING] = stale
                continue
            row = rows[change.id - _ARRIVING]
            row.update(
                state=State.SUPERSEDED,
                next_attempt_at=None,
                reason=consent.superseded_because(
                    newer, "a newer event for this contact is already queued or delivered"
                ),
            )
            if newer.id >= _ARRIVING:
                beaten_by_arrival[change.id - _ARRIVING] = newer.id - _ARRIVING
            else:
                row["superseded_by"] = newer.id
    return lost, beaten_by_arrival
