"""Retention: finished deliveries (and their attempts) past their keep time are deleted,
dead ones never before 7 days; then events left with no delivery, and events that planned
none (an event no mapping matched) after a day; then the operating figures (rollups, queue
samples, poll history) past the charts' longest window.

What outlives a purge: every contact's consent mark, for good (an event older than what the
contact said last never changes the partner), each source's accepted event ids for the replay
window and as long as their event is stored (the same id sent again is a duplicate), and every
accepted event a worker has not planned yet. Replay keys go once expired. A consent change is
kept while a later change for its contact with the same event time is: the later arrival won
their tie, and were the earlier one's id forgotten first, a captured copy of it would arrive
after both and win the tie in turn.

A purge works in small transactions (`BATCH` deliveries each, found beforehand by a reader
that blocks nobody), so intake and workers wait at most one batch for the SQLite write gate
however much there is to delete. Workers run it every `retention.every`, one worker at a time
across all of them (a lease in `chores`, as pull sources have in `pollers`); `connector purge`
runs it by hand. Either way its figures are kept for the Live View."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from sqlalchemy import and_, exists, or_, select, tuple_, update

from connector.contract import FINISHED, State
from connector.outbox import intake
from connector.outbox.engine import now, reading
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

#: How long accepted event ids are remembered unless `retention.replay_window` says otherwise.
REPLAY_WINDOW = 30 * 86400.0
#: How long an event that planned no delivery stays visible (at most `retention.delivered`).
UNPLANNED_KEEP = 86400.0
#: Rollups, queue samples and poll history: the charts' longest window (7 days) and a day.
FIGURES_KEEP = 8 * 86400.0
#: Deliveries (with their attempts and events) per transaction.
BATCH = 500
CHORE = "purge"


def _forgettable(before: float):
    """Seen ids past the replay window, but never an accepted event still waiting to be
    planned, nor the id of an event still stored (so a repeat of it stays a duplicate)."""
    stored = exists().where(
        events.c.source_id == seen_events.c.source_id, events.c.event_id == seen_events.c.event_id
    )
    return and_(seen_events.c.received_at < before, seen_events.c.payload.is_(None), ~stored)


def _without_tie_losers(conn, expired: list) -> list:
    """`expired` without the consent changes that lost a tie to a later arrival still kept
    (not among `expired`): they go in the purge that takes the winner."""
    pairs = {(row.contact_key, row.event_time) for row in expired if row.contact_key}
    if not pairs:
        return expired
    going = {row.id for row in expired}
    later: dict[tuple, int] = {}
    tied = select(deliveries.c.id, deliveries.c.contact_key, deliveries.c.event_time).where(
        tuple_(deliveries.c.contact_key, deliveries.c.event_time).in_(sorted(pairs))
    )
    for id, contact_key, event_time in conn.execute(tied):
        if id not in going:
            pair = (contact_key, event_time)
            later[pair] = max(later.get(pair, 0), id)
    return [row for row in expired if later.get((row.contact_key, row.event_time), 0) < row.id]


class Purge:
    """One purge. `run()` returns what it removed; `transactions` and `longest` (seconds)
    say how it held the store; `events_checked_before` is where the next purge's search for
    events that planned no delivery may start (events received earlier were all looked at)."""

    def __init__(self, engine, retention: dict, batch: int = BATCH, events_checked_before: float = 0.0):
        self.engine, self.retention, self.batch = engine, retention, batch
        self.events_checked_before = events_checked_before
        self.removed = dict.fromkeys(("deliveries", "attempts", "events", "event_ids", "figures"), 0)
        self.transactions = 0
        self.longest = 0.0
        #: Called after each transaction; a False answer stops the purge.
        self.after_batch: Callable[[Purge], bool] | None = None

    @contextmanager
    def _transaction(self):
        with self.engine.begin() as conn:
            started = time.perf_counter()  # from BEGIN (the write gate taken) to the commit
            yield conn
        self.transactions += 1
        self.longest = max(self.longest, time.perf_counter() - started)

    def _go_on(self) -> bool:
        return self.after_batch is None or self.after_batch(self) is not False

    def run(self) -> dict[str, int]:
        at = now()
        retention = self.retention
        done = [s for s in FINISHED if s != State.DEAD]
        cut_done, cut_dead = at - retention["delivered"], at - retention["dead"]

        def expired(row) -> bool:
            if row.state == State.DEAD:
                return row.updated_at < cut_dead
            return row.state in done and row.updated_at < cut_done

        unplanned_cut = at - min(UNPLANNED_KEEP, retention["delivered"])
        if not self._deliveries(expired, max(cut_done, cut_dead), unplanned_cut):
            return self.counts()
        if not self._unplanned_events(unplanned_cut):
            return self.counts()
        window = retention.get("replay_window", REPLAY_WINDOW)
        for table, keys, condition, counted in (
            (seen_events, ("source_id", "event_id"), _forgettable(at - window), "event_ids"),
            (replay_keys, ("source_id", "replay_key"), replay_keys.c.expires_at < at, None),
            (
                attempt_minutes,
                ("minute", "partner_id", "outcome"),
                attempt_minutes.c.minute < at - FIGURES_KEEP,
                "figures",
            ),
            (queue_minutes, ("minute", "partner_id"), queue_minutes.c.minute < at - FIGURES_KEEP, "figures"),
            (poll_runs, ("id",), poll_runs.c.finished_at < at - FIGURES_KEEP, "figures"),
        ):
            if not self._rows(table, keys, condition, counted):
                break
        return self.counts()

    def counts(self) -> dict[str, int]:
        return {name: self.removed[name] for name in ("deliveries", "attempts", "events")}

    def _deliveries(self, expired, before: float, unplanned_cut: float) -> bool:
        """Deliveries in order of `updated_at` (its index), a page at a time: a reader walks
        the index, a short transaction deletes the rows of the page that are (still) expired.
        The expiry is checked in Python on rows read by primary key: an OR over states would
        lead SQLite's planner to sort every candidate for each page."""
        position = None
        postgres = self.engine.dialect.name == "postgresql"
        columns = (
            deliveries.c.id,
            deliveries.c.event_pk,
            deliveries.c.state,
            deliveries.c.updated_at,
            deliveries.c.contact_key,
            deliveries.c.event_time,
        )
        while True:
            query = select(deliveries.c.id, deliveries.c.updated_at).where(deliveries.c.updated_at < before)
            if position is not None:
                query = query.where(tuple_(deliveries.c.updated_at, deliveries.c.id) > tuple_(*position))
            with reading(self.engine) as conn:
                page = conn.execute(
                    query.order_by(deliveries.c.updated_at, deliveries.c.id).limit(self.batch)
                ).all()
            if not page:
                return True
            position = (page[-1].updated_at, page[-1].id)
            with self._transaction() as conn:
                still = select(*columns).where(deliveries.c.id.in_([row.id for row in page]))
                gone = _without_tie_losers(
                    conn,
                    [
                        row
                        for row in conn.execute(still.with_for_update() if postgres else still)
                        if expired(row)
                    ],
                )
                if gone:
                    self._delete(conn, gone, unplanned_cut)
            if len(page) < self.batch:
                return True
            if not self._go_on():
                return False

    def _delete(self, conn, gone, unplanned_cut: float) -> None:
        ids = [row.id for row in gone]
        self.removed["attempts"] += conn.execute(
            attempts.delete().where(attempts.c.delivery_id.in_(ids))
        ).rowcount
        self.removed["deliveries"] += conn.execute(
            deliveries.delete().where(deliveries.c.id.in_(ids))
        ).rowcount
        # An event's deliveries are stored with it, so one left with none had them all purged
        # (now or before).
        self.removed["events"] += conn.execute(
            events.delete().where(
                events.c.id.in_({row.event_pk for row in gone}),
                ~exists().where(deliveries.c.event_pk == events.c.id),
                events.c.received_at < unplanned_cut,
            )
        ).rowcount

    def _unplanned_events(self, cut: float) -> bool:
        """Events that never planned a delivery, received since the last purge looked."""
        position = (self.events_checked_before, 0)
        planned = exists().where(deliveries.c.event_pk == events.c.id)
        while True:
            with reading(self.engine) as conn:
                page = conn.execute(
                    select(events.c.id, events.c.received_at, planned.label("planned"))
                    .where(
                        events.c.received_at < cut,
                        tuple_(events.c.received_at, events.c.id) > tuple_(*position),
                    )
                    .order_by(events.c.received_at, events.c.id)
                    .limit(self.batch * 4)
                ).all()
            if not page:
                # Never past an event still waiting to be planned: it is stored later with the
                # time it arrived, behind where the next purge would start looking.
                oldest = intake.oldest_waiting(self.engine)
                checked = cut if oldest is None else min(cut, oldest)
                self.events_checked_before = max(self.events_checked_before, checked)
                return True
            position = (page[-1].received_at, page[-1].id)
            lonely = [row.id for row in page if not row.planned]
            if lonely:
                with self._transaction() as conn:
                    self.removed["events"] += conn.execute(
                        events.delete().where(events.c.id.in_(lonely), ~planned, events.c.received_at < cut)
                    ).rowcount
                if not self._go_on():
                    return False

    def _rows(self, table, keys: tuple[str, ...], condition, counted: str | None) -> bool:
        """Rows of a table past their time, `BATCH` × 4 at a time by primary key."""
        key = tuple_(*(table.c[name] for name in keys))
        while True:
            with self._transaction() as conn:
                removed = conn.execute(
                    table.delete().where(
                        key.in_(
                            select(*(table.c[name] for name in keys)).where(condition).limit(self.batch * 4)
                        )
                    )
                ).rowcount
            if counted:
                self.removed[counted] += removed
            if removed < self.batch * 4:
                return True
            if not self._go_on():
                return False


