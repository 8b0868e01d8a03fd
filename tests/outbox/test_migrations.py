"""Schema migrations: a database made before migrations (tests/fixtures/schema_0001_*.sql)
upgrades with its rows intact, web and worker create an empty schema and refuse one behind
the code, and the migrations' head is exactly the tables the code uses."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, delete, insert, inspect, select, text

from connector import migrations
from connector.cli import main
from connector.outbox.engine import make_engine, reading
from connector.outbox.tables import (
    attempts,
    breakers,
    consent_marks,
    deliveries,
    events,
    metadata,
    pollers,
    seen_events,
)
from connector.runtime import Runtime
from connector.testing import ROOT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HEAD = migrations.head()
ROWS = {
    events: {
        "id": 7,
        "source_id": "extole",
        "event_id": "e-7",
        "type": "opt_in",
        "environment": "production",
        "email": "jane@example.com",
        "event_time": 1.5,
        "received_at": 2.5,
        "payload": '{"event_id":"e-7"}',
    },
    deliveries: {
        "id": 11,
        "event_pk": 7,
        "partner_id": "listrak",
        "action": "contact_subscription",
        "environment": "production",
        "partner_key_id": "listrak-production",
        "contact_key": "listrak|production|12345|jane@example.com",
        "batch_key": None,
        "event_time": 1.5,
        "spec": "{}",
        "state": "retrying",
        "reason": "HTTP 503",
        "attempts": 1,
        "next_attempt_at": 12.0,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status": 503,
        "last_error_code": None,
        "last_error_message": "unavailable",
        "last_latency_ms": 42.0,
        "created_at": 2.5,
        "updated_at": 3.5,
    },
    attempts: {
        "id": 13,
        "delivery_id": 11,
        "started_at": 3.0,
        "outcome": "retrying",
        "status": 503,
        "error_code": None,
        "error_message": "unavailable",
        "latency_ms": 42.0,
        "batch_size": 1,
        "request": "{}",
        "response": "{}",
    },
    breakers: {
        "scope": "key:listrak-production",
        "state": "paused",
        "reason": "invalid_client",
        "failures": 2,
        "opened": 1,
        "probe_at": 60.0,
        "updated_at": 3.5,
    },
}


#: Columns later revisions added to ROWS' tables, as an upgraded row holds them.
ADDED = {events: {"warnings": None, "phone": None}, deliveries: {"superseded_by": None}}


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    """An empty database, once on each database the connector runs on."""
    return (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path}/store.db"
    )


def made_before_migrations(url: str):
    """A database with today's DDL from the fixture and a row in every table."""
    engine = make_engine(url)
    ddl = (FIXTURES / f"schema_0001_{engine.dialect.name}.sql").read_text()
    ddl = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in filter(str.strip, ddl.split(";")):
            conn.exec_driver_sql(statement)
        for table, row in ROWS.items():
            conn.execute(insert(table).values(**row))
    return engine


def stored(engine) -> dict:
    with reading(engine) as conn:
        return {table: [dict(r._mapping) for r in conn.execute(select(table))] for table in ROWS}


def db(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["db", *args])
    return code, out.getvalue().strip(), err.getvalue().strip()


def schema_of(engine) -> dict:
    """Every table's columns, keys and indexes as the database reports them."""
    with reading(engine) as conn:
        inspector = inspect(conn)
        return {
            table: {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"], fk["options"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], i["column_names"], bool(i["unique"])) for i in inspector.get_indexes(table)
                ),
                "unique": sorted(
                    (u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)
                ),
            }
            for table in sorted(inspector.get_table_names())
            if table != "alembic_version"
        }


def differences_from_code(engine) -> list:
    with reading(engine) as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_revision_0001_is_the_schema_from_before_migrations(empty_url):
    url = empty_url
    engine = made_before_migrations(url)
    before = schema_of(engine)
    metadata.drop_all(engine)
    migrations.upgrade(engine, "0001")
    assert schema_of(engine) == before
    assert sorted(before) == ["attempts", "breakers", "deliveries", "events"]


