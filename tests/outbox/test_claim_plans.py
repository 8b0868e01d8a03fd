"""A claim's cost follows the page it claims, not the table: SQLite plans each of its reads of
`deliveries` on the index meant for it (the queue in claim order, each contact by its key),
with or without the statistics ANALYZE gathers, and never sorts the backlog."""

from __future__ import annotations

import pytest
from sqlalchemy import event, insert

from connector.contract import KeyScope
from connector.outbox.claims import claim
from connector.outbox.engine import now
from connector.outbox.tables import deliveries, events
from tests.outbox.rows import set_breaker

BACKLOG = 3000
IN_CLAIM_ORDER = "SEARCH deliveries USING INDEX ix_deliveries_due_order (next_attempt_at<?)"
BY_CONTACT = "SEARCH deliveries USING INDEX ix_deliveries_contact (contact_key=?)"
BY_ACTION = "SEARCH deliveries USING INDEX ix_deliveries_due_action (action=? AND next_attempt_at<?)"
BY_LANE = (
    "SEARCH deliveries USING INDEX ix_deliveries_lane "
    "(partner_id=? AND partner_key_id=? AND action=? AND next_attempt_at<?)"
)
SEEK_LANE = "SEARCH deliveries USING COVERING INDEX ix_deliveries_lane ({})".format
# One seek per (partner, key, action) in the table (the first lane's scan stops at its first row).
LANES = [
    "CO-ROUTINE lanes",
    "SETUP",
    "SEARCH lane_row USING INTEGER PRIMARY KEY (rowid=?)",
    "SCALAR SUBQUERY 1",
    "SCAN deliveries USING COVERING INDEX ix_deliveries_lane",
    "RECURSIVE STEP",
    "SCAN lanes",
    "SEARCH lane_row USING INTEGER PRIMARY KEY (rowid=?)",
    "CORRELATED SCALAR SUBQUERY 3",
    SEEK_LANE("partner_id=? AND partner_key_id=? AND action>?"),
    "CORRELATED SCALAR SUBQUERY 4",
    SEEK_LANE("partner_id=? AND partner_key_id=? AND action>?"),
    "CORRELATED SCALAR SUBQUERY 5",
    SEEK_LANE("partner_id=? AND partner_key_id>?"),
    "CORRELATED SCALAR SUBQUERY 6",
    SEEK_LANE("partner_id=? AND partner_key_id>?"),
    "CORRELATED SCALAR SUBQUERY 7",
    SEEK_LANE("partner_id>?"),
    "SCAN lanes",
]


def fill(
    engine, count: int, partner_id: str = "listrak", partner_key_id: str | None = "listrak-production"
) -> None:
    """`count` queued deliveries, one per contact, and as many finished ones before them."""
    at = now()
    with engine.begin() as conn:
        event_pk = conn.execute(
            insert(events).values(
                source_id="extole",
                event_id=f"e-{partner_id}",
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
                "partner_id": partner_id,
                "action": "contact_subscription",
                "environment": "production",
                "partner_key_id": partner_key_id,
                "contact_key": f"{partner_id}|production|1|c{i % count}@example.com",
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
            if statement.lstrip().startswith(("SELECT", "WITH")) and "FROM deliveries" in statement:
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
    # A look for anything due (a read, before any write transaction), the claim's own read,
    # then one read per contact of the candidates it takes (its spare ones are read only if
    # some of these are left out)
    assert plans_of_claim(engine) == [[IN_CLAIM_ORDER]] * 2 + [[BY_CONTACT]] * 32


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
def test_claim_of_some_actions_reads_each_of_them_in_order_past_the_others(engine, clock, analyzed):
    fill(engine, BACKLOG)  # none of them the actions claimed
    if analyzed:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    batchable = ["contact_fields", "profile_fields"]
    assert plans_of_claim(engine, claimed=0, actions=batchable) == [[IN_CLAIM_ORDER]] + [[BY_ACTION]] * 2


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
def test_claim_behind_a_paused_key_reads_the_other_lanes_past_its_backlog(engine, clock, analyzed):
    fill(engine, BACKLOG)  # due first, all of it behind the paused key
    fill(engine, 40, partner_id="segment", partner_key_id=None)
    set_breaker(engine, KeyScope("listrak-production"), "paused", probe_at=clock.at + 60)
    if analyzed:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    assert plans_of_claim(engine) == [[IN_CLAIM_ORDER], LANES, [BY_LANE]] + [[BY_CONTACT]] * 32
