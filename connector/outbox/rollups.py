"""Per-minute rollups: outcomes and request latencies per partner (`attempt_minutes`, written
in the transaction that decides them), the queue sampled once a minute (`queue_minutes`), and
the poll history (`poll_runs`); and the queries that read them for charts and /metrics.

Every figure a chart draws is a sum over these small tables, grouped in SQL into at most a
few hundred slots: no query here reads the attempt log or the events."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, bindparam, cast, func, insert, literal, select

from connector.contract import PENDING
from connector.outbox.engine import dialect_insert, now, reading
from connector.outbox.statements import Prepared
from connector.outbox.tables import (
    LATENCY_COLUMNS,
    LATENCY_EDGES_MS,
    attempt_minutes,
    deliveries,
    poll_runs,
    queue_minutes,
)

MINUTE = 60.0
_ADDED = ("deliveries", "requests", "latency_ms_sum", *LATENCY_COLUMNS)


def minute_of(at: float) -> float:
    return math.floor(at / MINUTE) * MINUTE


@dataclass
class Tally:
    """What one transaction adds to `attempt_minutes`, keyed by (minute, partner, outcome)."""

    rows: dict[tuple[float, str, str], dict[str, float]] = field(default_factory=dict)

    def _row(self, at: float, partner_id: str, outcome: str) -> dict[str, float]:
        key = (minute_of(at), partner_id, str(outcome))
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = dict.fromkeys(_ADDED, 0)
        return row

    def outcome(self, at: float, partner_id: str, outcome: str, count: int = 1) -> None:
        self._row(at, partner_id, outcome)["deliveries"] += count

    def latency(self, at: float, partner_id: str, outcome: str, latency_ms: float) -> None:
        """One request's latency (however many deliveries it carried)."""
        row = self._row(at, partner_id, outcome)
        row["requests"] += 1
        row["latency_ms_sum"] += latency_ms
        row[LATENCY_COLUMNS[bisect_left(LATENCY_EDGES_MS, latency_ms)]] += 1


def add(conn, tally: Tally) -> None:
    """Add a tally to the rollups inside the caller's transaction. Rows go in key order, so
    two workers adding to the same minutes on PostgreSQL never wait on each other in a cycle."""
    if not tally.rows:
        return
    _ADD.many(
        conn,
        [
            {"minute": minute, "partner_id": partner_id, "outcome": outcome, **values}
            for (minute, partner_id, outcome), values in sorted(tally.rows.items())
        ],
    )


# -- the queue ----------------------------------------------------------------------------------
def queue_now(engine, at: float | None = None) -> dict[str, dict[str, float]]:
    """Per partner: pending deliveries by state and the age of the oldest one due, read from
    the queue index alone (`ix_deliveries_queue`): its cost follows the backlog, not history."""
    at = now() if at is None else at
    by_partner: dict[str, dict[str, float]] = {}
    with reading(engine) as conn:
        for state, partner_id, count in conn.execute(_PENDING_COUNTS):
            figures = by_partner.setdefault(
                partner_id, {**dict.fromkeys(PENDING, 0), "oldest_due_seconds": 0.0}
            )
            figures[state] = count
        for partner_id, figures in by_partner.items():
            for state in PENDING:
                if not figures[state]:
                    continue
                due = conn.execute(_OLDEST_DUE, {"state": state, "partner": partner_id, "at": at}).scalar()
                if due is not None:
                    figures["oldest_due_seconds"] = max(figures["oldest_due_seconds"], at - due)
    return by_partner


def sample_queue(engine, at: float | None = None) -> bool:
    """Store this minute's queue sample unless a worker already did; True when stored."""
    at = now() if at is None else at
    minute = minute_of(at)
    with reading(engine) as conn:
        if conn.execute(_SAMPLED, {"minute": minute}).first():
            return False
    figures = queue_now(engine, at)
    # The row of no partner marks the minute as sampled, so an empty queue charts as zero.
    rows = [{"minute": minute, "partner_id": "", "oldest_due_seconds": 0.0, "sampled_at": at}]
    rows[0].update({str(state): 0 for state in PENDING})
    for partner_id, values in sorted(figures.items()):
        rows.append(
            {
                "minute": minute,
                "partner_id": partner_id,
                **{str(state): int(values[state]) for state in PENDING},
                "oldest_due_seconds": values["oldest_due_seconds"],
                "sampled_at": at,
            }
        )
    with engine.begin() as conn:
        _SAMPLE.many(conn, rows)
    return True