def test_upgrade_keeps_every_row_of_a_database_made_before_migrations(empty_url):
    url = empty_url
    engine = made_before_migrations(url)
    assert db("current", "--database-url", url) == (
        0,
        f"none (made before schema migrations; head is {HEAD})",
        "",
    )
    assert db("upgrade", "--database-url", url) == (
        0,
        f"upgraded the schema from before migrations to {HEAD}",
        "",
    )
    assert stored(engine) == {table: [row | ADDED.get(table, {})] for table, row in ROWS.items()}
    assert db("current", "--database-url", url) == (0, f"{HEAD} (head)", "")
    assert differences_from_code(engine) == []


def test_upgrade_remembers_the_stored_consent_and_event_ids(empty_url):
    url = empty_url
    engine = made_before_migrations(url)
    migrations.upgrade(engine)
    with reading(engine) as conn:
        assert [tuple(r) for r in conn.execute(select(consent_marks))] == [
            ("listrak|production|12345|jane@example.com", 1.5, 11, 3.5)
        ]
        ids = select(seen_events.c.source_id, seen_events.c.event_id, seen_events.c.received_at)
        assert [tuple(r) for r in conn.execute(ids)] == [("extole", "e-7", 2.5)]
        assert conn.execute(select(seen_events.c.payload)).scalars().all() == [None]  # planned already


def ids_after_deleting_the_newest(engine) -> dict:
    """Each table's next id after its newest row (the fixture's) is deleted."""

    def add(conn, table, **values):
        row = {k: v for k, v in (ROWS[table] | values).items() if k != "id"}
        return conn.execute(insert(table).values(**row)).inserted_primary_key[0]

    with engine.begin() as conn:
        for table in (attempts, deliveries, events):
            conn.execute(delete(table).where(table.c.id == ROWS[table]["id"]))
        event_pk = add(conn, events)
        delivery_id = add(conn, deliveries, event_pk=event_pk)
        attempt_id = add(conn, attempts, delivery_id=delivery_id)
    return {"events": event_pk, "deliveries": delivery_id, "attempts": attempt_id}


def test_sqlite_ids_are_never_reused_after_the_newest_row_is_deleted_once_upgraded(sqlite_url):
    engine = made_before_migrations(sqlite_url)
    migrations.upgrade(engine)
    assert ids_after_deleting_the_newest(engine) == {"events": 8, "deliveries": 12, "attempts": 14}


