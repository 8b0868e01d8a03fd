"""Intake: accepted events and their planned deliveries.

A webhook request commits its events with `accept`: one row each in `seen_events` (the id
that makes a repeat a duplicate, with the event beside it) in one short transaction, and
nothing else: no delivery, no consent order, nothing the worker can do later. A worker's
`plan_accepted` then plans them in batches: it stores each event in `events` with its
deliveries and clears it from its `seen_events` row, in one transaction. Pull sources, which
run in the worker anyway, store and plan at once with `ingest`.

Storing an event with its deliveries (and the consent rule on what arrives) is `storing.py`'s.

An event id is a duplicate while its event is stored, and after its purge for as long as
`seen_events` remembers it (the replay window). A webhook's event has its `seen_events` row
from the start; a pull source's event gets one when it is purged (`retention.py`): until then
the event's own row is the one that makes a repeat a duplicate, one row fewer per event.

A request's replay key (see `contract.ReplayGuard`) is recorded in the same transaction, so
of two requests carrying one key exactly one is stored, whichever web process takes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, null, select, update

from connector.contract import Delivery, InboundEvent, PlannedDelivery, Unauthorized
from connector.outbox import postgresql, storing
from connector.outbox.engine import dialect_insert, now, reading
from connector.outbox.statements import Prepared, stored_keys, writing
from connector.outbox.tables import events, replay_keys, seen_events
from connector.records import ReplayGuard

#: source_id, event → [(partner_id, planned)], or None to leave the event waiting.
Planning = Callable[[str, InboundEvent], "list[tuple[str, PlannedDelivery]] | None"]


@dataclass
class IngestResult:
    accepted: int
    duplicates: int
    leased: list[Delivery] = field(default_factory=list, repr=False)  # taken by the worker that stored them


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
    rows = [
        storing.event_row(source_id, event, received_at + i * 1e-6) for i, event in enumerate(unique.values())
    ]
    with writing(engine) as conn:
        if replay is not None:
            _use_once(conn, source_id, replay, received_at)
        stored = len(_ACCEPT.rows(conn, rows))
    return IngestResult(stored, len(accepted) - stored)


def waiting_keys(engine, limit: int) -> list[tuple[str, str]]:
    """(source_id, event_id) of the oldest accepted events waiting to be planned (a read that
    holds no writer up)."""
    with reading(engine) as conn:
        return [tuple(row) for row in conn.execute(_OLDEST_WAITING_KEYS, {"n": limit})]


def oldest_waiting(engine) -> float | None:
    """When the oldest accepted event still waiting to be planned arrived (None: none waits)."""
    with reading(engine) as conn:
        return conn.execute(_OLDEST_WAITING_AT).scalar()


def waiting_count(engine) -> int:
    """How many accepted events wait for a worker to plan them."""
    with reading(engine) as conn:
        return conn.execute(_WAITING_COUNT).scalar()


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
    # PostgreSQL: locked until the commit (besides the planning lock).
    reads = _WAITING_LOCKED if engine.dialect.name == "postgresql" else _WAITING
    with engine.begin() as conn:
        if not postgresql.try_planning_lock(conn):  # another worker plans now
            return 0
        postgresql.indexes_only(conn)
        if only is None:
            query = conn.execute(reads["oldest"], {"n": limit})
        else:
            query = conn.execute(reads["one"], {"n": limit, "source_id": only[0], "event_id": only[1]})
        items, done = [], []
        for row in query:
            event = storing.stored_event(row)
            planned = plan(row.source_id, event)
            if planned is not None:
                items.append((row.source_id, event, planned, row.received_at, row.payload))
                done.append({"key_source": row.source_id, "key_event": row.event_id})
        if done:
            at = now()
            storing.store(conn, storing.rows(items, at, due_delay or {}), at)
            _PLANNED.many(conn, done)
    return len(done)


def ingest(
    engine,
    source_id: str,
    items: list[tuple[InboundEvent, list[tuple[str, PlannedDelivery]]]],
    due_delay: dict[str, float] | None = None,
    also=None,
    lease: storing.Lease | None = None,
) -> IngestResult:
    """Store events with their deliveries [(partner_id, planned)] at once (pull sources, which
    run in the worker); repeated event ids are duplicates. `due_delay` maps an action name to
    a gathering window (batching). `also(conn)` runs in the same transaction (a pull source's
    cursor moves with the events it read). The deliveries `lease` takes come back leased."""
    received_at = now()
    seen: set[str] = set()
    unique = []
    for event, planned in items:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        unique.append((source_id, event, planned, received_at, None))
    # Rows built before the write transaction: it holds the store's one writer (SQLite).
    prepared = storing.rows(unique, received_at, due_delay or {}, lease)
    with engine.begin() as conn:
        if also is not None:
            also(conn)
        if not unique:
            return IngestResult(0, 0)
        # An event id seen before (a retry by the sender, a captured request sent again, or a
        # concurrent request on PostgreSQL) is a duplicate, never an error: its event is
        # stored (the events' own key refuses it again), or purged and its id remembered.
        stored, leased = storing.store(
            conn, prepared, received_at, lambda conn, ids: stored_keys(conn, seen_events, source_id, ids)
        )
    return IngestResult(stored, len(items) - stored, leased)


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


_EVENT_COLUMNS = tuple(column.name for column in events.c if not column.primary_key)  # event_row's
_ACCEPT = Prepared(_accept)
_WAITING_NOW = seen_events.c.payload.is_not(None)  # ix_seen_events_waiting
_IN_ARRIVAL_ORDER = seen_events.c.received_at
_OLDEST_WAITING_KEYS = (
    select(seen_events.c.source_id, seen_events.c.event_id)
    .where(_WAITING_NOW)
    .order_by(_IN_ARRIVAL_ORDER)
    .limit(bindparam("n"))
)
_OLDEST_WAITING_AT = select(func.min(seen_events.c.received_at)).where(_WAITING_NOW)
_WAITING_COUNT = select(func.count()).select_from(seen_events).where(_WAITING_NOW)
#: What planning reads: the oldest events waiting, or one of them.
_OLDEST = select(seen_events).where(_WAITING_NOW).order_by(_IN_ARRIVAL_ORDER).limit(bindparam("n"))
_WAITING = {
    "oldest": _OLDEST,
    "one": _OLDEST.where(
        seen_events.c.source_id == bindparam("source_id"), seen_events.c.event_id == bindparam("event_id")
    ),
}
_WAITING_LOCKED = {name: read.with_for_update() for name, read in _WAITING.items()}
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
_USE_REPLAY_KEY = Prepared(_use_replay_key)
