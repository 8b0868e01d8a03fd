"""Per-minute rollups: every outcome counted once in the transaction that decides it (an
attempt recorded, a delivery skipped or superseded at intake or at a claim), each request's
latency once in its histogram, percentiles read from the buckets, the queue sampled once a
minute, and each poll of a pull source kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connector.contract import Attempt, Result
from connector.outbox import pollers, rollups
from connector.outbox.attempts import record_many
from connector.outbox.claims import claim
from connector.outbox.engine import reading
from connector.outbox.tables import LATENCY_COLUMNS, attempt_minutes, poll_runs, queue_minutes
from plugins.extole.testing import referral_event

LEASE = 60.0


def minutes(engine) -> list[tuple]:
    """(minute, partner, outcome, deliveries, requests, latency sum, {bucket: count})."""
    with reading(engine) as conn:
        rows = conn.execute(select(attempt_minutes).order_by(*attempt_minutes.primary_key.columns))
        return [
            (
                r.minute,
                r.partner_id,
                r.outcome,
                r.deliveries,
                r.requests,
                r.latency_ms_sum,
                {name: r._mapping[name] for name in LATENCY_COLUMNS if r._mapping[name]},
            )
            for r in rows
        ]


def test_a_batch_counts_each_delivery_and_its_request_once(engine, add, clock):
    first, second, third = add("a"), add("b"), add("c")
    claim(engine, "w1", 10, LEASE)
    minute = rollups.minute_of(clock.at)
    batch = Attempt(clock.at, status=200, latency_ms=42.0)
    failed = Attempt(clock.at, status=503, latency_ms=7.0)
    record_many(
        engine,
        "w1",
        [
            ([Result(first, "delivered"), Result(second, "delivered")], batch),
            ([Result(third, "retrying", "HTTP 503", clock.at + 10)], failed),
        ],
    )
    assert minutes(engine) == [
        (minute, "listrak", "delivered", 2, 1, 42.0, {"le_50": 1}),
        (minute, "listrak", "retrying", 1, 1, 7.0, {"le_10": 1}),
    ]


def test_results_add_up_across_transactions_and_minutes(engine, add, clock):
    first, second = add("a"), add("b")
    claim(engine, "w1", 10, LEASE)
    record_many(engine, "w1", [([Result(first, "delivered")], Attempt(clock.at, latency_ms=120.0))])
    record_many(engine, "w1", [([Result(second, "delivered")], Attempt(clock.at, latency_ms=130.0))])
    minute = rollups.minute_of(clock.at)
    clock.advance(60)
    third = add("c")
    claim(engine, "w1", 10, LEASE)
    record_many(engine, "w1", [([Result(third, "dead", "HTTP 400")], Attempt(clock.at, latency_ms=3000.0))])
    assert minutes(engine) == [
        (minute, "listrak", "delivered", 2, 2, 250.0, {"le_150": 2}),
        (minute + 60, "listrak", "dead", 1, 1, 3000.0, {"le_3000": 1}),
    ]


def test_a_result_recorded_after_the_lease_was_lost_is_not_counted(engine, add, clock):
    delivery = add("a")
    claim(engine, "w1", 10, LEASE)
    clock.advance(LEASE + 1)
    claim(engine, "w2", 10, LEASE)
    record_many(engine, "w1", [([Result(delivery, "delivered")], Attempt(clock.at, latency_ms=5.0))])
    assert minutes(engine) == []


@pytest.fixture
def no_opt_outs(config_dir):
    partner = config_dir / "partners" / "listrak.yaml"
    partner.write_text(partner.read_text().replace("send_opt_outs: true", "send_opt_outs: false"))


def test_deliveries_skipped_or_superseded_at_intake_are_counted(no_opt_outs, post_events, runtime, clock):
    minute = rollups.minute_of(clock.at)
    post_events(referral_event("out-1", type="opt_out", email="skip@example.com"))
    post_events(referral_event("new", event_time="2026-11-22T06:00:00Z"))
    post_events(referral_event("old", event_time="2026-11-22T05:00:00Z"))
    assert [row[:4] for row in minutes(runtime.engine)] == [
        (minute, "listrak", "skipped", 1),
        (minute, "listrak", "superseded", 1),
    ]


def test_a_pending_delivery_losing_to_a_newer_one_is_counted_as_superseded(post_events, runtime, clock):
    post_events(referral_event("old", event_time="2026-11-22T05:00:00Z"))
    clock.advance(60)
    post_events(referral_event("new", event_time="2026-11-22T06:00:00Z"))
    assert [row[:4] for row in minutes(runtime.engine)] == [
        (rollups.minute_of(clock.at), "listrak", "superseded", 1)
    ]


def test_percentiles_come_from_the_buckets():
    buckets = [0] * len(LATENCY_COLUMNS)
    buckets[LATENCY_COLUMNS.index("le_100")] = 50  # 75–100 ms
    buckets[LATENCY_COLUMNS.index("le_1000")] = 50  # 750–1000 ms
    assert rollups.percentile(buckets, 0.5) == 100.0
    assert rollups.percentile(buckets, 0.95) == 975.0
    assert rollups.percentile([0] * len(LATENCY_COLUMNS), 0.5) is None
    slow = [0] * (len(LATENCY_COLUMNS) - 1) + [4]
    assert rollups.percentile(slow, 0.95) == 30000.0


def test_slots_group_minutes_by_step(engine, add, clock):
    clock.at = 1_800_000_000.0  # a whole hour
    for offset, name in ((0, "a"), (60, "b"), (600, "c")):
        clock.at = 1_800_000_000.0 + offset
        delivery = add(name)
        claim(engine, "w1", 10, LEASE)
        record_many(engine, "w1", [([Result(delivery, "delivered")], Attempt(clock.at, latency_ms=20.0))])
    assert rollups.outcomes(engine, 1_800_000_000.0, 300.0) == {0: {"delivered": 2}, 2: {"delivered": 1}}
    assert rollups.outcomes(engine, 1_800_000_000.0, 60.0, partner_id="segment") == {}
    histograms = rollups.latency_histograms(engine, 1_800_000_000.0, 300.0)
    assert {slot: buckets[LATENCY_COLUMNS.index("le_20")] for slot, buckets in histograms.items()} == {
        0: 2,
        2: 1,
    }


def test_the_queue_is_sampled_once_a_minute(engine, add, clock):
    clock.at = 1_800_000_000.0  # a whole minute
    add("a", next_attempt_at=clock.at - 30)
    add("b", next_attempt_at=clock.at + 30)
    add("c", state="retrying", next_attempt_at=clock.at - 5, partner_id="segment")
    assert rollups.sample_queue(engine) is True
    clock.advance(10)
    assert rollups.sample_queue(engine) is False
    with reading(engine) as conn:
        rows = [
            tuple(r)[:6] for r in conn.execute(select(queue_minutes).order_by(queue_minutes.c.partner_id))
        ]
    minute = rollups.minute_of(clock.at)
    assert rows == [
        (minute, "", 0, 0, 0, 0.0),
        (minute, "listrak", 2, 0, 0, 30.0),
        (minute, "segment", 0, 1, 0, 5.0),
    ]
    assert rollups.queue_samples(engine, minute, 60.0) == {0: {"depth": 3, "oldest_due_seconds": 30.0}}
    assert rollups.queue_samples(engine, minute, 60.0, "segment") == {
        0: {"depth": 1, "oldest_due_seconds": 5.0}
    }


def test_an_empty_queue_is_a_sample_of_zero(engine, clock):
    rollups.sample_queue(engine)
    minute = rollups.minute_of(clock.at)
    assert rollups.queue_samples(engine, minute, 60.0, "listrak") == {
        0: {"depth": 0, "oldest_due_seconds": 0.0}
    }


def test_every_finished_poll_is_kept(engine, clock):
    started = clock.at
    assert pollers.acquire(engine, "activity", "w1", LEASE) == {"cursor": None}
    with engine.begin() as conn:
        pollers.save_cursor(conn, "activity", "w1", {"page": 2}, rows=40, events=12)
    clock.advance(3)
    pollers.finish(engine, "activity", "w1", clock.at + 10)
    clock.advance(10)
    pollers.acquire(engine, "activity", "w1", LEASE)
    pollers.start_counts(engine, "activity", "w1")
    pollers.finish(engine, "activity", "w1", clock.at + 10, error="HTTP 503")
    pollers.finish(engine, "activity", "w2", clock.at + 10)  # not its poll: nothing kept
    pollers.acquire(engine, "activity", "w1", LEASE, due_only=False)
    pollers.finish(engine, "activity", "w1", clock.at + 10, note="stopped early")
    with reading(engine) as conn:
        kept = [tuple(r)[1:] for r in conn.execute(select(poll_runs).order_by(poll_runs.c.id))]
    assert kept == [  # ..., error, stopped-early note, summary
        ("activity", started, started + 3, 1, 40, 12, None, None, None),
        ("activity", started + 13, started + 13, 0, 0, 0, "HTTP 503", None, None),
        ("activity", started + 13, started + 13, 1, 0, 0, None, "stopped early", None),
    ]
    assert rollups.polls(engine, "activity", started, 60.0) == {
        0: {"polls": 3, "failed": 1, "stopped_early": 1, "rows_read": 40, "events_produced": 12}
    }
