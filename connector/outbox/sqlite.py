"""SQLite, behind one door. Everything the outbox does only on SQLite, for speed or because
SQLite needs it, is here: the write gate and the transaction it guards, the WAL checkpoint
thread, what a fork must do, the request path's own write connection, and statements run on
the driver's cursor. The rest of the outbox speaks SQLAlchemy to either store and asks this
module (`is_file`, `writing`, `Statement`) where SQLite takes a shortcut.

No private attribute of SQLAlchemy or of the sqlite3 module is read here: statements are
compiled with `compile()` (its SQL text, `positiontup`, `params`) and run with the DBAPI's
`execute`/`executemany`."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import OperationalError

WRITE_WAIT_SECONDS = 30.0


class _WriteGate:
    """Serialises SQLite write transactions with a thread lock and an flock on a file beside
    the database. SQLite would serialise them anyway, but its busy handler polls with sleeps
    of up to 100 ms; across threads the lock wakes the next writer the moment one commits,
    and across processes the flock is polled at most 1 ms apart (a commit takes ~0.1 ms).
    One gate per database file per process, shared by all its engines."""

    _gates: dict[str, _WriteGate] = {}
    _gates_lock = threading.Lock()

    def __init__(self, path: str):
        self._lock = threading.RLock()
        self._depth = 0
        self._fd = os.open(f"{path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def for_path(cls, path: str) -> _WriteGate:
        # Keyed by process too: an flock is shared by a forked child (gunicorn --preload),
        # so each process opens its own file description.
        key = f"{os.getpid()}:{os.path.realpath(path)}"
        with cls._gates_lock:
            gate = cls._gates.get(key)
            if gate is None:
                gate = cls._gates[key] = cls(os.path.realpath(path))
            return gate

    def acquire(self, timeout: float = WRITE_WAIT_SECONDS) -> None:
        """Wait at most `timeout`, then fail as SQLite would ("database is locked"), so a
        request answers 503 instead of hanging behind a long purge."""
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked (write gate)")
        self._depth += 1
        if self._depth > 1:
            return
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._depth -= 1
                    self._lock.release()
                    raise sqlite3.OperationalError("database is locked (write gate)") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


class _GatedConnection(sqlite3.Connection):
    """Releases the write gate once its transaction has really committed or rolled back."""

    gate: _WriteGate | None = None
    holds_gate = False

    def release_gate(self) -> None:
        if self.holds_gate and self.gate is not None:
            self.holds_gate = False
            self.gate.release()

    def commit(self):
        try:
            return super().commit()
        finally:
            self.release_gate()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self.release_gate()

    def close(self):
        try:
            return super().close()
        finally:
            self.release_gate()


def _ensure_wal(cursor, tries: int = 100) -> None:
    """Switch to WAL once. Changing the journal mode can answer "database is locked" at once,
    without the busy handler, while other processes write; a process booting then (a gunicorn
    worker) must wait for its turn, not fail to boot."""
    for attempt in range(tries):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == tries - 1:
                raise
            time.sleep(0.1)


#: How often each process checkpoints the WAL of the stores it writes (see _Checkpointer).
CHECKPOINT_SECONDS = 0.25


class _Checkpointer:
    """Checkpoints the WAL of this process's SQLite engines off the request path.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages: one
    request in about sixty paid ~10 ms of copying and fsync, 40% of all commit time. The
    engines turn it off (`wal_autocheckpoint=0`) and one daemon thread per process runs a
    PASSIVE checkpoint every CHECKPOINT_SECONDS instead, which neither waits for nor blocks
    writers and readers. Engines are held weakly: a disposed, forgotten engine drops out."""

    _lock = threading.Lock()
    _engines: weakref.WeakSet = weakref.WeakSet()
    _pid: int | None = None

    @classmethod
    def watch(cls, engine) -> None:
        with cls._lock:
            cls._engines.add(engine)
            if cls._pid != os.getpid():  # first engine, or a forked child (gunicorn workers)
                cls._pid = os.getpid()
                threading.Thread(target=cls._run, name="sqlite-checkpoint", daemon=True).start()

    @classmethod
    def after_fork(cls) -> None:
        """In a forked child: a lock of the parent's may have been held; its thread is gone."""
        cls._lock, cls._pid = threading.Lock(), None
        engines = list(cls._engines)
        for engine in engines:
            cls.watch(engine)

    #: Held while the thread is inside SQLite: a fork waits for it (see _before_fork), or the
    #: child could inherit SQLite's mutexes held and hang at its first connection.
    busy = threading.Lock()

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(CHECKPOINT_SECONDS)
            with cls._lock:
                engines = list(cls._engines)
            with cls.busy:
                for engine in engines:
                    checkpoint(engine)
            del engines


def checkpoint(engine) -> None:
    """Copy what the WAL holds into the database as far as readers allow (PASSIVE)."""
    try:
        connection = engine.raw_connection()
    except Exception:  # a store going away is not this thread's business
        return
    try:
        connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        pass  # another process is checkpointing right now: the next round catches up
    finally:
        connection.close()


def _create_private(path: str) -> None:
    """Make the database file readable by its owner only before SQLite first opens it: SQLite
    then gives its -wal and -shm files the same mode."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def make(url: str):
    path = make_url(url).database or ""  # `sqlite://` and `sqlite:///:memory:` are in memory
    in_memory = not path or path == ":memory:"
    if not in_memory:
        _create_private(path)
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False, "factory": _GatedConnection}
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # SQLAlchemy's begin() emits our BEGIN (below) instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        # This process's gate: a forked child (gunicorn --preload) gets its own flock.
        dbapi_connection.gate = None if in_memory else _WriteGate.for_path(path)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not in_memory:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # _Checkpointer does it
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")  # a WAL reader: never blocks, never blocked
            return
        dbapi_connection = conn.connection.dbapi_connection
        gate = dbapi_connection.gate
        if gate is not None:
            gate.acquire()
            dbapi_connection.holds_gate = True
        try:
            # IMMEDIATE: take the write lock up front, so no transaction fails to upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.release_gate()
            raise

    if not in_memory:
        _Checkpointer.watch(engine)
        _FILE_ENGINES.add(engine)
    return engine


#: Engines on a SQLite file (not in memory, where every connection is a database of its own).
_FILE_ENGINES: weakref.WeakSet = weakref.WeakSet()


def is_file(engine) -> bool:
    """A SQLite store in a file: one writer at a time, behind the write gate."""
    return engine in _FILE_ENGINES


def _before_fork() -> None:
    """No thread of ours is inside SQLite (or making a write gate) while the process forks."""
    _Checkpointer.busy.acquire()
    _WriteGate._gates_lock.acquire()


def _after_fork_in_parent() -> None:
    _WriteGate._gates_lock.release()
    _Checkpointer.busy.release()


def _after_fork_in_child() -> None:
    _WriteGate._gates_lock = threading.Lock()
    _Checkpointer.busy = threading.Lock()
    _Checkpointer.after_fork()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)


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
