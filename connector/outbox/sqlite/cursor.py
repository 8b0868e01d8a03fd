"""SQLite's statements on the driver's cursor: the request path's write transaction on a
connection of its own, statements compiled once and bound from dicts, and inserts of many rows
per statement."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from contextlib import contextmanager

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import OperationalError

from connector.outbox.sqlite.store import is_file

# -- the request path's write transaction ------------------------------------------------------


class _RawWrite:
    """What `writing` yields on SQLite: enough of a Connection for `Prepared.rows`."""

    __slots__ = ("connection", "dialect")

    def __init__(self, dialect, pooled):
        self.dialect, self.connection = dialect, pooled


#: Each thread's write connection to each SQLite file store: (process id, detached connection).
_WRITERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Connections a forked child inherited from its parent: kept, never closed or used here.
_INHERITED: list = []


def _writer(engine):
    """This thread's own connection for `writing`, opened once (with the engine's connect
    settings: pragmas, write gate) and taken out of the pool: checking one out of the pool and
    back in cost more than the INSERT (about 25 µs of a 0.29 ms request)."""
    local = _WRITERS.get(engine)
    if local is None:
        local = _WRITERS.setdefault(engine, threading.local())
    held = getattr(local, "held", None)
    if held is not None:
        if held[0] == os.getpid():
            return held[1]
        _INHERITED.append(held)  # the parent's: a child forked from a thread that had one
    pooled = engine.raw_connection()
    pooled.detach()  # ours now; closed when the engine goes, or after an error
    local.held = (os.getpid(), pooled)
    return pooled


def _drop_writer(engine) -> None:
    """After an error, the next transaction opens a new connection."""
    local = _WRITERS.get(engine)
    held = getattr(local, "held", None)
    if local is not None and held is not None and held[0] == os.getpid():
        local.held = None
        held[1].close()


@contextmanager
def writing(engine):
    """A short write transaction for the request path, for `Prepared` statements only. On a
    SQLite file it runs on this thread's own DBAPI connection (write gate, BEGIN IMMEDIATE,
    commit) without SQLAlchemy's pool, Connection and events: about 45 µs less a request than
    `engine.begin()`. SQLite's own errors come out as SQLAlchemy's OperationalError, as they
    would through a Connection (the web answers 503). Elsewhere (PostgreSQL, an in-memory
    SQLite, where every connection is a database of its own) it is `engine.begin()`."""
    if not is_file(engine):
        with engine.begin() as conn:
            yield conn
        return
    try:  # opening a connection runs the connect pragmas: a missing directory fails here
        pooled = _writer(engine)
    except sqlite3.OperationalError as exc:
        raise OperationalError("connect", None, exc) from exc
    dbapi = pooled.dbapi_connection
    try:
        if dbapi.gate is not None:
            dbapi.gate.acquire()
            dbapi.holds_gate = True
        dbapi.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        dbapi.release_gate()
        _drop_writer(engine)
        raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
    try:
        yield _RawWrite(engine.dialect, pooled)
        dbapi.commit()
    except BaseException as exc:
        dbapi.rollback()
        if isinstance(exc, sqlite3.OperationalError):
            _drop_writer(engine)
            raise OperationalError("write transaction", None, exc) from exc
        raise


# -- statements on the driver's cursor -----------------------------------------------------------
class Statement:
    """A statement compiled once for SQLite and run on the DBAPI cursor of a write transaction
    (a Connection from `engine.begin()`, or what `writing` yields): `executemany` for many
    rows in the driver's own loop, `rows` for one call per parameter set with what each
    returns. Through `Connection.execute` each call cost about 20 µs of SQLAlchemy's work
    (bind processing, result wrapping), a third of intake's time; here about 4 µs.

    Parameters are by name (`:name`, the driver reads them from each dict) and there is no
    type conversion beyond the driver's, so only for tables of numbers and text. A statement
    here binds nothing but its parameters: constants are written as literals (`null()`,
    `tables.one_of`), and a list of parameters (`IN (...)`) is refused when it is compiled."""

    def __init__(self, statement):
        compiled = statement.compile(dialect=_DIALECT)
        constants = sorted(bind.key for bind in compiled.binds.values() if not bind.required)
        if compiled.post_compile_params or constants:
            raise TypeError(
                f"a statement run on the cursor binds only parameters (found {constants or 'a list'}): "
                "write constants as literals"
            )
        self.sql = compiled.string

    def executemany(self, conn, params: list[dict]) -> None:
        if params:
            _dbapi(conn).executemany(self.sql, params)

    def rows(self, conn, params: list[dict]) -> list[tuple]:
        cursor = _dbapi(conn).cursor()
        try:
            found = []
            for one in params:
                cursor.execute(self.sql, one)
                found += cursor.fetchall()
            return found
        finally:
            cursor.close()


class RowsInsert:
    """`INSERT INTO table (columns) VALUES (...), (...), ...` of many rows, CHUNK rows a
    statement (ON CONFLICT (`unique`) DO NOTHING when given), on the DBAPI cursor.

    SQLite's module lets go of the GIL around each step of a statement: an executemany of
    thousands of rows takes it back thousands of times, and in a worker whose other threads
    keep busy each time can cost a switch interval (a page of 11,667 events took 2-3 s of wall
    time for 0.7 s of CPU). One statement per CHUNK rows steps once per chunk."""

    CHUNK = 500

    def __init__(self, table, columns: tuple[str, ...], unique: tuple[str, ...] | None = None):
        quote = _DIALECT.identifier_preparer.quote
        self.columns = columns
        self.head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
        self.group = f"({', '.join('?' * len(columns))})"
        self.tail = f" ON CONFLICT ({', '.join(quote(c) for c in unique)}) DO NOTHING" if unique else ""

    def run(self, conn, rows: list[dict]) -> None:
        cursor = _dbapi(conn).cursor()
        try:
            columns = self.columns
            for start in range(0, len(rows), self.CHUNK):
                chunk = rows[start : start + self.CHUNK]
                sql = f"{self.head}{', '.join([self.group] * len(chunk))}{self.tail}"
                cursor.execute(sql, [row[column] for row in chunk for column in columns])
        finally:
            cursor.close()


def _dbapi(conn):
    return conn.connection.dbapi_connection


_DIALECT = sqlite_dialect.dialect(paramstyle="named")
