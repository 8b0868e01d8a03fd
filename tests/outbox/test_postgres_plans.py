"""On PostgreSQL, claims and intake price scans and sorts out of their transactions
(`consent.indexes_only`); a statement that still needs one must not then cost enough to be
JIT-compiled (~28 ms each time: intake fell from ~700 to 80 requests/s)."""

from __future__ import annotations

from connector.outbox import consent
from connector.outbox.engine import make_engine
from connector.outbox.tables import metadata


def test_the_contact_locks_run_without_jit_after_indexes_only(postgres_url):
    engine = make_engine(postgres_url)
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            consent.indexes_only(conn)
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE) "  # JIT, when used, is listed after the plan
                "SELECT count(pg_advisory_xact_lock(hashtext(k))) "
                "FROM (SELECT unnest(CAST(ARRAY['b', 'a'] AS text[])) AS k ORDER BY k) AS s"
            ).scalars()
            lines = list(plan)
        assert lines[0].startswith("Aggregate")
        assert not [line for line in lines if line.lstrip().startswith("JIT")], lines
    finally:
        engine.dispose()
