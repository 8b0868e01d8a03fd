"""A worker's housekeeping: the queue sampled once a minute, the purge run when due by one
worker at a time, and a failing store logged rather than stopping the worker."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from connector.delivery.housekeeper import Housekeeper
from connector.outbox import retention
from connector.outbox.engine import reading
from connector.outbox.tables import queue_minutes
from connector.testing.history import seed_history

DAY = 86400.0


def samples(runtime) -> int:
    with reading(runtime.engine) as conn:
        return conn.execute(select(func.count(func.distinct(queue_minutes.c.minute)))).scalar()


def test_a_tick_samples_the_queue_and_purges_when_due(runtime, clock):
    clock.at = 1_800_000_000.0
    seed_history(runtime.engine, 500, days=40, until=clock.at - 120)  # a week of samples, old rows
    before = samples(runtime)
    first = Housekeeper(runtime, "w1").tick()
    assert first["deliveries"] > 0  # the example keeps delivered ones 30 days
    assert samples(runtime) == before + 1
    clock.advance(30)
    assert Housekeeper(runtime, "w2").tick() is None  # next purge in an hour; minute sampled
    assert samples(runtime) == before + 1
    clock.advance(3600)
    again = Housekeeper(runtime, "w2").tick()
    assert (again["deliveries"], again["events"]) == (0, 0)
    assert retention.last_run(runtime.engine)["next_run_at"] == clock.at + 3600


def test_no_scheduled_purge_when_every_is_zero(runtime, clock):
    runtime.config.settings["retention"]["every"] = 0
    assert Housekeeper(runtime, "w1").tick() is None
    assert retention.last_run(runtime.engine) is None


def test_a_store_that_fails_is_logged_and_the_tick_returns(runtime, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("store gone")

    monkeypatch.setattr(retention, "run", broken)
    with caplog.at_level(logging.ERROR, logger="connector.housekeeper"):
        assert Housekeeper(runtime, "w1").tick() is None
    assert "the scheduled purge failed" in caplog.text
