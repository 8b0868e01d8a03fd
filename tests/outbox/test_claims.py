"""Claiming under a lease: expiry and re-claim, one delivery per contact in flight, earlier
changes first, and the breakers that hold back a paused key or an open circuit."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, update

from connector.contract import Attempt, CircuitScope, Result
from connector.outbox import attempts as outbox_attempts
from connector.outbox import breakers as outbox_breakers
from connector.outbox.breakers import BreakerPolicy
from connector.outbox.claims import claim
from connector.outbox.engine import dumps, now
from connector.outbox.tables import breakers, deliveries, events
from tests.store_rows import stored_attempts, stored_breakers, stored_deliveries

LEASE = 60.0


@pytest.fixture
def engine(runtime):
    return runtime.engine


@pytest.fixture
def add(engine):
    """Insert a delivery directly, due now unless told otherwise; returns its id."""
    with engine.begin() as conn:
        event_pk = conn.execute(insert(events).values(
            source_id="extole", event_id="e", type="opt_in", environment="production",
            email="x@example.com", event_time=0.0, received_at=now(), payload="{}")
        ).inserted_primary_key[0]

    def add_delivery(contact: str | None = "c1", event_time: float = 100.0, **values) -> int:
        row = {"event_pk": event_pk, "partner_id": "listrak", "action": "contact_subscription",
               "environment": "production", "partner_key_id": "listrak-production",
               "contact_key": contact, "batch_key": None, "event_time": event_time,
               "spec": dumps({"contact": contact}), "state": "queued", "attempts": 0,
               "next_attempt_at": now() - 1, "created_at": now(), "updated_at": now()}
        row.update(values)
        with engine.begin() as conn:
            return conn.execute(insert(deliveries).values(**row)).inserted_primary_key[0]

    return add_delivery


def record(engine, owner: str, results: list[Result], attempt: dict) -> int:
    attempt = Attempt(**attempt)
    return outbox_attempts.record_many(engine, owner, [(results, attempt)])


def ids(claimed) -> list[int]:
    return [c.id for c in claimed]


def by_id(runtime, delivery_id: int) -> dict:
    return next(d for d in stored_deliveries(runtime) if d["id"] == delivery_id)


def set_breaker(engine, scope, state: str, probe_at: float, opened: int = 1) -> None:
    with engine.begin() as conn:
        conn.execute(insert(breakers).values(scope=str(scope), state=state, reason="test",
                                             failures=1, opened=opened, probe_at=probe_at,
                                             updated_at=now()))


# -- leases ----------------------------------------------------------------------------------------

def test_claim_leases_due_deliveries_to_the_owner(engine, add, runtime):
    first, second = add("a"), add("b")
    before = now()
    claimed = claim(engine, "w1", 10, LEASE)
    assert ids(claimed) == [first, second]
    assert claimed[0].spec == {"contact": "a"}
    row = by_id(runtime, first)
    assert row["lease_owner"] == "w1"
    assert before + LEASE <= row["lease_expires_at"] <= now() + LEASE


def test_leased_deliveries_are_not_claimed_again(engine, add):
    add("a")
    assert len(claim(engine, "w1", 10, LEASE)) == 1
    assert claim(engine, "w2", 10, LEASE) == []


def test_not_yet_due_and_finished_deliveries_are_not_claimed(engine, add):
    add("a", next_attempt_at=now() + 60)
    add("b", state="delivered", next_attempt_at=None)
    add("c", state="dead", next_attempt_at=None)
    add("d", state="skipped", next_attempt_at=None)
    add("e", state="superseded", next_attempt_at=None)
    assert claim(engine, "w1", 10, LEASE) == []


def test_claim_respects_the_limit_in_due_order(engine, add):
    late = add("a", next_attempt_at=now() - 1)
    early = add("b", next_attempt_at=now() - 100)
    add("c", next_attempt_at=now() - 0.5)
    assert ids(claim(engine, "w1", 2, LEASE)) == [early, late]


def test_expired_lease_is_claimed_again(engine, add):
    delivery = add("a")
    assert ids(claim(engine, "w1", 10, 0.05)) == [delivery]
    time.sleep(0.1)
    assert ids(claim(engine, "w2", 10, LEASE)) == [delivery]


def test_owner_whose_lease_was_taken_over_cannot_record(engine, add, runtime):
    delivery = add("a")
    claim(engine, "w1", 10, 0.05)
    time.sleep(0.1)
    claim(engine, "w2", 10, LEASE)
    assert record(engine, "w1", [Result(delivery, "dead", "late answer")],
                  {"started_at": now()}) == 0
    row = by_id(runtime, delivery)
    assert (row["state"], row["lease_owner"], row["attempts"]) == ("queued", "w2", 0)
    assert record(engine, "w2", [Result(delivery, "delivered")],
                  {"started_at": now(), "status": 201}) == 1
    row = by_id(runtime, delivery)
    assert (row["state"], row["lease_owner"], row["attempts"], row["last_status"]) == (
        "delivered", None, 1, 201)


def test_record_logs_each_attempt(engine, add, runtime):
    delivery = add("a")
    claim(engine, "w1", 10, LEASE)
    record(engine, "w1", [Result(delivery, "retrying", "HTTP 503", now() + 10)],
           {"started_at": now(), "status": 503, "latency_ms": 12.5,
            "request": {"method": "POST"}, "response": {"status": 503}})
    (attempt,) = stored_attempts(runtime)
    assert (attempt["delivery_id"], attempt["outcome"], attempt["status"],
            attempt["error_message"], attempt["latency_ms"]) == (
        delivery, "retrying", 503, "HTTP 503", 12.5)
    assert attempt["request"] == {"method": "POST"}


def test_paused_result_does_not_count_an_attempt(engine, add, runtime):
    delivery = add("a")
    claim(engine, "w1", 10, LEASE)
    record(engine, "w1", [Result(delivery, "paused", "key refused", now(), count_attempt=False)],
           {"started_at": now()})
    assert by_id(runtime, delivery)["attempts"] == 0


# -- one per contact, in order ---------------------------------------------------------------------

def test_one_delivery_per_contact_per_claim(engine, add, runtime):
    first = add("a", event_time=100.0)
    second = add("a", event_time=100.0)  # same time, later arrival: it wins the tie
    other = add("b")
    assert ids(claim(engine, "w1", 10, LEASE)) == [second, other]
    assert by_id(runtime, first)["state"] == "superseded"


def test_older_in_flight_delivery_blocks_a_newer_one_for_the_same_contact(engine, add, runtime):
    older = add("a", event_time=100.0)
    assert ids(claim(engine, "w1", 10, LEASE)) == [older]
    newer = add("a", event_time=200.0)
    other = add("b", event_time=50.0)
    assert ids(claim(engine, "w2", 10, LEASE)) == [other]
    record(engine, "w1", [Result(older, "delivered")], {"started_at": now()})
    assert ids(claim(engine, "w2", 10, LEASE)) == [newer]


def test_newer_delivery_is_not_held_back_by_a_failed_older_one(engine, add, runtime):
    older = add("a", event_time=100.0)
    claim(engine, "w1", 10, LEASE)
    newer = add("a", event_time=200.0)
    record(engine, "w1", [Result(older, "retrying", "HTTP 503", now() + 3600)],
           {"started_at": now()})
    assert ids(claim(engine, "w2", 10, LEASE)) == [newer]
    assert by_id(runtime, older)["state"] == "superseded"


def test_due_older_delivery_is_superseded_when_a_newer_one_exists(engine, add, runtime):
    older = add("a", event_time=100.0, state="retrying")
    newer = add("a", event_time=200.0, next_attempt_at=now() + 60)
    assert claim(engine, "w1", 10, LEASE) == []
    row = by_id(runtime, older)
    assert (row["state"], row["next_attempt_at"]) == ("superseded", None)
    assert by_id(runtime, newer)["state"] == "queued"


def test_older_delivery_after_a_delivered_newer_one_is_superseded(engine, add, runtime):
    add("a", event_time=200.0, state="delivered", next_attempt_at=None)
    older = add("a", event_time=100.0)
    assert claim(engine, "w1", 10, LEASE) == []
    assert by_id(runtime, older)["state"] == "superseded"


def test_unordered_deliveries_are_claimed_together(engine, add):
    first, second = add(None), add(None)
    assert ids(claim(engine, "w1", 10, LEASE)) == [first, second]


# -- breakers --------------------------------------------------------------------------------------

def test_paused_key_is_excluded_until_its_probe(engine, add):
    add("a")
    staging = add("b", partner_key_id="listrak-staging", environment="staging")
    set_breaker(engine, "key:listrak-production", "paused", probe_at=now() + 60)
    assert ids(claim(engine, "w1", 10, LEASE)) == [staging]


def test_one_probe_when_a_paused_key_is_due(engine, add, runtime):
    first, _second, _third = add("a"), add("b"), add("c")
    set_breaker(engine, "key:listrak-production", "paused", probe_at=now() - 1, opened=1)
    before = now()
    assert ids(claim(engine, "w1", 10, LEASE)) == [first]
    (breaker,) = stored_breakers(runtime)
    assert breaker["opened"] == 2
    assert breaker["probe_at"] >= before + BreakerPolicy().interval(2)
    assert claim(engine, "w2", 10, LEASE) == []


def test_probe_interval_doubles_up_to_the_cap():
    policy = BreakerPolicy(probe_interval=15, max_probe_interval=100)
    assert [policy.interval(n) for n in (1, 2, 3, 4)] == [15, 30, 60, 100]


def test_open_circuit_holds_back_only_its_partner_and_key(engine, add):
    add("a")
    staging = add("b", partner_key_id="listrak-staging", environment="staging")
    other_partner = add("c", partner_id="segment")
    set_breaker(engine, CircuitScope("listrak", "listrak-production"), "open",
                probe_at=now() + 60)
    assert ids(claim(engine, "w1", 10, LEASE)) == [staging, other_partner]


def test_one_probe_when_an_open_circuit_is_due(engine, add):
    first = add("a")
    add("b")
    set_breaker(engine, CircuitScope("listrak", "listrak-production"), "open",
                probe_at=now() - 1)
    assert ids(claim(engine, "w1", 10, LEASE)) == [first]
    assert claim(engine, "w1", 10, LEASE) == []


def test_trip_opens_at_the_threshold_and_reset_closes(engine, runtime):
    scope = CircuitScope("listrak", "listrak-production")
    policy = BreakerPolicy(threshold=3)
    assert [outbox_breakers.trip(engine, scope, "open", "HTTP 503", 3, policy) for _ in range(3)] == [
        False, False, True]
    (breaker,) = stored_breakers(runtime)
    assert (breaker["state"], breaker["failures"]) == ("open", 3)
    assert breaker["probe_at"] == pytest.approx(now() + policy.probe_interval, abs=2)
    outbox_breakers.reset(engine, [scope])
    assert stored_breakers(runtime) == []


def test_paused_key_probe_is_claimed_by_the_worker_and_recorded(engine, add, runtime):
    delivery = add("a", state="paused")
    set_breaker(engine, "key:listrak-production", "paused", probe_at=now() - 1)
    (probe,) = claim(engine, "w1", 10, LEASE)
    assert (probe.id, probe.state) == (delivery, "paused")
    with engine.begin() as conn:
        conn.execute(update(deliveries).values(next_attempt_at=now() - 1))
    assert claim(engine, "w1", 10, LEASE) == []
