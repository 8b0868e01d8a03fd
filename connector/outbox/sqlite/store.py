"""SQLite's store: the engine and what its writers rely on. The write gate (one writer at a
time across threads and processes, woken the moment the last one commits), the WAL and its
checkpoint thread, and what a fork must do."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import create_engine, event, make_url

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


#: Each connection's page cache (SQLite's default is 2,000 KiB). A pull source's page is one
#: transaction of tens of MB: with the default cache SQLite spilled dirty pages to the WAL
#: mid-transaction and read index pages back, writing 7.8 KB and reading 7.1 KB per activity
#: event in 5.5 system calls; with 16 MiB, 5.8 KB and 2.8 KB in 3.0 (bench/activity.py's
#: pages). The cache grows only as a transaction needs it.
CACHE_KIB = 16_384

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
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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
