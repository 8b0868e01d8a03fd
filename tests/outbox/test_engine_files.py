"""The SQLite store's files are readable by their owner only: the database, its WAL and
shared-memory files, and the write gate's lock file (connector/outbox/sqlite/store.py)."""

from __future__ import annotations

import os
import stat

from sqlalchemy import text

from connector.outbox.engine import make_engine


def test_database_files_are_created_with_mode_0600(tmp_path):
    previous = os.umask(0o002)
    try:
        engine = make_engine(f"sqlite:///{tmp_path}/var/store.db")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (a INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "var").iterdir()}
    assert modes == {
        name: 0o600 for name in ("store.db", "store.db-wal", "store.db-shm", "store.db.writelock")
    }
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
