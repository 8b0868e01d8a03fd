"""A webhook request commits its events and nothing else; a worker's planning step stores them
with their deliveries later. Nothing accepted is lost on the way: an id is a duplicate while it
waits and after it is planned, a planning failure leaves the event waiting, and a purge never
takes a waiting event."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from connector.delivery.planner import Planner
from connector.outbox import intake
from connector.outbox.engine import make_engine
from connector.outbox.intake import IngestResult, accept
from connector.outbox.retention import purge
from connector.outbox.tables import consent_marks, deliveries, events, seen_events
from connector.testing.store import rows
from plugins.extole.source import ExtoleSource
from plugins.extole.testing import referral_event

T1, T2 = "2026-11-22T05:00:00Z", "2026-11-22T06:00:00Z"
EVERYTHING = {"delivered": 0.0, "dead": 7 * 86400.0, "replay_window": 0.0}


def parsed(*events):
    return ExtoleSource().parse(json.dumps(list(events)).encode(), {})


def opt_in(event_id, email="jane@example.com", **kwargs):
    return referral_event(event_id, email=email, **kwargs)


def count(runtime, table) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_a_request_commits_one_row_per_event_and_nothing_else(runtime):
    result = accept(runtime.engine, "extole", parsed(opt_in("a"), opt_in("b", "joe@example.com")))
    assert result == IngestResult(2, 0)
    assert [count(runtime, t) for t in (seen_events, events, deliveries, consent_marks)] == [2, 0, 0, 0]
    assert intake.waiting_count(runtime.engine) == 2
    (first, second) = rows_of_seen(runtime)
    assert (first["type"], first["environment"], first["email"]) == (
        "opt_in",
        "production",
        "jane@example.com",
    )
    assert json.loads(first["payload"])["event_id"] == "a"
    assert second["received_at"] > first["received_at"]  # in the order sent


def test_planning_stores_the_events_with_their_deliveries_and_keeps_only_the_ids(runtime):
    accept(runtime.engine, "extole", parsed(opt_in("a"), opt_in("b", "joe@example.com")))
    assert Planner(runtime).plan_all() == 2
    assert [e["event_id"] for e in rows(runtime, events)] == ["a", "b"]
    assert [(d["event_pk"], d["state"]) for d in rows(runtime, deliveries)] == [(1, "queued"), (2, "queued")]
    assert count(runtime, consent_marks) == 2
    assert [(r["event_id"], r["payload"], r["email"], r["event_time"]) for r in rows_of_seen(runtime)] == [
        ("a", None, None, None),
        ("b", None, None, None),
    ]
    assert intake.waiting_count(runtime.engine) == 0
    assert Planner(runtime).plan_all() == 0


def test_an_id_is_a_duplicate_while_it_waits_and_after_it_is_planned(runtime):
    assert accept(runtime.engine, "extole", parsed(opt_in("a"), opt_in("a"))) == IngestResult(1, 1)
    assert accept(runtime.engine, "extole", parsed(opt_in("a"))) == IngestResult(0, 1)
    Planner(runtime).plan_all()
    assert accept(runtime.engine, "extole", parsed(opt_in("a"))) == IngestResult(0, 1)
    assert count(runtime, events) == 1
    assert count(runtime, deliveries) == 1


def test_planning_applies_the_consent_rule_by_event_time_not_by_arrival(runtime):
    accept(runtime.engine, "extole", parsed(opt_in("out", type="opt_out", event_time=T2)))
    accept(runtime.engine, "extole", parsed(opt_in("in", event_time=T1)))
    Planner(runtime).plan_all()
    assert [(d["event_pk"], d["state"]) for d in rows(runtime, deliveries)] == [
        (1, "queued"),
        (2, "superseded"),
    ]


def test_an_event_whose_planning_fails_waits_and_is_tried_again_later(runtime, monkeypatch, caplog):
    accept(runtime.engine, "extole", parsed(opt_in("bad"), opt_in("good", "joe@example.com")))
    real_plan, calls = runtime.plan, []

    def plan(source_id, event):
        calls.append(event.event_id)
        if event.event_id == "bad" and len(calls) < 4:
            raise RuntimeError("a plugin bug")
        return real_plan(source_id, event)

    monkeypatch.setattr(runtime, "plan", plan)
    at = [100.0]
    planner = Planner(runtime, clock=lambda: at[0])
    assert planner.plan_all() == 1
    assert [e["event_id"] for e in rows(runtime, events)] == ["good"]
    assert intake.waiting_count(runtime.engine) == 1
    assert "planning it failed for event bad from extole" in caplog.text
    assert planner.plan_all() == 0  # not before its time
    at[0] += 1.0
    assert planner.plan_all() == 0  # failed again: next try 2 s later
    at[0] += 2.0
    assert planner.plan_all() == 1
    assert calls == ["bad", "good", "bad", "bad"]
    assert [e["event_id"] for e in rows(runtime, events)] == ["good", "bad"]
    assert intake.waiting_count(runtime.engine) == 0


def test_a_purge_never_takes_a_waiting_event_nor_the_id_of_a_stored_one(runtime, clock):
    accept(runtime.engine, "extole", parsed(opt_in("kept", "joe@example.com")))
    Planner(runtime).plan_all()
    accept(runtime.engine, "extole", parsed(opt_in("waits")))
    clock.advance(10)
    purge(runtime.engine, EVERYTHING)  # "kept" is queued: its event stays, so does its id
    assert sorted(r["event_id"] for r in rows_of_seen(runtime)) == ["kept", "waits"]
    assert accept(runtime.engine, "extole", parsed(opt_in("kept", "joe@example.com"))) == IngestResult(0, 1)


def rows_of_seen(runtime) -> list[dict]:
    with runtime.engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(select(seen_events).order_by(seen_events.c.received_at))
        ]


def test_a_store_that_cannot_be_opened_is_sqlalchemys_operational_error(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/gone/connector.db")
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(OperationalError):  # the web answers it 503 (connector.app)
        accept(engine, "extole", parsed(opt_in("a")))


def test_an_event_that_cannot_be_stored_waits_alone_while_the_others_are_planned(
    runtime, monkeypatch, caplog
):
    accept(
        runtime.engine,
        "extole",
        parsed(opt_in("a"), opt_in("bad", "joe@example.com"), opt_in("c", "c@x.org")),
    )
    real_plan = runtime.plan

    def plan(source_id, event):
        planned = real_plan(source_id, event)
        if event.event_id == "bad":
            circular = {}
            circular["itself"] = circular
            planned[0][1].spec = circular  # a plugin bug: its spec cannot be stored
        return planned

    monkeypatch.setattr(runtime, "plan", plan)
    assert Planner(runtime).plan_all() == 2
    assert [e["event_id"] for e in rows(runtime, events)] == ["a", "c"]
    assert intake.waiting_keys(runtime.engine, 10) == [("extole", "bad")]
    assert "storing it failed for event bad from extole" in caplog.text
