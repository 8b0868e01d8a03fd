"""Engines for the outbox: SQLite by default (its WAL, write gate and checkpoints are
connector.outbox.sqlite's), PostgreSQL for several workers (claims use FOR UPDATE SKIP
LOCKED)."""

from __future__ import annotations

import os
import time
import weakref
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connector import jsontext
from connector.outbox import sqlite


def default_database_url() -> str:
    return os.environ.get("CONNECTOR_DATABASE_URL") or "sqlite:///var/connector.db"


def make_engine(url: str | None = None):
    url = url or default_database_url()
    if url.startswith("sqlite"):
        engine = sqlite.make(url)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    _ENGINES.add(engine)
    return engine


#: Every engine this process made, so that a forked child (gunicorn --preload builds the app,
#: and its engine, before forking its workers) never uses a connection its parent opened.
_ENGINES: weakref.WeakSet = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)  # the parent's connections stay the parent's


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def reading(engine):
    """A read-only connection: on SQLite a plain WAL read that neither waits for writers nor
    holds them up (the Live View, metrics and checks read through this)."""
    with engine.connect().execution_options(readonly=True) as conn:
        yield conn


def dialect_insert(dialect: str):
    """The INSERT with ON CONFLICT of this dialect ("postgresql" or "sqlite")."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


#: Compact JSON text for a column (connector.jsontext).
dumps = jsontext.dumps


def now() -> float:
    return time.time()