# -- reading for charts and metrics -----------------------------------------------------------
def outcomes(engine, since: float, step: float, partner_id: str | None = None) -> dict[int, dict[str, int]]:
    """{slot: {outcome: deliveries}} from `since` on."""
    found: dict[int, dict[str, int]] = {}
    with reading(engine) as conn:
        query = _outcomes_by_slot(conn.dialect.name, since, step, partner_id)
        for index, outcome, count in conn.execute(query):
            if count:
                found.setdefault(index, {})[outcome] = int(count)
    return found


def latency_histograms(
    engine, since: float, step: float, partner_id: str | None = None
) -> dict[int, list[int]]:
    """{slot: request counts per latency bucket (LATENCY_COLUMNS order)} from `since` on."""
    found: dict[int, list[int]] = {}
    with reading(engine) as conn:
        for index, *buckets in conn.execute(_latencies_by_slot(conn.dialect.name, since, step, partner_id)):
            found[index] = [int(b or 0) for b in buckets]
    return found


def percentile(buckets: list[int], fraction: float) -> float | None:
    """The latency (ms) under which `fraction` of the requests fell, interpolated inside its
    bucket; None without requests. The last bucket reports its lower bound."""
    total = sum(buckets)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            low = LATENCY_EDGES_MS[index - 1] if index else 0.0
            if index == len(LATENCY_EDGES_MS):
                return float(low)
            high = LATENCY_EDGES_MS[index]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(LATENCY_EDGES_MS[-1])


def queue_samples(engine, since: float, step: float, partner_id: str | None = None) -> dict[int, dict]:
    """{slot: {"depth": peak pending deliveries, "oldest_due_seconds": peak age}}: the
    partners' samples of one minute added up, then the busiest minute of each slot."""
    found: dict[int, dict] = {}
    with reading(engine) as conn:
        for index, depth, oldest in conn.execute(_queue_by_slot(conn.dialect.name, since, step, partner_id)):
            found[index] = {"depth": int(depth or 0), "oldest_due_seconds": float(oldest or 0.0)}
    return found


def outcome_totals(engine, since: float) -> dict[tuple[str, str], int]:
    """{(partner, outcome): deliveries} from `since` on (/metrics)."""
    with reading(engine) as conn:
        rows = conn.execute(_OUTCOME_TOTALS, {"since": since})
        return {(partner, outcome): int(count or 0) for partner, outcome, count in rows}


# -- polls ----------------------------------------------------------------------------------------
def record_poll(
    conn,
    source_id: str,
    started_at: float,
    finished_at: float,
    rows: int,
    events: int,
    error: str | None,
    note: str | None = None,
    summary: str | None = None,
) -> None:
    conn.execute(
        _RECORD_POLL,
        {
            "source_id": source_id,
            "started_at": started_at,
            "finished_at": finished_at,
            "ok": 0 if error else 1,
            "rows_read": rows,
            "events_produced": events,
            "error": error[:2000] if error else None,
            "note": note,
            "summary": summary,
        },
    )


def polls(engine, source_id: str, since: float, step: float) -> dict[int, dict]:
    """{slot: polls, failed, stopped early, rows read and events produced} of one source from
    `since` on."""
    found: dict[int, dict] = {}
    with reading(engine) as conn:
        query = _polls_by_slot(conn.dialect.name, source_id, since, step)
        for index, count, failed, stopped_early, rows, events in conn.execute(query):
            found[index] = {
                "polls": int(count),
                "failed": int(failed or 0),
                "stopped_early": int(stopped_early or 0),
                "rows_read": int(rows or 0),
                "events_produced": int(events or 0),
            }
    return found


# -- the statements, each named once ----------------------------------------------------------
def _add_statement(dialect: str):
    new = dialect_insert(dialect)(attempt_minutes).values({name: bindparam(name) for name in _ADD_COLUMNS})
    return new.on_conflict_do_update(
        index_elements=["minute", "partner_id", "outcome"],
        set_={name: attempt_minutes.c[name] + new.excluded[name] for name in _ADDED},
    )


