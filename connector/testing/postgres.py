"""A real PostgreSQL for the tests and the benchmarks: the project's own `scripts/postgres.sh`
(installed with apt-get if missing) and a new database per use, dropped afterwards.

The tests' server runs with fsync off (nothing to keep). The benchmarks' server (`bench_database`)
runs on a port and data directory of its own with fsync on, as a production server would: off, it
would flatter PostgreSQL against SQLite's durable commits."""

from __future__ import annotations

import os
import subprocess
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from connector.testing import ROOT

BENCH_SERVER = {
    "CONNECTOR_PG_PORT": "55433",
    "CONNECTOR_PG_DATA": "/tmp/connector-pg-bench",
    "CONNECTOR_PG_FSYNC": "on",
}


def start(**settings: str) -> str:
    """Start the server (if it is not running) and return its URL; `settings` are the script's
    CONNECTOR_PG_* variables."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/postgres.sh failed: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def database(server: str, prefix: str = "connector_test"):
    """Yield the URL of a new, empty database on `server`; it is dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_database():
    """A new database on the benchmarks' server (fsync on)."""
    return database(start(**BENCH_SERVER), prefix="bench")
