"""`connector db upgrade` and `connector db current`: the store's schema revision. They need
only the database URL ($CONNECTOR_DATABASE_URL or --database-url), never a config directory."""

from __future__ import annotations

import sys

from connector import migrations
from connector.outbox.engine import default_database_url, make_engine


def register(subparsers) -> None:
    parser = subparsers.add_parser("db", help="schema migrations of the store")
    commands = parser.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    for name, run, help_text in (
        ("upgrade", upgrade, "bring the schema to this code's revision (safe to run again)"),
        ("current", current, "print the schema's revision and whether it is the head"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--database-url", dest="db_url", help="SQLAlchemy URL (default $CONNECTOR_DATABASE_URL)"
        )
        command.set_defaults(func=run)


def _engine(args):
    return make_engine(args.db_url or args.database_url or default_database_url())


def upgrade(args) -> int:
    engine = _engine(args)
    try:
        found = migrations.upgrade(engine)
    except migrations.SchemaError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if found.at_head:
        print(f"schema already at head {found.head}")
    elif found.empty:
        print(f"created the schema at {found.head}")
    else:
        print(f"upgraded the schema from {found.revision or 'before migrations'} to {found.head}")
    return 0


def current(args) -> int:
    engine = _engine(args)
    try:
        print(migrations.status(engine).describe())
    finally:
        engine.dispose()
    return 0
