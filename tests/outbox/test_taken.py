"""A pull source's page stores its facts leased to the worker that polled it (`storing.Lease`):
due again only when that lease ends, so claims pass them by while they are sent, and due at
once when the worker gives them back unsent."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.contract import InboundEvent, PlannedDelivery
from connector.outbox.claims import claim, release
from connector.outbox.intake import ingest
from connector.outbox.storing import Lease
from connector.testing.store import stored_deliveries

LEASE = 60.0


def store_page(runtime, count: int = 3):
    at = datetime.now(UTC)
    facts = [
        (
            InboundEvent(f"row-{i}", "opened", at, "production", f"p{i}@example.com", {"n": i}),
            [("hook", PlannedDelivery("forward", {"n": i}, None))],
        )
        for i in range(count)
    ]
    taking = Lease("w1", LEASE, lambda partner, plan: True)
    return ingest(runtime.engine, "pulled", facts, lease=taking).leased


def test_taken_facts_are_due_when_their_lease_ends(runtime, clock):
    taken = store_page(runtime)
    assert [d.spec for d in taken] == [{"n": 0}, {"n": 1}, {"n": 2}]
    rows = stored_deliveries(runtime)
    assert {(d["lease_owner"], d["next_attempt_at"]) for d in rows} == {("w1", clock() + LEASE)}
    assert claim(runtime.engine, "w2", 10, LEASE) == []
    clock.advance(LEASE - 1)
    assert claim(runtime.engine, "w2", 10, LEASE) == []
    clock.advance(2)  # w1 died with them: another worker sends them
    assert sorted(d.id for d in claim(runtime.engine, "w2", 10, LEASE)) == sorted(d.id for d in taken)


def test_taken_facts_given_back_are_due_at_once(runtime, clock):
    taken = store_page(runtime)
    clock.advance(1)
    release(runtime.engine, "w1", [d.id for d in taken[:2]])
    due = {d["id"]: d["next_attempt_at"] for d in stored_deliveries(runtime)}
    assert due == {taken[0].id: clock(), taken[1].id: clock(), taken[2].id: clock() - 1 + LEASE}
    assert sorted(d.id for d in claim(runtime.engine, "w2", 10, LEASE)) == [taken[0].id, taken[1].id]