def purge(engine, retention: dict, batch: int = BATCH) -> dict[str, int]:
    """Delete finished deliveries (and their attempts) past retention; dead ones only after
    `retention.dead` (never under 7 days); then events left with no delivery; then event ids
    past the replay window, expired replay keys and old operating figures. Returns how many
    deliveries, attempts and events went."""
    return Purge(engine, retention, batch).run()


# -- the schedule: one purger at a time across workers ------------------------------------------
def _ensure_row(conn, at: float) -> None:
    if conn.execute(select(chores.c.name).where(chores.c.name == CHORE)).first() is None:
        conn.execute(chores.insert().values(name=CHORE, next_run_at=0.0, updated_at=at))


def acquire(engine, owner: str, lease: float, due_only: bool = True) -> dict | None:
    """Take the purge for `lease` seconds if nobody holds it (and, with `due_only`, it is
    due). Returns the chore's cursor (a dict), or None when another worker holds it."""
    at = now()
    with engine.begin() as conn:
        _ensure_row(conn, at)
        conditions = [
            chores.c.name == CHORE,
            or_(
                chores.c.lease_expires_at.is_(None),
                chores.c.lease_expires_at < at,
                chores.c.lease_owner == owner,
            ),
        ]
        if due_only:
            conditions.append(chores.c.next_run_at <= at)
        taken = conn.execute(
            update(chores)
            .where(*conditions)
            .values(lease_owner=owner, lease_expires_at=at + lease, last_started_at=at, updated_at=at)
        ).rowcount
        if taken != 1:
            return None
        cursor = conn.execute(select(chores.c.cursor).where(chores.c.name == CHORE)).scalar()
    return json.loads(cursor) if cursor else {}


