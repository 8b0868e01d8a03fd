"""Breakers: consecutive failures open a circuit at the threshold, a refused key pauses at
once, each probe doubles the wait up to the ceiling, and a reset closes them."""

from __future__ import annotations

from connector.contract import CircuitScope, KeyScope
from connector.outbox.breakers import BreakerPolicy, breaker_states, open_breakers, reset, trip
from connector.testing.store import stored_breakers

CIRCUIT = CircuitScope("listrak", "listrak-production")
KEY = KeyScope("listrak-staging")


def test_probe_interval_doubles_up_to_the_cap():
    policy = BreakerPolicy(probe_interval=15, max_probe_interval=100)
    assert [policy.interval(n) for n in (1, 2, 3, 4)] == [15, 30, 60, 100]


def test_trip_opens_at_the_threshold_and_reset_closes(engine, runtime, clock):
    policy = BreakerPolicy(threshold=3)
    assert [trip(engine, CIRCUIT, "open", "HTTP 503", 3, policy) for _ in range(3)] == [False, False, True]
    (breaker,) = stored_breakers(runtime)
    assert (breaker["scope"], breaker["state"], breaker["failures"], breaker["probe_at"]) == (
        "circuit:listrak|listrak-production",
        "open",
        3,
        clock.at + policy.probe_interval,
    )
    reset(engine, [CIRCUIT])
    assert stored_breakers(runtime) == []


def test_below_the_threshold_the_breaker_stays_closed_without_a_probe(engine, runtime):
    trip(engine, CIRCUIT, "open", "HTTP 503", threshold=5)
    (breaker,) = stored_breakers(runtime)
    assert (breaker["state"], breaker["failures"], breaker["probe_at"]) == ("closed", 1, None)
    assert open_breakers(engine) == []


def test_refused_key_pauses_at_the_first_refusal(engine, clock):
    assert trip(engine, KEY, "paused", "Invalid Credentials") is True
    (paused,) = open_breakers(engine)
    assert (paused["scope"], paused["state"], paused["reason"], paused["probe_at"]) == (
        KEY,
        "paused",
        "Invalid Credentials",
        clock.at + BreakerPolicy().probe_interval,
    )


def test_a_failed_probe_keeps_the_wait_the_claim_doubled(engine, runtime, clock):
    policy = BreakerPolicy(probe_interval=15)
    trip(engine, KEY, "paused", "refused", policy=policy)
    with engine.begin() as conn:  # a claim sent the second probe: opened moved on to 2
        conn.exec_driver_sql("UPDATE breakers SET opened = 2")
    trip(engine, KEY, "paused", "refused again", policy=policy)
    (breaker,) = stored_breakers(runtime)
    assert (breaker["opened"], breaker["probe_at"]) == (2, clock.at + 30)


def test_breaker_states_name_every_scope_as_a_record(engine):
    trip(engine, KEY, "paused", "refused")
    trip(engine, CIRCUIT, "open", "HTTP 503", threshold=5)
    assert breaker_states(engine) == {KEY: "paused", CIRCUIT: "closed"}
