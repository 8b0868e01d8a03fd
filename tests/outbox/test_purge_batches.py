"""Retention that runs itself: the purge deletes in short transactions (so intake keeps being
answered while it runs), one worker at a time across workers, on a schedule, and keeps what
it did for the Live View; `connector purge` still runs it by hand."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from connector.cli import main as cli
from connector.delivery.planner import Planner
from connector.outbox import retention
from connector.outbox.engine import make_engine, reading
from connector.outbox.tables import attempts, deliveries, events, metadata
from connector.testing.history import seed_history
from plugins.extole.testing import referral_event
from plugins.segment.testing import post_segment

DAY = 86400.0
RETENTION = {"delivered": DAY, "dead": 7 * DAY, "every": 3600.0}
LEASE = 60.0


def counts(engine) -> dict[str, int]:
    with reading(engine) as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (events, deliveries, attempts)
        }


def expired_ids(engine, at: float, keep_delivered: float = DAY) -> set[int]:
    with reading(engine) as conn:
        rows = conn.execute(select(deliveries.c.id, deliveries.c.state, deliveries.c.updated_at))
        return {
            r.id
            for r in rows
            if (r.state == "dead" and r.updated_at < at - 7 * DAY)
            or (r.state in ("delivered", "skipped", "superseded") and r.updated_at < at - keep_delivered)
        }


def test_purge_removes_what_retention_allows_in_transactions_of_one_batch(engine, clock):
    seed_history(engine, 3000, days=10, until=clock.at)
    gone = expired_ids(engine, clock.at)
    job = retention.Purge(engine, RETENTION, batch=200)
    assert job.run() == {"deliveries": len(gone), "attempts": len(gone), "events": len(gone)}
    assert counts(engine) == {
        "events": 3000 - len(gone),
        "deliveries": 3000 - len(gone),
        "attempts": 3000 - len(gone),
    }
    assert expired_ids(engine, clock.at) == set()
    # A page of 200 rows at most per transaction: 3,000 rows in order of time, then the rest.
    assert 15 <= job.transactions <= 20
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).where(deliveries.c.state == "dead")).scalar() > 0


def test_events_that_planned_nothing_go_after_a_day_and_are_looked_at_once(
    client, post_events, runtime, clock
):
    engine = runtime.engine
    assert post_events(referral_event("planned")).status_code == 202
    # An identify no mapping matches: stored, no delivery planned.
    identify = {"type": "identify", "messageId": "m-1", "userId": "u-1", "traits": {}}
    assert post_segment(client, identify).status_code == 202
    Planner(runtime).plan_all()
    assert _event_ids(engine) == ["planned", "m-1"]
    clock.advance(DAY + 1)
    job = retention.Purge(engine, {"delivered": 30 * DAY, "dead": 7 * DAY})
    assert job.run() == {"deliveries": 0, "attempts": 0, "events": 1}
    assert _event_ids(engine) == ["planned"]
    assert job.events_checked_before == clock.at - DAY
    again = retention.Purge(
        engine, {"delivered": 30 * DAY, "dead": 7 * DAY}, events_checked_before=clock.at - DAY
    )
    assert again.run() == {"deliveries": 0, "attempts": 0, "events": 0}
    assert again.transactions == 5  # the memory and figure tables only: no event looked at again


def test_an_event_planned_a_day_late_is_still_looked_at_by_a_later_purge(client, runtime, clock):
    engine = runtime.engine
    identify = {"type": "identify", "messageId": "late", "userId": "u-1", "traits": {}}
    assert post_segment(client, identify).status_code == 202  # no worker plans it for two days
    clock.advance(2 * DAY)
    first = retention.Purge(engine, {"delivered": 30 * DAY, "dead": 7 * DAY})
    first.run()
    assert first.events_checked_before == clock.at - 2 * DAY  # not past the event still waiting
    Planner(runtime).plan_all()  # stored with the time it arrived, two days ago
    again = retention.Purge(
        engine, {"delivered": 30 * DAY, "dead": 7 * DAY}, events_checked_before=first.events_checked_before
    )
    assert again.run() == {"deliveries": 0, "attempts": 0, "events": 1}
    assert _event_ids(engine) == []


def _event_ids(engine) -> list[str]:
    with reading(engine) as conn:
        return list(conn.execute(select(events.c.event_id).order_by(events.c.id)).scalars())


def test_intake_is_answered_while_a_purge_runs(runtime, post_events, clock):
    """Requests are answered between the purge's batches, never only after the whole of it."""
    engine = runtime.engine
    seed_history(engine, 50_000, days=40, until=clock.at)
    job = retention.Purge(engine, RETENTION, batch=500)
    purging = threading.Thread(target=job.run)
    batches_done: list[int] = []  # the purge's transactions committed when each request was answered
    purging.start()
    while purging.is_alive():
        assert post_events(referral_event(f"during-{len(batches_done)}")).status_code == 202
        batches_done.append(job.transactions)
    purging.join()
    assert job.removed["deliveries"] > 45_000
    assert job.transactions > 90
    between_batches = [done for done in batches_done if done < job.transactions]
    assert len(between_batches) >= 3, f"answered after {batches_done} of {job.transactions} batches"


