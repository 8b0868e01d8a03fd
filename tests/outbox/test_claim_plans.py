"""A claim's cost follows the page it claims, not the table: SQLite plans each of its reads of
`deliveries` on the index meant for it (the queue in claim order, each contact by its key),
with or without the statistics ANALYZE gathers, and never sorts the backlog."""

from __future__ import annotations

import pytest
from sqlalchemy import event, insert

from connector.outbox.claims import claim
from connector.outbox.engine import now
from connector.outbox.tables import deliveries, events

BACKLOG = 3000
IN_CLAIM_ORDER = "SEARCH deliveries USING INDEX ix_deliveries_due_order (next_attempt_at<?)"
BY_CONTACT = "SEARCH deliveries USING INDEX ix_deliveries_contact (contact_key=?)"
BY_ACTION = "SEARCH deliveries USING INDEX ix_deliveries_due_action (action=? AND next_attempt_at<?)"


def fill(engine, count: int) -> None:
    """`count` queued deliveries, one per contact, and as many finished ones before them."""
    at = now()
    with engine.begin() as conn:
        event_pk = conn.execute(
            insert(events).values(
                source_id="extole",
                event_id="e",
                type="opt_in",
                environment="production",
                email=None,
                event_time=0.0,
                received_at=at,
                payload="{}",
            )
        ).inserted_primary_key[0]
        rows = [
            {
                "event_pk": event_pk,
                "partner_id": "listrak",
                "action": "contact_subscription",
                "environment": "production",
                "partner_key_id": "listrak-production",
                "contact_key": f"listrak|production|1|c{i % count}@example.com",
                "event_time": float(i),
                "spec": "{}",
                "state": "queued" if i >= count else "delivered",
                "attempts": 0,
                "next_attempt_at": at - 2 * count + i if i >= count else None,
                "created_at": at,
                "updated_at": at,
            }
            for i in range(2 * count)
        ]
        conn.execute(insert(deliveries), rows)


def plans_of_claim(engine, claimed: int = 32, **claim_args) -> list[list[str]]:
    """The plan of every statement a claim of 32 runs that reads `deliveries`, as SQLite ran
    it (some run straight on the driver's cursor, past SQLAlchemy's events)."""
    reads = []

    def trace(dbapi_connection, _record):
        def seen(statement):
            if statement.lstrip().startswith("SELECT") and "FROM deliveries" in statement:
                reads.append(statement)

        dbapi_connection.set_trace_callback(seen)

    engine.dispose()
    event.listen(engine, "connect", trace)
    try:
        assert len(claim(engine, "w1", 32, 60.0, **claim_args)) == claimed
    finally:
        event.remove(engine, "connect", trace)
        engine.dispose()
    with engine.connect() as conn:
        return [
            [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")] for statement in reads
        ]


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
def test_claim_reads_the_queue_in_order_and_each_contact_by_its_key(engine, clock, analyzed):
    fill(engine, BACKLOG)
    if analyzed:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    # then one read per contact among the candidates (a claim of 32 weighs twice as many)
    assert plans_of_claim(engine) == [[IN_CLAIM_ORDER]] + [[BY_CONTACT]] * 64


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
def test_claim_of_some_actions_reads_each_of_them_in_order_past_the_others(engine, clock, analyzed):
    fill(engine, BACKLOG)  # none of them the actions claimed
    if analyzed:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    batchable = ["contact_fields", "profile_fields"]
    assert plans_of_claim(engine, claimed=0, actions=batchable) == [[BY_ACTION]] * 2
