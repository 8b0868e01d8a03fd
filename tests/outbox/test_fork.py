"""A process forked after the engine was made (gunicorn --preload builds the app before it
forks its workers) uses connections, a write gate and a checkpoint thread of its own."""

from __future__ import annotations

import os
import threading

from sqlalchemy import func, insert, select

from connector.outbox.engine import make_engine
from connector.outbox.sqlite import store as outbox_sqlite
from connector.outbox.tables import metadata, seen_events


def write(engine, event_id: str):
    with engine.begin() as conn:
        conn.execute(insert(seen_events).values(source_id="s", event_id=event_id, received_at=0.0))
        return conn.connection.dbapi_connection


def test_a_forked_child_writes_through_its_own_connection_gate_and_checkpoint_thread(tmp_path):
    path = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    parent_gate = write(engine, "before the fork").gate
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child; its exit status is the verdict
        status = 1
        try:
            gate = write(engine, "in the child").gate
            own_gate = gate is not parent_gate and gate is outbox_sqlite._WriteGate.for_path(str(path))
            checkpointing = any(t.name == "sqlite-checkpoint" for t in threading.enumerate())
            status = 0 if own_gate and checkpointing else 3
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    write(engine, "after the child")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(seen_events)).scalar() == 3
    engine.dispose()


def test_a_fork_waits_while_the_checkpoint_thread_is_inside_sqlite():
    """A child forked while another thread holds SQLite's mutexes would hang at its first
    connection: the fork waits for the checkpoint thread to leave SQLite."""
    inside, leave, order = threading.Event(), threading.Event(), []

    def checkpointing():
        with outbox_sqlite._Checkpointer.busy:
            inside.set()
            leave.wait(5)
            order.append("left SQLite")

    thread = threading.Thread(target=checkpointing)
    thread.start()
    inside.wait(5)
    threading.Timer(0.2, leave.set).start()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only exits
        os._exit(0)
    order.append("forked")
    thread.join()
    assert os.waitpid(child, 0)[1] == 0
    assert order == ["left SQLite", "forked"]
