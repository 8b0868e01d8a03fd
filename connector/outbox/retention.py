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

from connector.contract import FINISHED, State
from connector.outbox import intake
from connector.outbox import retention_statements as sql
from connector.outbox.engine import now, reading

#: How long accepted event ids are remembered unless `retention.replay_window` says otherwise.
REPLAY_WINDOW = 30 * 86400.0
#: How long an event that planned no delivery stays visible (at most `retention.delivered`).
UNPLANNED_KEEP = 86400.0
#: Rollups, queue samples and poll history: the charts' longest window (7 days) and a day.
FIGURES_KEEP = 8 * 86400.0
#: Deliveries (with their attempts and events) per transaction.
BATCH = 500


def _without_tie_losers(conn, expired: list) -> list:
    """`expired` without the consent changes that lost a tie to a later arrival still kept
    (not among `expired`): they go in the purge that takes the winner."""
    pairs = {(row.contact_key, row.event_time) for row in expired if row.contact_key}
    if not pairs:
        return expired
    going = {row.id for row in expired}
    later: dict[tuple, int] = {}
    for id, contact_key, event_time in conn.execute(sql.TIED, {"pairs": sorted(pairs)}):
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
        self.remember_since = 0.0  # ids of events received since are remembered when purged
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
        window = retention.get("replay_window", REPLAY_WINDOW)
        self.remember_since = at - window
        if not self._deliveries(expired, max(cut_done, cut_dead), unplanned_cut):
            return self.counts()
        if not self._unplanned_events(unplanned_cut):
            return self.counts()
        for statement, before, counted in (
            (sql.FORGET_SEEN_IDS, at - window, "event_ids"),
            (sql.DELETE_REPLAY_KEYS, at, None),
            (sql.DELETE_ATTEMPT_MINUTES, at - FIGURES_KEEP, "figures"),
            (sql.DELETE_QUEUE_MINUTES, at - FIGURES_KEEP, "figures"),
            (sql.DELETE_POLL_RUNS, at - FIGURES_KEEP, "figures"),
        ):
            if not self._rows(statement, before, counted):
                break
        return self.counts()

    def counts(self) -> dict[str, int]:
        return {name: self.removed[name] for name in ("deliveries", "attempts", "events")}

    def _deliveries(self, expired, before: float, unplanned_cut: float) -> bool:
        """Deliveries in order of `updated_at` (its index), a page at a time: a reader walks
        the index, a short transaction deletes the rows of the page that are (still) expired.
        The expiry is checked in Python on rows read by primary key: an OR over states would
        lead SQLite's planner to sort every candidate for each page."""
        page_now = sql.PAGE_NOW_LOCKED if self.engine.dialect.name == "postgresql" else sql.PAGE_NOW
        read = sql.EXPIRING
        given: dict[str, Any] = {"before": before, "n": self.batch}
        while True:
            with reading(self.engine) as conn:
                page = conn.execute(read, given).all()
            if not page:
                return True
            read = sql.EXPIRING_AFTER
            given.update(after_time=page[-1].updated_at, after_id=page[-1].id)
            with self._transaction() as conn:
                now_rows = conn.execute(page_now, {"ids": [row.id for row in page]})
                gone = _without_tie_losers(conn, [row for row in now_rows if expired(row)])
                if gone:
                    self._delete(conn, gone, unplanned_cut)
            if len(page) < self.batch:
                return True
            if not self._go_on():
                return False

    def _delete(self, conn, gone, unplanned_cut: float) -> None:
        ids = {"ids": [row.id for row in gone]}
        self.removed["attempts"] += conn.execute(sql.DELETE_ATTEMPTS, ids).rowcount
        self.removed["deliveries"] += conn.execute(sql.DELETE_DELIVERIES, ids).rowcount
        left = {"ids": list({row.event_pk for row in gone}), "cut": unplanned_cut}
        self._delete_events(conn, left)

    def _delete_events(self, conn, which: dict) -> None:
        """The events `which` names that have no delivery, their ids remembered first for the
        rest of the replay window (a pull source's events have no `seen_events` row before)."""
        remember = sql.REMEMBER_EVENT_IDS[conn.dialect.name]
        conn.execute(remember, {**which, "since": self.remember_since})
        self.removed["events"] += conn.execute(sql.DELETE_WITHOUT_DELIVERIES, which).rowcount

    def _unplanned_events(self, cut: float) -> bool:
        """Events that never planned a delivery, received since the last purge looked."""
        given = {"cut": cut, "after_time": self.events_checked_before, "after_id": 0, "n": self.batch * 4}
        while True:
            with reading(self.engine) as conn:
                page = conn.execute(sql.UNPLANNED_PAGE, given).all()
            if not page:
                # Never past an event still waiting to be planned: it is stored later with the
                # time it arrived, behind where the next purge would start looking.
                oldest = intake.oldest_waiting(self.engine)
                checked = cut if oldest is None else min(cut, oldest)
                self.events_checked_before = max(self.events_checked_before, checked)
                return True
            given.update(after_time=page[-1].received_at, after_id=page[-1].id)
            lonely = [row.id for row in page if not row.planned]
            if lonely:
                with self._transaction() as conn:
                    self._delete_events(conn, {"ids": lonely, "cut": cut})
                if not self._go_on():
                    return False

    def _rows(self, statement, before: float, counted: str | None) -> bool:
        """Rows of a table past their time (before `before`), `BATCH` × 4 at a time by
        primary key."""
        while True:
            with self._transaction() as conn:
                removed = conn.execute(statement, {"before": before, "n": self.batch * 4}).rowcount
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
    if conn.execute(sql.CHORE_ROW).first() is None:
        conn.execute(sql.ADD_CHORE, {"at": at})


def acquire(engine, owner: str, lease: float, due_only: bool = True) -> dict | None:
    """Take the purge for `lease` seconds if nobody holds it (and, with `due_only`, it is
    due). Returns the chore's cursor (a dict), or None when another worker holds it."""
    at = now()
    with engine.begin() as conn:
        _ensure_row(conn, at)
        given = {"owner": owner, "at": at, "until": at + lease}
        taken = conn.execute(sql.TAKE_DUE if due_only else sql.TAKE, given).rowcount
        if taken != 1:
            return None
        cursor = conn.execute(sql.CURSOR).scalar()
    return json.loads(cursor) if cursor else {}


def extend(engine, owner: str, lease: float) -> bool:
    """Keep the purge while it runs; False once another worker took it over."""
    at = now()
    with engine.begin() as conn:
        return conn.execute(sql.EXTEND, {"owner": owner, "at": at, "until": at + lease}).rowcount == 1


def finish(engine, owner: str, next_run_at: float, result: dict | None, error: str | None = None) -> None:
    """Give the purge back, schedule the next, and keep what this one did (or why it failed)."""
    at = now()
    given = {"owner": owner, "next_run": next_run_at, "at": at, "error": error[:2000] if error else None}
    if result is not None:
        given.update(
            result=json.dumps(result, separators=(",", ":")),
            position=json.dumps({"events_checked_before": result["events_checked_before"]}),
        )
    with engine.begin() as conn:
        conn.execute(sql.FINISH if result is None else sql.FINISH_WITH_RESULT, given)


def _due(engine, owner: str) -> bool:
    """A read first, so a worker checking every second writes only when a purge is due."""
    at = now()
    with reading(engine) as conn:
        row = conn.execute(sql.SCHEDULE).first()
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
        row = conn.execute(sql.LAST_RUN).first()
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
