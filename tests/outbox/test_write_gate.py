"""The SQLite write gate (connector/outbox/sqlite/store.py) with several processes: every short write
transaction gets its turn (none fails with "database is locked", none is lost), no two overlap,
and a writer that cannot get the gate in time fails as SQLite would."""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from connector.outbox.engine import make_engine
from connector.outbox.sqlite.store import _WriteGate

WRITERS = 4
WRITES = 60


def _write_many(url: str, writer: int, writes: int, start, errors) -> None:
    """In a child process: `writes` transactions, each bumping the counter and recording its
    own (start, end) inside the transaction."""
    engine = make_engine(url)
    with engine.connect():
        pass  # connected (WAL checked) before the race starts
    start.wait(60)
    for n in range(writes):
        try:
            with engine.begin() as conn:
                began = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for all processes
                conn.execute(text("UPDATE counter SET value = value + 1"))
                conn.execute(
                    text("INSERT INTO spans (writer, n, began, ended) VALUES (:writer, :n, :began, :ended)"),
                    {"writer": writer, "n": n, "began": began, "ended": time.monotonic_ns()},
                )
        except Exception as exc:  # reported to the test, which fails naming it
            errors.put(f"writer {writer}, write {n}: {exc!r}")
    engine.dispose()


def _hold_gate(url: str, holding, release) -> None:
    """In a child process: hold a write transaction open until told to let go."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE counter SET value = value + 1"))
        holding.set()
        release.wait(60)
    engine.dispose()


@pytest.fixture
def database(tmp_path) -> tuple[str, str]:
    """(url, path) of an SQLite file with a counter row and an empty spans table."""
    path = str(tmp_path / "gate.db")
    url = f"sqlite:///{path}"
    engine = make_engine(url)  # the parent uses the gate too: a forked child must not share it
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (value INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
        conn.execute(
            text(
                "CREATE TABLE spans (writer INTEGER, n INTEGER, began INTEGER, "
                "ended INTEGER, PRIMARY KEY (writer, n))"
            )
        )
    engine.dispose()
    return url, path


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_writers_in_several_processes_take_turns_and_lose_nothing(database, start_method):
    url, _ = database
    context = multiprocessing.get_context(start_method)
    start, errors = context.Barrier(WRITERS), context.Queue()
    writers = [
        context.Process(target=_write_many, args=(url, w, WRITES, start, errors)) for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
    assert [p.exitcode for p in writers] == [0] * WRITERS
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []

    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM counter")).scalar() == WRITERS * WRITES
        spans = conn.execute(text("SELECT writer, n, began, ended FROM spans ORDER BY began")).all()
    engine.dispose()
    assert sorted((w, n) for w, n, _, _ in spans) == [(w, n) for w in range(WRITERS) for n in range(WRITES)]
    overlapping = [
        (earlier, later) for earlier, later in itertools.pairwise(spans) if later.began < earlier.ended
    ]
    assert overlapping == []


def test_acquire_gives_up_after_its_timeout_while_another_process_holds_the_gate(database):
    url, path = database
    context = multiprocessing.get_context("spawn")
    holding, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_gate, args=(url, holding, release))
    gate = _WriteGate.for_path(path)
    holder.start()
    try:
        assert holding.wait(60), "the other process never took the gate"
        with pytest.raises(sqlite3.OperationalError) as refused:
            gate.acquire(timeout=0.2)
        assert str(refused.value) == "database is locked (write gate)"
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0
    gate.acquire(timeout=30)  # free again once the holder committed
    gate.release()


def test_acquire_gives_up_after_its_timeout_while_another_thread_holds_the_gate(database):
    _, path = database
    gate = _WriteGate.for_path(path)
    holding, release = threading.Event(), threading.Event()

    def hold():
        gate.acquire(timeout=30)
        holding.set()
        release.wait(60)
        gate.release()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(60)
        with pytest.raises(sqlite3.OperationalError) as refused:
            gate.acquire(timeout=0.2)
        assert str(refused.value) == "database is locked (write gate)"
    finally:
        release.set()
        holder.join(60)
    gate.acquire(timeout=30)
    gate.release()
