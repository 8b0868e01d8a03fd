"""A PostgreSQL for the benchmarks (bench/): the project's own server script on a port and data
directory of its own, with fsync on (the test server runs with fsync off, which would flatter
PostgreSQL against SQLite's durable commits), and a fresh database per run."""

from __future__ import annotations

import os
import subprocess
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from connector.testing import ROOT

PORT, DATA = "55433", "/tmp/connector-pg-bench"


@contextmanager
def database():
    """Yield the URL of a new, empty database; it is dropped afterwards."""
    env = {**os.environ, "CONNECTOR_PG_PORT": PORT, "CONNECTOR_PG_DATA": DATA, "CONNECTOR_PG_FSYNC": "on"}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    server = done.stdout.strip().splitlines()[-1]
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.replace("/connector", "/postgres").replace("connector@", "postgres@"))
    with admin.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER connector'))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
