"""Pull-source state: each source's cursor, the lease that lets one worker at a time poll it
(across all workers), and how its last polls went (for the Live View and /metrics)."""

from __future__ import annotations

import json

from sqlalchemy import bindparam, select, update

from connector import storable
from connector.outbox import rollups
from connector.outbox.engine import dialect_insert, now, reading
from connector.outbox.statements import Prepared, take_lease
from connector.outbox.tables import pollers

#: Characters of a poll's summary kept (a line for the Live View).
SUMMARY_MAX = 500


class LeaseLost(Exception):
    """Another worker took the poll over (this one's lease ran out): its work is discarded."""


def _ensure_rows(conn, source_ids: list[str], at: float) -> None:
    _ADD.many(
        conn,
        [
            {
                "source_id": s,
                "next_poll_at": 0.0,
                "failures": 0,
                "rows_read": 0,
                "events_produced": 0,
                "updated_at": at,
            }
            for s in source_ids
        ],
    )


def acquire(engine, source_id: str, owner: str, lease: float, due_only: bool = True):
    """Lease the source for a poll if nobody holds it (and, with `due_only`, its next poll is
    due). Returns its cursor (None before the first poll) wrapped in a dict, or None when
    the lease was not taken."""
    at = now()
    with engine.begin() as conn:
        _ensure_rows(conn, [source_id], at)
        given = {"source": source_id, "owner": owner, "at": at, "until": at + lease}
        taken = conn.execute(_TAKE_DUE if due_only else _TAKE, given).rowcount
        if taken != 1:
            return None
        stored = conn.execute(_CURSOR, {"source": source_id}).scalar()
    return {"cursor": json.loads(stored) if stored else None}


def holder(engine, source_id: str) -> str | None:
    """Who polls this source right now, if anyone."""
    with reading(engine) as conn:
        row = conn.execute(_HOLDER, {"source": source_id}).first()
    if row is None or row.lease_expires_at is None or row.lease_expires_at < now():
        return None
    return row.lease_owner


def extend(engine, source_id: str, owner: str, lease: float) -> bool:
    """Keep the lease while a long poll runs; False once another worker has it."""
    at = now()
    with engine.begin() as conn:
        given = {"source": source_id, "owner": owner, "at": at, "until": at + lease}
        return conn.execute(_EXTEND, given).rowcount == 1


def save_cursor(
    conn, source_id: str, owner: str, cursor: dict, rows: int, events: int, summary: str | None = None
) -> None:
    """Inside the transaction that stores a page's events: move the cursor on (and the poll's
    summary, when the page has one), or raise LeaseLost (rolling the page back) when this
    worker no longer holds the source."""
    given = {
        "source": source_id,
        "owner": owner,
        "position": json.dumps(cursor, separators=(",", ":")),
        "rows": rows,
        "events": events,
        "at": now(),
    }
    if summary is None:
        changed = conn.execute(_SAVE_CURSOR, given).rowcount
    else:
        changed = conn.execute(_SAVE_CURSOR_AND_SUMMARY, {**given, "summary": summary[:SUMMARY_MAX]}).rowcount
    if changed != 1:
        raise LeaseLost(f"source {source_id}: another worker holds the poll now")


def finish(
    engine,
    source_id: str,
    owner: str,
    next_poll_at: float,
    error: str | None = None,
    note: str | None = None,
) -> None:
    """End a poll: give the lease back, schedule the next one, note success or failure (and
    why a good poll stopped early), and add the poll to the history (`poll_runs`: when, rows
    read, events produced, error, note). Counts of rows and events restart at each poll's
    first page (see `start_counts`)."""
    at = now()
    error = storable.text(error)  # a partner's words in it: no NUL, no lone surrogate, bounded
    mine = {"source": source_id, "owner": owner}
    given = {**mine, "next_poll": next_poll_at, "at": at, "note": note, "error": error}
    with engine.begin() as conn:
        poll = conn.execute(_POLL, mine).first()
        if poll is None:  # another worker took the source over: its poll is the one recorded
            return
        conn.execute(_FINISH_OK if error is None else _FINISH_FAILED, given)
        rollups.record_poll(
            conn,
            source_id,
            poll.last_poll_at or at,
            at,
            poll.rows_read,
            poll.events_produced,
            error,
            note,
            poll.summary,
        )


def start_counts(engine, source_id: str, owner: str) -> None:
    """Rows read, events produced and the summary describe the latest poll: clear them as it
    starts."""
    with engine.begin() as conn:
        conn.execute(_START_COUNTS, {"source": source_id, "owner": owner})


def states(engine) -> list[dict]:
    """Every pull source's poll state, by source id."""
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(_STATES)]


# -- the statements, each named once ----------------------------------------------------------
_NEW_COLUMNS = ("source_id", "next_poll_at", "failures", "rows_read", "events_produced", "updated_at")
#: A source's row, unless it has one.
_ADD = Prepared(
    lambda dialect: (
        dialect_insert(dialect)(pollers)
        .values({name: bindparam(name) for name in _NEW_COLUMNS})
        .on_conflict_do_nothing(index_elements=["source_id"])
    )
)
_MINE = (pollers.c.source_id == bindparam("source"), pollers.c.lease_owner == bindparam("owner"))
#: The lease taken if nobody holds it (or it ran out, or it is this owner's already).
_TAKE = take_lease(pollers, pollers.c.source_id == bindparam("source"), pollers.c.last_poll_at)
_TAKE_DUE = _TAKE.where(pollers.c.next_poll_at <= bindparam("at"))
_CURSOR = select(pollers.c.cursor).where(pollers.c.source_id == bindparam("source"))
_HOLDER = select(pollers.c.lease_owner, pollers.c.lease_expires_at).where(
    pollers.c.source_id == bindparam("source")
)
_EXTEND = (
    update(pollers).where(*_MINE).values(lease_expires_at=bindparam("until"), updated_at=bindparam("at"))
)
#: A page's events stored: the cursor moves on and the poll's counts grow.
_SAVE_CURSOR = (
    update(pollers)
    .where(*_MINE)
    .values(
        cursor=bindparam("position"),
        rows_read=pollers.c.rows_read + bindparam("rows"),
        events_produced=pollers.c.events_produced + bindparam("events"),
        updated_at=bindparam("at"),
    )
)
_SAVE_CURSOR_AND_SUMMARY = _SAVE_CURSOR.values(summary=bindparam("summary"))
_POLL = select(
    pollers.c.last_poll_at, pollers.c.rows_read, pollers.c.events_produced, pollers.c.summary
).where(*_MINE)
#: A poll ended: the lease given back and the next one scheduled.
_FINISH = (
    update(pollers)
    .where(*_MINE)
    .values(
        lease_owner=None,
        lease_expires_at=None,
        next_poll_at=bindparam("next_poll"),
        updated_at=bindparam("at"),
        last_note=bindparam("note"),
    )
)
_FINISH_OK = _FINISH.values(last_ok_at=bindparam("at"), last_error=None, failures=0)
_FINISH_FAILED = _FINISH.values(last_error=bindparam("error"), failures=pollers.c.failures + 1)
_START_COUNTS = update(pollers).where(*_MINE).values(rows_read=0, events_produced=0, summary=None)
_STATES = select(pollers).order_by(pollers.c.source_id)
