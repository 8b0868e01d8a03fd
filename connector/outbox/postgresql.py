"""PostgreSQL, behind one door: what the outbox does only there. Claims and intake read through
the indexes (never a scan or a sort, with or without statistics), contacts are locked while the
consent rule reads them, and one planner runs at a time. On SQLite each of these is nothing: its
one writer already runs alone (`sqlite` is its door)."""

from __future__ import annotations

from sqlalchemy import text


def _postgres(conn) -> bool:
    return conn.dialect.name == "postgresql"


def indexes_only(conn) -> None:
    """Claims and intake read the queue in order and each contact by its key, never a scan."""
    if _postgres(conn):
        conn.execute(_INDEXES_ONLY)


def lock_contacts(conn, keys) -> None:
    """Wait for these contacts (intake: a short wait behind a claim is fine)."""
    if _postgres(conn) and keys:
        conn.execute(_LOCK_CONTACTS, {"keys": sorted(set(keys))})


def try_lock_contacts(conn, keys) -> set[str]:
    """The contacts this transaction could lock without waiting (claims never wait: their
    rows are FOR UPDATE SKIP LOCKED already, so claims cannot deadlock with intake). On
    SQLite the write gate already serialises every writer: all of them."""
    keys = sorted(set(keys))
    if not _postgres(conn) or not keys:
        return set(keys)
    return set(conn.execute(_TRY_LOCK_CONTACTS, {"keys": keys}).scalars())


#: The advisory lock a planning transaction holds ("plan").
PLANNING_LOCK = 0x706C616E


def try_planning_lock(conn) -> bool:
    """One planner at a time, as SQLite's single writer is: batches are planned in the order
    events arrived, so of two changes at one event time the later arrival still gets the later
    stamp. Another worker planning now is not waited for (False)."""
    if not _postgres(conn):
        return True
    return bool(conn.execute(_TRY_PLANNING_LOCK).scalar())


# -- the statements, each named once ----------------------------------------------------------
# For the rest of the transaction: read through the indexes. Without statistics (a table
# filled since its last ANALYZE) the planner would rather scan and sort the whole queue, inside
# the claim's or the intake's transaction.
# JIT off too: with scans and sorts priced out, a plan that still needs one (the contact locks'
# ORDER BY, the breakers' few rows) costs enough to be compiled, ~28 ms each time.
_INDEXES_ONLY = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true),"
    " set_config('jit', 'off', true)"
)
# Intake and claims of one contact take turns on an advisory lock, so the rule reads a contact
# nobody else is changing. Sorted order, so two holders never deadlock.
_LOCK_CONTACTS = text(
    "SELECT count(pg_advisory_xact_lock(hashtext(k))) "
    "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s"
)
_TRY_LOCK_CONTACTS = text(
    "SELECT k FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s "
    "WHERE pg_try_advisory_xact_lock(hashtext(k))"
)
_TRY_PLANNING_LOCK = text(f"SELECT pg_try_advisory_xact_lock({PLANNING_LOCK})")