_ADD_COLUMNS = ("minute", "partner_id", "outcome", *_ADDED)
#: Built once per dialect: building it cost more than running it, on every record.
_ADD = Prepared(_add_statement)
#: Pending deliveries by state and partner (the queue index alone, `ix_deliveries_queue`).
_PENDING_COUNTS = (
    select(deliveries.c.state, deliveries.c.partner_id, func.count())
    .where(deliveries.c.state.in_(PENDING))
    .group_by(deliveries.c.state, deliveries.c.partner_id)
)
_OLDEST_DUE = select(func.min(deliveries.c.next_attempt_at)).where(
    deliveries.c.state == bindparam("state"),
    deliveries.c.partner_id == bindparam("partner"),
    deliveries.c.next_attempt_at <= bindparam("at"),
)
#: This minute's queue sample, if a worker stored it already.
_SAMPLED = select(queue_minutes.c.minute).where(queue_minutes.c.minute == bindparam("minute")).limit(1)
_SAMPLE_COLUMNS = (
    "minute",
    "partner_id",
    *(str(state) for state in PENDING),
    "oldest_due_seconds",
    "sampled_at",
)
#: A minute's samples (one row per partner and the row of no partner), unless stored already.
_SAMPLE = Prepared(
    lambda dialect: (
        dialect_insert(dialect)(queue_minutes)
        .values({name: bindparam(name) for name in _SAMPLE_COLUMNS})
        .on_conflict_do_nothing()
    )
)
_OUTCOME_TOTALS = (
    select(attempt_minutes.c.partner_id, attempt_minutes.c.outcome, func.sum(attempt_minutes.c.deliveries))
    .where(attempt_minutes.c.minute >= bindparam("since"))
    .group_by(attempt_minutes.c.partner_id, attempt_minutes.c.outcome)
)
_RECORD_POLL = insert(poll_runs).values(
    {
        name: bindparam(name)
        for name in (
            "source_id",
            "started_at",
            "finished_at",
            "ok",
            "rows_read",
            "events_produced",
            "error",
            "note",
            "summary",
        )
    }
)


# A chart's statement depends on its window (`since`, `step`: the slot of each row) and its
# filters, so each is built by its function.
def _slot(dialect: str, column, since: float, step: float):
    """Which slot of `step` seconds from `since` a minute falls in (floor in both dialects:
    PostgreSQL rounds a cast to integer, SQLite truncates it)."""
    offset = (column - literal(since)) / literal(step)
    if dialect == "postgresql":
        return cast(func.floor(offset), Integer)
    return cast(offset, Integer)


def _outcomes_by_slot(dialect: str, since: float, step: float, partner_id: str | None):
    slot = _slot(dialect, attempt_minutes.c.minute, since, step).label("slot")
    query = select(slot, attempt_minutes.c.outcome, func.sum(attempt_minutes.c.deliveries)).where(
        attempt_minutes.c.minute >= since
    )
    if partner_id:
        query = query.where(attempt_minutes.c.partner_id == partner_id)
    return query.group_by(slot, attempt_minutes.c.outcome)


def _latencies_by_slot(dialect: str, since: float, step: float, partner_id: str | None):
    slot = _slot(dialect, attempt_minutes.c.minute, since, step).label("slot")
    query = select(slot, *(func.sum(attempt_minutes.c[name]) for name in LATENCY_COLUMNS)).where(
        attempt_minutes.c.minute >= since, attempt_minutes.c.requests > 0
    )
    if partner_id:
        query = query.where(attempt_minutes.c.partner_id == partner_id)
    return query.group_by(slot)


def _queue_by_slot(dialect: str, since: float, step: float, partner_id: str | None):
    """Each minute's samples added up over the partners, then the busiest minute per slot."""
    per_minute = (
        select(
            queue_minutes.c.minute,
            func.sum(queue_minutes.c.queued + queue_minutes.c.retrying + queue_minutes.c.paused).label(
                "depth"
            ),
            func.max(queue_minutes.c.oldest_due_seconds).label("oldest"),
        )
        .where(queue_minutes.c.minute >= since)
        .group_by(queue_minutes.c.minute)
    )
    if partner_id:
        per_minute = per_minute.where(queue_minutes.c.partner_id.in_([partner_id, ""]))
    minutes = per_minute.subquery()
    slot = _slot(dialect, minutes.c.minute, since, step).label("slot")
    return select(slot, func.max(minutes.c.depth), func.max(minutes.c.oldest)).group_by(slot)


def _polls_by_slot(dialect: str, source_id: str, since: float, step: float):
    slot = _slot(dialect, poll_runs.c.finished_at, since, step).label("slot")
    return (
        select(
            slot,
            func.count(),
            func.sum(1 - poll_runs.c.ok),
            func.count(poll_runs.c.note),
            func.sum(poll_runs.c.rows_read),
            func.sum(poll_runs.c.events_produced),
        )
        .where(and_(poll_runs.c.source_id == source_id, poll_runs.c.finished_at >= since))
        .group_by(slot)
    )
