"""Alembic's environment: migrations run on the connection that connector.migrations hands
over (already inside its transaction and schema lock), against the outbox's tables."""

from alembic import context

from connector.outbox.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through `connector db upgrade`, which opens the database")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
