"""The WAL is checkpointed off the request path: no commit checkpoints (SQLite's automatic
checkpoint is off), and each process's checkpoint thread copies what commits wrote into the
database file."""

from __future__ import annotations

import os

from sqlalchemy import insert

from connector.outbox.engine import make_engine
from connector.outbox.sqlite import store as outbox_sqlite
from connector.outbox.tables import metadata, seen_events
from connector.testing import wait_until

ROWS = 3000  # commits of two pages or more each
PAGE = 4096


def write(engine, start: int) -> None:
    for i in range(start, start + ROWS):
        with engine.begin() as conn:
            conn.execute(insert(seen_events).values(source_id="s", event_id=f"e{i:06}", received_at=0.0))


def test_commits_never_checkpoint_and_the_thread_does(tmp_path, monkeypatch):
    path = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    monkeypatch.setattr(outbox_sqlite, "checkpoint", lambda engine: None)  # the thread idles
    write(engine, 0)
    # SQLite would have restarted the WAL after its first 1,000 pages: it holds them all
    assert os.path.getsize(f"{path}-wal") > 1000 * PAGE
    size_before = os.path.getsize(path)
    monkeypatch.undo()
    wait_until(lambda: os.path.getsize(path) > size_before, message="the thread checkpointed")
    engine.dispose()