def test_sqlite_ids_are_never_reused_after_the_newest_row_is_deleted_on_a_new_database(sqlite_url):
    engine = make_engine(sqlite_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        for table in (events, deliveries, attempts):
            conn.execute(insert(table).values(**ROWS[table]))
    assert ids_after_deleting_the_newest(engine) == {"events": 8, "deliveries": 12, "attempts": 14}


def test_upgrade_adopts_a_database_whose_pollers_table_was_made_before_migrations(sqlite_url):
    engine = made_before_migrations(sqlite_url)
    # The table as it was before migrations: without the columns later revisions added.
    added_later = {"last_note", "summary"}
    before = Table("pollers", MetaData(), *(c._copy() for c in pollers.c if c.name not in added_later))
    with engine.begin() as conn:
        before.create(conn)
        conn.execute(insert(before).values(source_id="activity", cursor="c-9", updated_at=3.5))
    assert db("upgrade", "--database-url", sqlite_url) == (
        0,
        f"upgraded the schema from before migrations to {HEAD}",
        "",
    )
    with reading(engine) as conn:
        assert conn.execute(select(pollers.c.source_id, pollers.c.cursor)).all() == [("activity", "c-9")]
    assert db("current", "--database-url", sqlite_url) == (0, f"{HEAD} (head)", "")


def test_upgrade_twice_on_an_empty_sqlite_file_exits_0_both_times(sqlite_url, monkeypatch):
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", sqlite_url)
    assert db("upgrade") == (0, f"created the schema at {HEAD}", "")
    assert db("upgrade") == (0, f"schema already at head {HEAD}", "")
    assert db("current") == (0, f"{HEAD} (head)", "")


def test_upgrade_brings_a_database_at_0001_to_head(sqlite_url):
    migrations.upgrade(make_engine(sqlite_url), "0001")
    assert db("current", "--database-url", sqlite_url) == (0, f"0001 (behind head {HEAD})", "")
    assert db("upgrade", "--database-url", sqlite_url) == (0, f"upgraded the schema from 0001 to {HEAD}", "")
    assert db("current", "--database-url", sqlite_url) == (0, f"{HEAD} (head)", "")


def test_upgrade_refuses_a_database_with_only_some_of_the_tables(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        events.create(conn)
    code, out, err = db("upgrade", "--database-url", sqlite_url)
    assert (code, out) == (2, "")
    assert err == (
        "cannot upgrade: the database has some of the connector's tables (events) but "
        "neither a schema revision nor the schema from before migrations"
    )


def test_runtime_refuses_a_database_behind_the_code_naming_db_upgrade(config_dir, sqlite_url):
    migrations.upgrade(make_engine(sqlite_url), "0001")
    with pytest.raises(migrations.SchemaError) as refused:
        Runtime.build(str(config_dir), sqlite_url)
    assert str(refused.value) == (
        f"cannot start: the database is at schema revision 0001, behind "
        f"this code's {HEAD}: run `connector db upgrade`"
    )


def test_runtime_refuses_a_database_made_before_migrations(config_dir, sqlite_url):
    made_before_migrations(sqlite_url)
    with pytest.raises(migrations.SchemaError) as refused:
        Runtime.build(str(config_dir), sqlite_url)
    assert str(refused.value) == (
        "cannot start: the database was made before schema migrations: run `connector db upgrade`"
    )
    assert migrations.status(make_engine(sqlite_url)).revision is None


def upgraded_by_newer_code(url: str) -> None:
    engine = make_engine(url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))


def test_upgrade_refuses_a_database_upgraded_by_newer_code(sqlite_url):
    upgraded_by_newer_code(sqlite_url)
    assert db("upgrade", "--database-url", sqlite_url) == (
        2,
        "",
        f"cannot upgrade: the database is at schema revision 9999, which this code does not "
        f"know (its newest is {HEAD}): it was upgraded by a newer connector",
    )
    assert db("current", "--database-url", sqlite_url) == (
        0,
        f"9999 (unknown to this code, whose head is {HEAD})",
        "",
    )


def test_runtime_refuses_a_database_upgraded_by_newer_code(config_dir, sqlite_url):
    upgraded_by_newer_code(sqlite_url)
    with pytest.raises(migrations.SchemaError) as refused:
        Runtime.build(str(config_dir), sqlite_url)
    assert str(refused.value) == (
        f"cannot start: the database is at schema revision 9999, which "
        f"this code does not know (its newest is {HEAD}): it was upgraded "
        f"by a newer connector"
    )


def test_worker_exits_2_on_a_database_behind_the_code(config_dir, sqlite_url, capsys):
    migrations.upgrade(make_engine(sqlite_url), "0001")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config_dir), "--database-url", sqlite_url, "worker", "--once"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"cannot start: the database is at schema revision 0001, "
        f"behind this code's {HEAD}: run `connector db upgrade`\n"
    )


def test_first_start_on_an_empty_database_creates_the_whole_schema(config_dir, sqlite_url):
    runtime = Runtime.build(str(config_dir), sqlite_url)
    assert migrations.status(runtime.engine).revision == HEAD
    assert sorted(schema_of(runtime.engine)) == sorted(metadata.tables)


def test_in_memory_sqlite_gets_the_schema_and_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite://")
    migrations.prepare(engine)
    assert migrations.status(engine).revision == HEAD
    assert differences_from_code(engine) == []
    assert os.listdir(tmp_path) == []


