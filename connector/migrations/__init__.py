"""Schema migrations: Alembic, configured here (no alembic.ini), revisions in versions/.

Revision 0001 is the schema the connector had before migrations, so a database made then is
recognised and stamped, not recreated. Web and worker call `prepare`: an empty database gets
the whole schema, one at head starts, anything else is refused naming `connector db upgrade`.
That command is `upgrade`: idempotent, and it adopts a pre-migrations database.

Every check that may lead to a change runs under one lock per database, so processes starting
together (gunicorn workers, several workers) change the schema once: on PostgreSQL an advisory
lock, on SQLite the engine's write gate and BEGIN IMMEDIATE."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from connector.outbox.engine import reading
from connector.outbox.tables import metadata

SCRIPTS = Path(__file__).resolve().parent
SCHEMA_LOCK = 724311  # the advisory lock key create_all used before migrations

# What `metadata.create_all` made before migrations (revision 0001), by table.
BASELINE = "0001"
BASELINE_COLUMNS = {
    "events": {
        "id",
        "source_id",
        "event_id",
        "type",
        "environment",
        "email",
        "event_time",
        "received_at",
        "payload",
    },
    "deliveries": {
        "id",
        "event_pk",
        "partner_id",
        "action",
        "environment",
        "partner_key_id",
        "contact_key",
        "batch_key",
        "event_time",
        "spec",
        "state",
        "reason",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "lease_expires_at",
        "last_status",
        "last_error_code",
        "last_error_message",
        "last_latency_ms",
        "created_at",
        "updated_at",
    },
    "attempts": {
        "id",
        "delivery_id",
        "started_at",
        "outcome",
        "status",
        "error_code",
        "error_message",
        "latency_ms",
        "batch_size",
        "request",
        "response",
    },
    "breakers": {"scope", "state", "reason", "failures", "opened", "probe_at", "updated_at"},
}
# The core reshaped before migrations created `pollers` with create_all too (revision 0002).
POLLERS = "0002"


class SchemaError(Exception):
    """The database's schema is not the one this code needs (or cannot be told)."""


@dataclass(frozen=True)
class SchemaStatus:
    revision: str | None  # from alembic_version; None when it has none
    head: str
    tables: frozenset[str]  # the connector's tables present
    baseline: bool  # without a revision: the tables are the pre-migrations schema

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.tables

    @property
    def at_head(self) -> bool:
        return self.revision == self.head

    @property
    def known(self) -> bool:
        return self.revision is None or self.revision in _revisions()

    def describe(self) -> str:
        """The revision and where it stands, as `connector db current` prints it."""
        if self.at_head:
            return f"{self.revision} (head)"
        if self.empty:
            return f"none (empty database; head is {self.head})"
        if self.revision is None and self.baseline:
            return f"none (made before schema migrations; head is {self.head})"
        if self.revision is None:
            return f"none (unrecognised tables: {', '.join(sorted(self.tables))})"
        if not self.known:
            return f"{self.revision} (unknown to this code, whose head is {self.head})"
        return f"{self.revision} (behind head {self.head})"

    def problem(self) -> str:
        """Why web and worker refuse this database."""
        if self.revision is None and self.baseline:
            return "the database was made before schema migrations: run `connector db upgrade`"
        if self.revision is None:
            return (
                f"the database has some of the connector's tables ({', '.join(sorted(self.tables))})"
                " but neither a schema revision nor the schema from before migrations"
            )
        if not self.known:
            return (
                f"the database is at schema revision {self.revision}, which this code does not "
                f"know (its newest is {self.head}): it was upgraded by a newer connector"
            )
        return (
            f"the database is at schema revision {self.revision}, behind this code's "
            f"{self.head}: run `connector db upgrade`"
        )


def head() -> str:
    current = _scripts().get_current_head()
    assert current is not None, "the migrations have no head"  # versions/ ships with the code
    return current


def status(engine) -> SchemaStatus:
    with reading(engine) as conn:
        return _status(conn)


def prepare(engine) -> None:
    """At start-up: create the schema on an empty database, accept one at head, refuse the rest."""
    if status(engine).at_head:
        return
    with _schema_lock(engine) as conn:
        found = _status(conn)  # again: another process may have changed it meanwhile
        if found.empty:
            command.upgrade(_config(conn), "head")
        elif not found.at_head:
            raise SchemaError(f"cannot start: {found.problem()}")


def upgrade(engine, revision: str = "head") -> SchemaStatus:
    """Bring the database to `revision`; returns the status found before."""
    with _schema_lock(engine) as conn:
        found = _status(conn)
        if not found.known:
            raise SchemaError(f"cannot upgrade: {found.problem()}")
        if found.revision is None and found.tables:
            if not found.baseline:
                raise SchemaError(f"cannot upgrade: {found.problem()}")
            command.stamp(_config(conn), POLLERS if "pollers" in found.tables else BASELINE)
        command.upgrade(_config(conn), revision)
        return found


@contextmanager
def _schema_lock(engine):
    """A write transaction that one process at a time holds for this database."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        yield conn


def _status(conn) -> SchemaStatus:
    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    revision = MigrationContext.configure(conn).get_current_revision()
    baseline = revision is None and all(
        table in present
        and BASELINE_COLUMNS[table] == {column["name"] for column in inspector.get_columns(table)}
        for table in BASELINE_COLUMNS
    )
    return SchemaStatus(
        revision=revision, head=head(), tables=frozenset(present & set(metadata.tables)), baseline=baseline
    )


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(SCRIPTS))


@cache
def _revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def _config(conn) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config
