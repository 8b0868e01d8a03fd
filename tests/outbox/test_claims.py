"""Claiming under a lease: expiry and re-claim, one delivery per contact in flight, earlier
changes first, and the breakers that hold back a paused key or an open circuit."""

from __future__ import annotations

from sqlalchemy import update

from connector.contract import Attempt, CircuitScope, KeyScope, Result
from connector.outbox import attempts as outbox_attempts
from connector.outbox.breakers import BreakerPolicy
from connector.outbox.claims import claim, release
from connector.outbox.tables import deliveries
from connector.testing.store import after_planning, stored_breakers, stored_delivery
from tests.outbox.rows import ids, set_breaker

LEASE = 60.0


def record(engine, owner: str, results: list[Result], started_at: float) -> int:
    return outbox_attempts.record_many(engine, owner, [(results, Attempt(started_at))])


# -- leases ----------------------------------------------------------------------------------------


def test_claim_leases_due_deliveries_to_the_owner(engine, add, runtime, clock):
    first, second = add("a"), add("b")
    claimed = claim(engine, "w1", 10, LEASE)
    assert ids(claimed) == [first, second]
    assert claimed[0].spec == {"contact": "a"}
    assert claimed[0].leased_until == clock.at + LEASE
    row = stored_delivery(after_planning(runtime), first)
    assert (row["lease_owner"], row["lease_expires_at"]) == ("w1", clock.at + LEASE)


def test_leased_deliveries_are_not_claimed_again(engine, add):
    add("a")
    assert len(claim(engine, "w1", 10, LEASE)) == 1
    assert claim(engine, "w2", 10, LEASE) == []


def test_not_yet_due_and_finished_deliveries_are_not_claimed(engine, add, clock):
    add("a", next_attempt_at=clock.at + 60)
    add("b", state="delivered", next_attempt_at=None)
    add("c", state="dead", next_attempt_at=None)
    add("d", state="skipped", next_attempt_at=None)
    add("e", state="superseded", next_attempt_at=None)
    assert claim(engine, "w1", 10, LEASE) == []


def test_delivery_becomes_claimable_when_it_falls_due(engine, add, clock):
    later = add("a", next_attempt_at=clock.at + 60)
    clock.advance(59)
    assert claim(engine, "w1", 10, LEASE) == []
    clock.advance(1)
    assert ids(claim(engine, "w1", 10, LEASE)) == [later]


def test_claim_respects_the_limit_in_due_order(engine, add, clock):
    late = add("a", next_attempt_at=clock.at - 1)
    early = add("b", next_attempt_at=clock.at - 100)
    add("c", next_attempt_at=clock.at - 0.5)
    assert ids(claim(engine, "w1", 2, LEASE)) == [early, late]


def test_lease_holds_until_it_runs_out_then_another_owner_claims(engine, add, clock):
    delivery = add("a")
    assert ids(claim(engine, "w1", 10, LEASE)) == [delivery]
    clock.advance(LEASE)
    assert claim(engine, "w2", 10, LEASE) == []  # expires_at == now: still held
    clock.advance(0.001)
    assert ids(claim(engine, "w2", 10, LEASE)) == [delivery]


def test_released_deliveries_are_claimable_at_once_and_only_by_their_owner(engine, add, runtime):
    first, second = add("a"), add("b")
    claim(engine, "w1", 10, LEASE)
    release(engine, "w2", [first, second])  # not w2's to give back
    assert claim(engine, "w3", 10, LEASE) == []
    release(engine, "w1", [first])
    row = stored_delivery(after_planning(runtime), first)
    assert (row["state"], row["lease_owner"], row["lease_expires_at"], row["attempts"]) == (
        "queued",
        None,
        None,
        0,
    )
    assert ids(claim(engine, "w3", 10, LEASE)) == [first]


# -- one per contact, in order ---------------------------------------------------------------------


def test_one_delivery_per_contact_per_claim(engine, add, runtime):
    first = add("a", event_time=100.0)
    second = add("a", event_time=100.0)  # same time, later arrival: it wins the tie
    other = add("b")
    assert ids(claim(engine, "w1", 10, LEASE)) == [second, other]
    assert stored_delivery(after_planning(runtime), first)["state"] == "superseded"


def test_older_in_flight_delivery_blocks_a_newer_one_for_the_same_contact(engine, add, clock):
    older = add("a", event_time=100.0)
    assert ids(claim(engine, "w1", 10, LEASE)) == [older]
    newer = add("a", event_time=200.0)
    other = add("b", event_time=50.0)
    assert ids(claim(engine, "w2", 10, LEASE)) == [other]
    record(engine, "w1", [Result(older, "delivered")], clock.at)
    assert ids(claim(engine, "w2", 10, LEASE)) == [newer]


def test_newer_delivery_is_not_held_back_by_a_failed_older_one(engine, add, runtime, clock):
    older = add("a", event_time=100.0)
    claim(engine, "w1", 10, LEASE)
    newer = add("a", event_time=200.0)
    record(engine, "w1", [Result(older, "retrying", "HTTP 503", clock.at + 3600)], clock.at)
    assert ids(claim(engine, "w2", 10, LEASE)) == [newer]
    assert stored_delivery(after_planning(runtime), older)["state"] == "superseded"


