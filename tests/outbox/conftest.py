"""Outbox fixtures: the runtime's engine on a stopped clock, and deliveries inserted directly."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from connector.outbox.engine import dumps, now
from connector.outbox.tables import deliveries, events


@pytest.fixture
def engine(runtime, clock):
    return runtime.engine


@pytest.fixture
def add(engine):
    """Insert a delivery directly, due now unless told otherwise; returns its id."""
    with engine.begin() as conn:
        event_pk = conn.execute(
            insert(events).values(
                source_id="extole",
                event_id="e",
                type="opt_in",
                environment="production",
                email="x@example.com",
                event_time=0.0,
                received_at=now(),
                payload="{}",
            )
        ).inserted_primary_key[0]

    def add_delivery(contact: str | None = "c1", event_time: float = 100.0, **values) -> int:
        row = {
            "event_pk": event_pk,
            "partner_id": "listrak",
            "action": "contact_subscription",
            "environment": "production",
            "partner_key_id": "listrak-production",
            "contact_key": contact,
            "batch_key": None,
            "event_time": event_time,
            "spec": dumps({"contact": contact}),
            "state": "queued",
            "attempts": 0,
            "next_attempt_at": now() - 1,
            "created_at": now(),
            "updated_at": now(),
        }
        row.update(values)
        with engine.begin() as conn:
            return conn.execute(insert(deliveries).values(**row)).inserted_primary_key[0]

    return add_delivery