def extend(engine, owner: str, lease: float) -> bool:
    """Keep the purge while it runs; False once another worker took it over."""
    at = now()
    with engine.begin() as conn:
        return (
            conn.execute(
                update(chores)
                .where(chores.c.name == CHORE, chores.c.lease_owner == owner)
                .values(lease_expires_at=at + lease, updated_at=at)
            ).rowcount
            == 1
        )


def finish(engine, owner: str, next_run_at: float, result: dict | None, error: str | None = None) -> None:
    """Give the purge back, schedule the next, and keep what this one did (or why it failed)."""
    at = now()
    values: dict[str, Any]
    values = {"lease_owner": None, "lease_expires_at": None, "next_run_at": next_run_at, "updated_at": at}
    values["last_finished_at"] = at
    if result is not None:
        values.update(
            last_result=json.dumps(result, separators=(",", ":")),
            cursor=json.dumps({"events_checked_before": result["events_checked_before"]}),
        )
    values["last_error"] = error[:2000] if error else None
    with engine.begin() as conn:
        conn.execute(
            update(chores).where(chores.c.name == CHORE, chores.c.lease_owner == owner).values(**values)
        )


def _due(engine, owner: str) -> bool:
    """A read first, so a worker checking every second writes only when a purge is due."""
    at = now()
    with reading(engine) as conn:
        row = conn.execute(
            select(chores.c.next_run_at, chores.c.lease_owner, chores.c.lease_expires_at).where(
                chores.c.name == CHORE
            )
        ).first()
    if row is None:
        return True
    held = row.lease_expires_at is not None and row.lease_expires_at >= at and row.lease_owner != owner
    return row.next_run_at <= at and not held


def run(
    engine, retention: dict, owner: str, lease: float, every: float, due_only: bool = True
) -> dict | None:
    """Purge now if this worker can take the chore (and, with `due_only`, it is due):
    what it removed, how many transactions it took and the longest one (ms), or None when
    another worker holds it. The next scheduled purge is `every` seconds after this one."""
    if due_only and not _due(engine, owner):
        return None
    cursor = acquire(engine, owner, lease, due_only=due_only)
    if cursor is None:
        return None
    started = now()
    job = Purge(engine, retention, events_checked_before=cursor.get("events_checked_before", 0.0))
    renewed = [time.monotonic()]

    def keep_lease(_job) -> bool:
        if time.monotonic() - renewed[0] < lease / 3:
            return True
        renewed[0] = time.monotonic()
        return extend(engine, owner, lease)

    job.after_batch = keep_lease
    try:
        job.run()
    except Exception as exc:
        finish(engine, owner, now() + every, None, f"{type(exc).__name__}: {exc}")
        raise
    result = {
        **job.removed,
        "transactions": job.transactions,
        "longest_transaction_ms": round(job.longest * 1000, 1),
        "seconds": round(now() - started, 3),
        "events_checked_before": job.events_checked_before,
    }
    finish(engine, owner, now() + every, result)
    return result


def last_run(engine) -> dict | None:
    """When the last purge started and finished, what it removed, or why it failed; and when
    the next is due. None before the first."""
    with reading(engine) as conn:
        row = conn.execute(select(chores).where(chores.c.name == CHORE)).first()
    if row is None or row.last_started_at is None:
        return None
    return {
        "started_at": row.last_started_at,
        "finished_at": row.last_finished_at,
        "running": row.lease_expires_at is not None and row.lease_expires_at >= now(),
        "owner": row.lease_owner,
        "next_run_at": row.next_run_at,
        "result": json.loads(row.last_result) if row.last_result else None,
        "error": row.last_error,
    }