def test_one_worker_purges_at_a_time_and_the_next_purge_waits_its_turn(engine, clock):
    assert retention.acquire(engine, "w1", LEASE) == {}
    assert retention.run(engine, RETENTION, "w2", LEASE, every=3600.0) is None
    retention.finish(engine, "w1", clock.at + 3600.0, None, "stopped")
    clock.advance(1)
    assert retention.run(engine, RETENTION, "w2", LEASE, every=3600.0) is None  # not due yet
    clock.advance(3600.0)
    result = retention.run(engine, RETENTION, "w2", LEASE, every=3600.0)
    assert (result["deliveries"], result["attempts"], result["events"]) == (0, 0, 0)
    last = retention.last_run(engine)
    assert (last["started_at"], last["finished_at"], last["next_run_at"], last["running"], last["error"]) == (
        clock.at,
        clock.at,
        clock.at + 3600.0,
        False,
        None,
    )
    assert last["result"]["transactions"] == result["transactions"]


def test_a_purge_whose_worker_died_is_taken_over_after_its_lease(engine, clock):
    assert retention.acquire(engine, "w1", LEASE) == {}
    clock.advance(LEASE + 1)
    assert retention.run(engine, RETENTION, "w2", LEASE, every=3600.0) is not None


def test_purge_command_runs_now_and_is_shown_as_the_last_purge(
    config_dir, database_url, runtime, clock, capsys
):
    seed_history(runtime.engine, 1000, days=10, until=clock.at)
    gone = len(expired_ids(runtime.engine, clock.at, keep_delivered=30 * DAY))  # the example's retention
    base = ["--config", str(config_dir), "--database-url", database_url]
    assert cli([*base, "purge"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"purged {gone} deliveries, {gone} attempts, {gone} events in ")
    last = retention.last_run(runtime.engine)
    assert last["result"]["deliveries"] == gone
    assert last["next_run_at"] == clock.at + 3600.0  # the example's retention.every: 1h


def test_purge_command_refuses_while_a_worker_purges(config_dir, database_url, runtime, capsys):
    retention.acquire(runtime.engine, "worker-1", LEASE)
    assert cli(["--config", str(config_dir), "--database-url", database_url, "purge"]) == 1
    assert capsys.readouterr().out == "a purge is running now (worker-1); nothing done\n"


@pytest.mark.postgres
def test_purge_in_batches_on_postgres(postgres_url):
    engine = make_engine(postgres_url)
    metadata.create_all(engine)
    seed_history(engine, 1500, days=10, until=time.time())
    started = time.time()
    job = retention.Purge(engine, RETENTION, batch=100)
    removed = job.run()
    assert (
        removed["deliveries"]
        == removed["attempts"]
        == removed["events"]
        == 1500 - counts(engine)["deliveries"]
    )
    assert removed["deliveries"] > 1000
    assert expired_ids(engine, started) == set()
    assert job.transactions >= 10
    engine.dispose()
