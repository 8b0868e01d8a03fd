"""Pull-source state: each source's cursor, the lease that lets one worker at a time poll it
(across all workers), and how its last polls went (for the Live View and /metrics)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, or_, select, update

from connector import storable
from connector.outbox import rollups
from connector.outbox.engine import dialect_insert, now, reading
from connector.outbox.tables import pollers

#: Characters of a poll's summary kept (a line for the Live View).
SUMMARY_MAX = 500


class LeaseLost(Exception):
    """Another worker took the poll over (this one's lease ran out): its work is discarded."""


def _ensure_rows(conn, source_ids: list[str], at: float) -> None:
    if not source_ids:
        return
    conn.execute(
        dialect_insert(conn.dialect.name)(pollers).on_conflict_do_nothing(index_elements=["source_id"]),
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
        free = or_(
            pollers.c.lease_expires_at.is_(None),
            pollers.c.lease_expires_at < at,
            pollers.c.lease_owner == owner,
        )
        conditions = [pollers.c.source_id == source_id, free]
        if due_only:
            conditions.append(pollers.c.next_poll_at <= at)
        taken = conn.execute(
            update(pollers)
            .where(and_(*conditions))
            .values(lease_owner=owner, lease_expires_at=at + lease, last_poll_at=at, updated_at=at)
        ).rowcount
        if taken != 1:
            return None
        stored = conn.execute(select(pollers.c.cursor).where(pollers.c.source_id == source_id)).scalar()
    return {"cursor": json.loads(stored) if stored else None}


def holder(engine, source_id: str) -> str | None:
    """Who polls this source right now, if anyone."""
    with reading(engine) as conn:
        row = conn.execute(
            select(pollers.c.lease_owner, pollers.c.lease_expires_at).where(pollers.c.source_id == source_id)
        ).first()
    if row is None or row.lease_expires_at is None or row.lease_expires_at < now():
        return None
    return row.lease_owner


def extend(engine, source_id: str, owner: str, lease: float) -> bool:
    """Keep the lease while a long poll runs; False once another worker has it."""
    at = now()
    with engine.begin() as conn:
        return (
            conn.execute(
                update(pollers)
                .where(pollers.c.source_id == source_id, pollers.c.lease_owner == owner)
                .values(lease_expires_at=at + lease, updated_at=at)
            ).rowcount
            == 1
        )


def save_cursor(
    conn, source_id: str, owner: str, cursor: dict, rows: int, events: int, summary: str | None = None
) -> None:
    """Inside the transaction that stores a page's events: move the cursor on (and the poll's
    summary, when the page has one), or raise LeaseLost (rolling the page back) when this
    worker no longer holds the source."""
    said = {} if summary is None else {"summary": summary[:SUMMARY_MAX]}
    changed = conn.execute(
        update(pollers)
        .where(pollers.c.source_id == source_id, pollers.c.lease_owner == owner)
        .values(
            cursor=json.dumps(cursor, separators=(",", ":")),
            rows_read=pollers.c.rows_read + rows,
            events_produced=pollers.c.events_produced + events,
            updated_at=now(),
            **said,
        )
    ).rowcount
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
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "next_poll_at": next_poll_at,
        "updated_at": at,
        "last_note": note,
    }
    if error is None:
        values.update(last_ok_at=at, last_error=None, failures=0)
    else:
        values.update(last_error=error, failures=pollers.c.failures + 1)
    mine = (pollers.c.source_id == source_id, pollers.c.lease_owner == owner)
    with engine.begin() as conn:
        poll = conn.execute(
            select(
                pollers.c.last_poll_at, pollers.c.rows_read, pollers.c.events_produced, pollers.c.summary
            ).where(*mine)
        ).first()
        if poll is None:  # another worker took the source over: its poll is the one recorded
            return
        conn.execute(update(pollers).where(*mine).values(**values))
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
        conn.execute(
            update(pollers)
            .where(pollers.c.source_id == source_id, pollers.c.lease_owner == owner)
            .values(rows_read=0, events_produced=0, summary=None)
        )


def states(engine) -> list[dict]:
    """Every pull source's poll state, by source id."""
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(select(pollers).order_by(pollers.c.source_id))]