def test_first_starts_at_once_create_the_schema_once(empty_url):
    url = empty_url
    starts = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from connector import migrations; "
                "from connector.outbox.engine import make_engine; "
                "migrations.prepare(make_engine(sys.argv[1]))",
                url,
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [(start.wait(timeout=120), start.stderr.read()) for start in starts]
    assert results == [(0, "")] * 6
    engine = make_engine(url)
    with reading(engine) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    assert differences_from_code(engine) == []


def test_migrations_head_matches_the_tables(empty_url):
    engine = make_engine(empty_url)
    migrations.upgrade(engine)
    assert differences_from_code(engine) == []


@pytest.mark.e2e
def test_gunicorn_refuses_to_boot_on_a_database_behind_the_code(tmp_path, sqlite_url):
    from connector.testing import example_env, free_port

    migrations.upgrade(make_engine(sqlite_url), "0001")
    env = {
        **os.environ,
        **example_env(),
        "CONNECTOR_CONFIG_DIR": str(ROOT / "config"),
        "CONNECTOR_DATABASE_URL": sqlite_url,
        "LISTRAK_AUTH_URL": "http://127.0.0.1:1/OAuth2/Token",
        "LISTRAK_API_URL": "http://127.0.0.1:1/email/v1",
        "LISTRAK_SMS_API_URL": "http://127.0.0.1:1/sms/v1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert (
        f"SchemaError: cannot start: the database is at schema revision 0001, behind this "
        f"code's {HEAD}: run `connector db upgrade`"
    ) in done.stderr


def test_0008_brings_back_the_ids_of_stored_events_a_purge_had_forgotten(sqlite_url):
    engine = made_before_migrations(sqlite_url)
    migrations.upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(delete(seen_events))
    migrations.upgrade(engine)
    with reading(engine) as conn:
        ids = select(seen_events.c.source_id, seen_events.c.event_id, seen_events.c.received_at)
        assert [tuple(r) for r in conn.execute(ids)] == [("extole", "e-7", 2.5)]


def test_0008_is_not_undone_while_accepted_events_wait_to_be_planned(sqlite_url):
    engine = made_before_migrations(sqlite_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(seen_events).values(source_id="extole", event_id="w-1", received_at=9.0, payload="{}")
        )
    with engine.begin() as conn:
        command.downgrade(migrations._config(conn), "0008")
    with engine.begin() as conn, pytest.raises(RuntimeError, match="wait to be planned"):
        command.downgrade(migrations._config(conn), "0007")
    assert migrations.status(engine).revision == "0008"


def test_0011_goes_down_to_0010_and_up_again(empty_url):
    url = empty_url
    engine = made_before_migrations(url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(migrations._config(conn), "0010")
    with reading(engine) as conn:
        assert {"warnings"} & {c["name"] for c in inspect(conn).get_columns("seen_events")} == set()
    migrations.upgrade(engine)
    assert differences_from_code(engine) == []


def test_0013_is_not_undone_while_accepted_events_with_a_number_wait_to_be_planned(sqlite_url):
    engine = made_before_migrations(sqlite_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        waiting = {"source_id": "extole", "event_id": "s-1", "received_at": 9.0, "payload": "{}"}
        conn.execute(insert(seen_events).values(**waiting, phone="15555555555"))
    with pytest.raises(RuntimeError, match="with a phone number wait to be planned"), engine.begin() as conn:
        command.downgrade(migrations._config(conn), "0012")
    assert migrations.status(engine).at_head
    with engine.begin() as conn:
        conn.execute(delete(seen_events).where(seen_events.c.event_id == "s-1"))
    with engine.begin() as conn:
        command.downgrade(migrations._config(conn), "0012")
    assert migrations.status(engine).revision == "0012"
    with reading(engine) as conn:
        assert "phone" not in {c["name"] for c in inspect(conn).get_columns("events")}
