"""On PostgreSQL, claims and intake price scans and sorts out of their transactions
(`postgresql.indexes_only`); a statement that still needs one must not then cost enough to be
JIT-compiled (~28 ms each time: intake fell from ~700 to 80 requests/s). The statements
explained are the ones the project sends, caught on their way to the driver, never a copy."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from connector.outbox import postgresql
from connector.outbox.engine import make_engine
from connector.outbox.tables import metadata

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url):
    engine = make_engine(postgres_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def sent_by(engine, step) -> list[tuple[str, dict]]:
    """The statements (and their parameters) `step(conn)` sends, as the driver receives them."""
    seen: list[tuple[str, dict]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    with engine.begin() as conn:
        event.listen(engine, "before_cursor_execute", keep)
        try:
            step(conn)
        finally:
            event.remove(engine, "before_cursor_execute", keep)
    return seen


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(lambda conn: postgresql.lock_contacts(conn, ["b", "a"]), id="intake waits for contacts"),
        pytest.param(lambda conn: postgresql.try_lock_contacts(conn, ["b", "a"]), id="claims try contacts"),
    ],
)
def test_the_contact_locks_run_without_jit_after_indexes_only(engine, step):
    (statement, parameters), *_ = sent_by(engine, step)
    assert "advisory_xact_lock" in statement
    with engine.begin() as conn:
        postgresql.indexes_only(conn)
        # JIT, when used, is listed after the plan.
        lines = list(conn.exec_driver_sql(f"EXPLAIN (ANALYZE) {statement}", parameters).scalars())
    assert not [line for line in lines if line.lstrip().startswith("JIT")], lines
