"""The request path's write transaction keeps one connection per thread and process for each
store, out of the pool: never shared between threads, never used by a forked child, replaced
after an error."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from connector.outbox.engine import make_engine
from connector.outbox.statements import writing
from connector.outbox.tables import metadata, seen_events


def insert(engine, event_id: str):
    with writing(engine) as conn:
        conn.connection.dbapi_connection.execute(
            "INSERT INTO seen_events (source_id, event_id, received_at) VALUES ('s', ?, 0)", (event_id,)
        )
        return conn.connection.dbapi_connection


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/store.db")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(seen_events)).scalar()


def test_a_thread_keeps_its_connection_and_another_thread_gets_its_own(engine):
    first, again = insert(engine, "a"), insert(engine, "b")
    other = []
    thread = threading.Thread(target=lambda: other.append(insert(engine, "c")))
    thread.start()
    thread.join()
    assert first is again
    assert other[0] is not first
    assert count(engine) == 3


def test_a_forked_child_opens_its_own_connection(engine):
    parent = insert(engine, "before the fork")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child; its exit status is the verdict
        ok = insert(engine, "in the child") is not parent
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert insert(engine, "after the fork") is parent
    assert count(engine) == 3


def test_after_an_error_the_next_transaction_opens_a_new_connection(engine, monkeypatch):
    broken = insert(engine, "a")
    real = broken.execute

    def fail_once(sql, *args):
        if sql == "BEGIN IMMEDIATE":
            monkeypatch.setattr(broken, "execute", real)
            raise sqlite3.OperationalError("disk I/O error")
        return real(sql, *args)

    monkeypatch.setattr(broken, "execute", fail_once)
    with pytest.raises(OperationalError):
        insert(engine, "b")
    assert insert(engine, "c") is not broken
    assert count(engine) == 2
