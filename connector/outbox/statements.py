"""Statements the outbox runs often, compiled once per dialect. On SQLite they run on the
driver's cursor (`connector.outbox.sqlite.Statement`), elsewhere through `Connection.execute`;
and rows are written many at a time (`insert_rows`, `insert_new_rows`)."""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, func, insert, or_, select, update

from connector.outbox import sqlite
from connector.outbox.engine import dialect_insert
from connector.outbox.sqlite import writing

__all__ = ["Prepared", "insert_new_rows", "insert_rows", "stored_keys", "writing"]


class Prepared:
    """A statement built once per dialect by `build(dialect name)`: `rows` runs it once per
    parameter set and gives what it returns, in parameter order; `many` runs it for all of
    them at once. Parameters are by name and must name every bound column (see
    `sqlite.Statement` for what that allows)."""

    def __init__(self, build):
        self._build = build
        self._forms: dict[str, object] = {}

    def _form(self, dialect: str):
        form = self._forms.get(dialect)
        if form is None:
            statement = self._build(dialect)
            form = self._forms[dialect] = sqlite.Statement(statement) if dialect == "sqlite" else statement
        return form

    def rows(self, conn, params: list[dict]) -> list[tuple]:
        if not params:
            return []
        form = self._form(conn.dialect.name)
        if isinstance(form, sqlite.Statement):
            return form.rows(conn, params)
        result = conn.execute(form, params)
        return [tuple(row) for row in result] if result.returns_rows else []

    def many(self, conn, params: list[dict]) -> None:
        if not params:
            return
        form = self._form(conn.dialect.name)
        if isinstance(form, sqlite.Statement):
            form.executemany(conn, params)
        else:
            conn.execute(form, params)


# -- many rows at once ----------------------------------------------------------------------------
# A page of a pull source or a batch of planned events writes thousands of rows: one
# executemany each (the driver's own loop), not a statement per row. A RETURNING row by row
# cost twice the insert on SQLite, and SQLAlchemy's ordered RETURNING for many rows falls back
# to a row at a time there; a SQLite write transaction is the only writer and its ids only grow
# (AUTOINCREMENT), so the rows past the largest id before the insert are the new ones, in order.


def _largest_id(conn, table) -> int:
    return conn.execute(select(func.max(table.c.id))).scalar() or 0


def insert_rows(conn, table, rows: list[dict], ids: bool = True) -> list[int]:
    """Insert `rows` (none may conflict, all with the same columns); with `ids`, their ids in
    the order given."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        if not ids:
            conn.execute(insert(table), rows)
            return []
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(conn.execute(statement, rows).scalars())
    before = _largest_id(conn, table) if ids else 0
    _inserting(table, tuple(rows[0]), None).run(conn, rows)
    if not ids:
        return []
    return list(conn.execute(select(table.c.id).where(table.c.id > before).order_by(table.c.id)).scalars())


def insert_new_rows(conn, table, rows: list[dict], unique: tuple[str, ...], returning: list) -> list[tuple]:
    """Insert those of `rows` (all with the same columns) whose `unique` columns are not
    stored yet (the others are left as they are); `returning` of each row inserted, in no
    particular order."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        new = dialect_insert(conn.dialect.name)(table).on_conflict_do_nothing(index_elements=unique)
        return [tuple(row) for row in conn.execute(new.returning(*returning), rows)]
    before = _largest_id(conn, table)
    _inserting(table, tuple(rows[0]), unique).run(conn, rows)
    return [tuple(row) for row in conn.execute(select(*returning).where(table.c.id > before))]


@functools.cache
def _inserting(table, columns: tuple[str, ...], unique: tuple[str, ...] | None) -> sqlite.RowsInsert:
    """SQLite's INSERT of these columns (ON CONFLICT (`unique`) DO NOTHING when given), built
    once per table and columns."""
    return sqlite.RowsInsert(table, columns, unique)


def stored_keys(conn, table, source_id: str, event_ids: list[str]) -> set[str]:
    """Those of `event_ids` that `table` (events, seen_events) holds for the source."""
    found: set[str] = set()
    for start in range(0, len(event_ids), _IDS_PER_READ):
        found.update(
            conn.execute(
                select(table.c.event_id).where(
                    table.c.source_id == source_id,
                    table.c.event_id.in_(event_ids[start : start + _IDS_PER_READ]),
                )
            ).scalars()
        )
    return found


_IDS_PER_READ = 500


def take_lease(table, which, started):
    """The UPDATE that leases `which` row of `table` (a pull source's poller, a chore) to
    `owner` until `until` if nobody holds it, its lease ran out, or it is this owner's
    already; `started` (a column) and `updated_at` become `at`. Its rowcount says whether
    the lease was taken."""
    return (
        update(table)
        .where(
            which,
            or_(
                table.c.lease_expires_at.is_(None),
                table.c.lease_expires_at < bindparam("at"),
                table.c.lease_owner == bindparam("owner"),
            ),
        )
        .values(
            {
                table.c.lease_owner: bindparam("owner"),
                table.c.lease_expires_at: bindparam("until"),
                started: bindparam("at"),
                table.c.updated_at: bindparam("at"),
            }
        )
    )
