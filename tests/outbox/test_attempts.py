"""Recording attempts: the delivery's new state and one attempt-log row per try, only while
the recording worker still holds the lease."""

from __future__ import annotations

from connector.contract import Attempt, Result
from connector.outbox.attempts import record_many
from connector.outbox.claims import claim
from connector.testing.store import after_planning, stored_attempts, stored_delivery

LEASE = 60.0


def test_owner_whose_lease_was_taken_over_cannot_record(engine, add, runtime, clock):
    delivery = add("a")
    claim(engine, "w1", 10, LEASE)
    clock.advance(LEASE + 1)
    claim(engine, "w2", 10, LEASE)
    late = Attempt(clock.at)
    assert record_many(engine, "w1", [([Result(delivery, "dead", "late answer")], late)]) == 0
    row = stored_delivery(after_planning(runtime), delivery)
    assert (row["state"], row["lease_owner"], row["attempts"]) == ("queued", "w2", 0)
    assert record_many(engine, "w2", [([Result(delivery, "delivered")], Attempt(clock.at, status=201))]) == 1
    row = stored_delivery(after_planning(runtime), delivery)
    assert (row["state"], row["lease_owner"], row["attempts"], row["last_status"]) == (
        "delivered",
        None,
        1,
        201,
    )


def test_record_logs_each_attempt(engine, add, runtime, clock):
    delivery = add("a")
    claim(engine, "w1", 10, LEASE)
    attempt = Attempt(
        clock.at, status=503, latency_ms=12.5, request={"method": "POST"}, response={"status": 503}
    )
    record_many(engine, "w1", [([Result(delivery, "retrying", "HTTP 503", clock.at + 10)], attempt)])
    (logged,) = stored_attempts(runtime)
    assert (
        logged["delivery_id"],
        logged["outcome"],
        logged["status"],
        logged["error_message"],
        logged["latency_ms"],
        logged["batch_size"],
        logged["started_at"],
    ) == (delivery, "retrying", 503, "HTTP 503", 12.5, 1, clock.at)
    assert (logged["request"], logged["response"]) == ({"method": "POST"}, {"status": 503})
    row = stored_delivery(after_planning(runtime), delivery)
    assert (row["state"], row["attempts"], row["next_attempt_at"], row["lease_owner"]) == (
        "retrying",
        1,
        clock.at + 10,
        None,
    )


def test_paused_result_does_not_count_an_attempt(engine, add, runtime, clock):
    delivery = add("a")
    claim(engine, "w1", 10, LEASE)
    record_many(
        engine,
        "w1",
        [([Result(delivery, "paused", "key refused", clock.at, count_attempt=False)], Attempt(clock.at))],
    )
    row = stored_delivery(after_planning(runtime), delivery)
    assert (row["state"], row["attempts"]) == ("paused", 0)


def test_a_batch_shares_one_attempt_and_keeps_each_request_part(engine, add, runtime, clock):
    first, second = add("a"), add("b")
    claim(engine, "w1", 10, LEASE)
    attempt = Attempt(
        clock.at,
        status=201,
        request={"body": "both"},
        request_by_delivery={first: {"body": "a"}, second: {"body": "b"}},
    )
    changed = record_many(
        engine, "w1", [([Result(first, "delivered"), Result(second, "delivered")], attempt)]
    )
    assert changed == 2
    assert [(a["delivery_id"], a["batch_size"], a["request"]) for a in stored_attempts(runtime)] == [
        (first, 2, {"body": "a"}),
        (second, 2, {"body": "b"}),
    ]


def test_each_delivery_of_a_batch_logs_the_shared_request_with_its_own_body(engine, add, runtime, clock):
    first, second = add("a"), add("b")
    claim(engine, "w1", 10, LEASE)
    attempt = Attempt(
        clock.at,
        status=200,
        request={"method": "POST", "body": '{"batch": ["a", "b"]}', "batch_size": 2},
        body_by_delivery={first: '"a"', second: '"b \\"quoted\\""'},
    )
    record_many(engine, "w1", [([Result(first, "delivered"), Result(second, "delivered")], attempt)])
    assert [a["request"] for a in stored_attempts(runtime)] == [
        {"method": "POST", "batch_size": 2, "body": '"a"'},
        {"method": "POST", "batch_size": 2, "body": '"b \\"quoted\\""'},
    ]
