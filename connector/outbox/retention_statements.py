"""Retention's statements (`retention.py` is the logic), each named once: what a purge reads and
deletes, a page at a time, and the purge schedule's row in `chores`."""

from __future__ import annotations

from sqlalchemy import (
    BindParameter,
    Float,
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    select,
    tuple_,
    update,
)

from connector.outbox.engine import dialect_insert
from connector.outbox.statements import take_lease
from connector.outbox.tables import (
    attempt_minutes,
    attempts,
    chores,
    deliveries,
    events,
    poll_runs,
    queue_minutes,
    replay_keys,
    seen_events,
)

#: The purge's row in `chores`.
CHORE = "purge"

_PAGE_SIZE = bindparam("n", type_=Integer)
_IDS: BindParameter[int] = bindparam("ids", expanding=True)

# -- deliveries past their keep time --------------------------------------------------------------
#: A page of deliveries updated before `before`, in the order of their index (`updated_at`, id).
EXPIRING = (
    select(deliveries.c.id, deliveries.c.updated_at)
    .where(deliveries.c.updated_at < bindparam("before"))
    .order_by(deliveries.c.updated_at, deliveries.c.id)
    .limit(_PAGE_SIZE)
)
#: The next page, after the last (`after_time`, `after_id`) read.
EXPIRING_AFTER = EXPIRING.where(
    tuple_(deliveries.c.updated_at, deliveries.c.id)
    > tuple_(bindparam("after_time", type_=Float), bindparam("after_id", type_=Integer))
)
#: A page's deliveries as they are now, by primary key: whether each is (still) expired is
#: checked in Python.
PAGE_NOW = select(
    deliveries.c.id,
    deliveries.c.event_pk,
    deliveries.c.state,
    deliveries.c.updated_at,
    deliveries.c.contact_key,
    deliveries.c.event_time,
).where(deliveries.c.id.in_(_IDS))
PAGE_NOW_LOCKED = PAGE_NOW.with_for_update()  # PostgreSQL: until the commit
#: The deliveries of these (contact, event time) pairs: the ties a consent change may have lost.
TIED = select(deliveries.c.id, deliveries.c.contact_key, deliveries.c.event_time).where(
    tuple_(deliveries.c.contact_key, deliveries.c.event_time).in_(bindparam("pairs", expanding=True))
)
DELETE_ATTEMPTS = delete(attempts).where(attempts.c.delivery_id.in_(_IDS))
DELETE_DELIVERIES = delete(deliveries).where(deliveries.c.id.in_(_IDS))
_PLANNED = exists().where(deliveries.c.event_pk == events.c.id)
#: Those of these events with no delivery, received before `cut`: none planned, or all purged
#: (an event's deliveries are stored with it, so one left with none had them all purged).
DELETE_WITHOUT_DELIVERIES = delete(events).where(
    events.c.id.in_(_IDS), ~_PLANNED, events.c.received_at < bindparam("cut")
)


def _remember_event_ids(dialect: str):
    return (
        dialect_insert(dialect)(seen_events)
        .from_select(
            ["source_id", "event_id", "received_at"],
            select(events.c.source_id, events.c.event_id, events.c.received_at).where(
                events.c.id.in_(_IDS),
                ~_PLANNED,
                events.c.received_at < bindparam("cut"),
                events.c.received_at >= bindparam("since"),
            ),
        )
        .on_conflict_do_nothing(index_elements=["source_id", "event_id"])
    )


#: Before that delete (the same events), per dialect: the ids of those received since `since`
#: (the replay window's start) that `seen_events` lacks (a pull source's event has no row there
#: while it is stored), so a repeat of one stays a duplicate for the rest of the window.
REMEMBER_EVENT_IDS = {dialect: _remember_event_ids(dialect) for dialect in ("sqlite", "postgresql")}

# -- events that planned no delivery --------------------------------------------------------------
#: A page of events received before `cut`, after (`after_time`, `after_id`), each saying whether
#: it planned a delivery.
UNPLANNED_PAGE = (
    select(events.c.id, events.c.received_at, _PLANNED.label("planned"))
    .where(
        events.c.received_at < bindparam("cut"),
        tuple_(events.c.received_at, events.c.id)
        > tuple_(bindparam("after_time", type_=Float), bindparam("after_id", type_=Integer)),
    )
    .order_by(events.c.received_at, events.c.id)
    .limit(_PAGE_SIZE)
)


# -- rows past their time, `n` at a time by primary key -------------------------------------------
def _expired(table, keys: tuple[str, ...], condition):
    key = tuple_(*(table.c[name] for name in keys))
    return delete(table).where(
        key.in_(select(*(table.c[name] for name in keys)).where(condition).limit(_PAGE_SIZE))
    )


_STORED = exists().where(
    events.c.source_id == seen_events.c.source_id, events.c.event_id == seen_events.c.event_id
)
#: Seen ids past the replay window (received before `before`), but never an accepted event
#: still waiting to be planned, nor the id of an event still stored (so a repeat of it stays a
#: duplicate).
FORGET_SEEN_IDS = _expired(
    seen_events,
    ("source_id", "event_id"),
    and_(seen_events.c.received_at < bindparam("before"), seen_events.c.payload.is_(None), ~_STORED),
)
DELETE_REPLAY_KEYS = _expired(
    replay_keys, ("source_id", "replay_key"), replay_keys.c.expires_at < bindparam("before")
)
DELETE_ATTEMPT_MINUTES = _expired(
    attempt_minutes, ("minute", "partner_id", "outcome"), attempt_minutes.c.minute < bindparam("before")
)
DELETE_QUEUE_MINUTES = _expired(
    queue_minutes, ("minute", "partner_id"), queue_minutes.c.minute < bindparam("before")
)
DELETE_POLL_RUNS = _expired(poll_runs, ("id",), poll_runs.c.finished_at < bindparam("before"))

# -- the schedule: one purger at a time across workers --------------------------------------------
_THE_CHORE = chores.c.name == CHORE
_HELD_BY_OWNER = (_THE_CHORE, chores.c.lease_owner == bindparam("owner"))
CHORE_ROW = select(chores.c.name).where(_THE_CHORE)
ADD_CHORE = insert(chores).values(name=CHORE, next_run_at=0.0, updated_at=bindparam("at"))
#: The purge taken if nobody holds it (or the lease ran out, or it is this owner's already).
TAKE = take_lease(chores, _THE_CHORE, chores.c.last_started_at)
TAKE_DUE = TAKE.where(chores.c.next_run_at <= bindparam("at"))
CURSOR = select(chores.c.cursor).where(_THE_CHORE)
EXTEND = (
    update(chores)
    .where(*_HELD_BY_OWNER)
    .values(lease_expires_at=bindparam("until"), updated_at=bindparam("at"))
)
#: The purge given back, the next one scheduled, and how this one ended.
FINISH = (
    update(chores)
    .where(*_HELD_BY_OWNER)
    .values(
        lease_owner=None,
        lease_expires_at=None,
        next_run_at=bindparam("next_run"),
        updated_at=bindparam("at"),
        last_finished_at=bindparam("at"),
        last_error=bindparam("error"),
    )
)
#: ... with what it removed, and where the next purge starts.
FINISH_WITH_RESULT = FINISH.values(last_result=bindparam("result"), cursor=bindparam("position"))
SCHEDULE = select(chores.c.next_run_at, chores.c.lease_owner, chores.c.lease_expires_at).where(_THE_CHORE)
LAST_RUN = select(chores).where(_THE_CHORE)
