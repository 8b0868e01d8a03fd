"""On PostgreSQL, claims and intake price scans and sorts out of their transactions
(`postgresql.indexes_only`); a statement that still needs one must not then cost enough to be
JIT-compiled (~28 ms each time: intake fell from ~700 to 80 requests/s). The statements
explained are the ones the project sends, caught on their way to the driver, never a copy."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from connector.outbox import breakers, postgresql
from connector.outbox.claims import claim
from connector.outbox.engine import make_engine
from connector.outbox.tables import metadata
from connector.records import KeyScope
from tests.outbox.test_claim_plans import fill

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


def test_the_claims_reads_use_the_partial_queue_indexes(engine):
    """The claim-order indexes hold pending deliveries only (`next_attempt_at IS NOT NULL`):
    PostgreSQL must read each claim's rows on one of them (their condition implied by the
    claim's `next_attempt_at <= …`), a held-back claim's lanes included, never a scan."""
    fill(engine, 50)
    reads: list[tuple[str, dict]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith(("SELECT", "WITH")) and "FROM deliveries" in statement:
            reads.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        assert len(claim(engine, "w1", 10, 60.0)) == 10
        assert claim(engine, "w1", 10, 60.0, actions=["contact_subscription"])
        breakers.trip(engine, KeyScope("another-key"), "paused", "refused")  # lane by lane now
        assert claim(engine, "w1", 10, 60.0)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    queue_reads = [(s, p) for s, p in reads if "next_attempt_at <=" in s]
    assert len(queue_reads) >= 4
    for statement, parameters in queue_reads:
        with engine.begin() as conn:
            postgresql.indexes_only(conn)
            plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
        assert "Seq Scan on deliveries" not in plan, plan
        assert (
            "ix_deliveries_due_order" in plan
            or "ix_deliveries_due_action" in plan
            or ("ix_deliveries_lane" in plan)
        ), plan