def test_due_older_delivery_is_superseded_when_a_newer_one_exists(engine, add, runtime, clock):
    older = add("a", event_time=100.0, state="retrying")
    newer = add("a", event_time=200.0, next_attempt_at=clock.at + 60)
    assert claim(engine, "w1", 10, LEASE) == []
    row = stored_delivery(after_planning(runtime), older)
    assert (row["state"], row["next_attempt_at"], row["reason"]) == (
        "superseded",
        None,
        "a newer event for this contact is queued or delivered",
    )
    assert stored_delivery(after_planning(runtime), newer)["state"] == "queued"


def test_older_delivery_after_a_delivered_newer_one_is_superseded(engine, add, runtime):
    add("a", event_time=200.0, state="delivered", next_attempt_at=None)
    older = add("a", event_time=100.0)
    assert claim(engine, "w1", 10, LEASE) == []
    assert stored_delivery(after_planning(runtime), older)["state"] == "superseded"


def test_unordered_deliveries_are_claimed_together(engine, add):
    first, second = add(None), add(None)
    assert ids(claim(engine, "w1", 10, LEASE)) == [first, second]


# -- breakers hold deliveries back ------------------------------------------------------------------


def test_paused_key_is_excluded_until_its_probe(engine, add, clock):
    add("a")
    staging = add("b", partner_key_id="listrak-staging", environment="staging")
    set_breaker(engine, KeyScope("listrak-production"), "paused", probe_at=clock.at + 60)
    assert ids(claim(engine, "w1", 10, LEASE)) == [staging]


def test_one_probe_when_a_paused_key_is_due(engine, add, runtime, clock):
    first, _second, _third = add("a"), add("b"), add("c")
    set_breaker(engine, KeyScope("listrak-production"), "paused", probe_at=clock.at - 1, opened=1)
    (probe,) = claim(engine, "w1", 10, LEASE)
    assert (probe.id, probe.probe) == (first, True)
    (breaker,) = stored_breakers(runtime)
    assert (breaker["opened"], breaker["probe_at"]) == (2, clock.at + BreakerPolicy().interval(2))
    assert claim(engine, "w2", 10, LEASE) == []


def test_open_circuit_holds_back_only_its_partner_and_key(engine, add, clock):
    add("a")
    staging = add("b", partner_key_id="listrak-staging", environment="staging")
    other_partner = add("c", partner_id="segment")
    set_breaker(engine, CircuitScope("listrak", "listrak-production"), "open", probe_at=clock.at + 60)
    assert ids(claim(engine, "w1", 10, LEASE)) == [staging, other_partner]


def test_with_a_key_paused_the_other_partners_keys_and_actions_are_claimed_in_due_order(engine, add, clock):
    add("a", next_attempt_at=clock.at - 9)
    late = add("b", partner_id="segment", partner_key_id=None, next_attempt_at=clock.at - 1)
    early = add("c", partner_key_id="listrak-staging", environment="staging", next_attempt_at=clock.at - 3)
    middle = add("d", partner_id="segment", partner_key_id=None, action="track", next_attempt_at=clock.at - 2)
    set_breaker(engine, KeyScope("listrak-production"), "paused", probe_at=clock.at + 60)
    assert ids(claim(engine, "w1", 10, LEASE)) == [early, middle, late]


def test_with_a_circuit_open_a_claim_keeps_to_its_actions(engine, add, clock):
    add("a", action="contact_fields")
    fields = add("b", partner_key_id="listrak-staging", environment="staging", action="contact_fields")
    subscription = add("c", partner_key_id="listrak-staging", environment="staging")
    set_breaker(engine, CircuitScope("listrak", "listrak-production"), "open", probe_at=clock.at + 60)
    assert ids(claim(engine, "w1", 10, LEASE, exclude_actions=["contact_fields"])) == [subscription]
    assert ids(claim(engine, "w1", 10, LEASE, actions=["contact_fields"])) == [fields]


def test_one_probe_when_an_open_circuit_is_due(engine, add, clock):
    first = add("a")
    add("b")
    set_breaker(engine, CircuitScope("listrak", "listrak-production"), "open", probe_at=clock.at - 1)
    assert ids(claim(engine, "w1", 10, LEASE)) == [first]
    assert claim(engine, "w1", 10, LEASE) == []


def test_paused_key_probe_is_claimed_by_the_worker_and_recorded(engine, add, clock):
    delivery = add("a", state="paused")
    set_breaker(engine, KeyScope("listrak-production"), "paused", probe_at=clock.at - 1)
    (probe,) = claim(engine, "w1", 10, LEASE)
    assert (probe.id, probe.state) == (delivery, "paused")
    with engine.begin() as conn:
        conn.execute(update(deliveries).values(next_attempt_at=clock.at - 1))
    assert claim(engine, "w1", 10, LEASE) == []
