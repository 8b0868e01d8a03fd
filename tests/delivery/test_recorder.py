"""The Recorder: a result the store refuses is set aside (its delivery still gets its outcome,
with the reason on its attempt) and never holds up the others; a store that is down is waited
for, and stopping gives up on it instead of hanging."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy.exc import OperationalError

from connector.app import create_app
from connector.contract import Attempt, Result, State
from connector.delivery import recorder as recorder_module
from connector.delivery.planner import Planner
from connector.delivery.recorder import SET_ASIDE, Recorder, record_all
from connector.outbox import claims
from connector.outbox.intake import ingest
from connector.runtime import Runtime
from plugins.extole.source import ExtoleSource
from plugins.extole.testing import referral_event
from tests.delivery.partner_flows import BEARER, rows_of

OWNER = "worker-1"


@pytest.fixture
def leased(store_url, config_dir, env):
    """`leased(n)`: n opt-ins planned on the store at `store_url` and leased by OWNER."""
    store = Runtime.build(str(config_dir), store_url)

    def lease(n: int):
        events = ExtoleSource().parse(
            json.dumps([referral_event(f"r-{i}", email=f"p{i}@example.com") for i in range(n)]).encode(), {}
        )
        ingest(store.engine, "extole", [(e, store.plan("extole", e)) for e in events])
        Planner(store).plan_all()
        return store, claims.claim(store.engine, OWNER, n, lease=60)

    return lease


def delivered(delivery, **attempt) -> tuple[list[Result], Attempt]:
    return [Result(delivery.id, State.DELIVERED)], Attempt(
        started_at=1.0, status=201, latency_ms=5.0, **attempt
    )


def never_down(failures, exc):
    raise AssertionError(f"the store is not down: {exc}")


def test_an_unstorable_attempt_is_set_aside_and_the_others_are_recorded(leased):
    store, (first, odd, last) = leased(3)
    items = [delivered(first), delivered(odd, error_code={"code": "ERROR_X"}), delivered(last)]

    assert record_all(store.engine, OWNER, items, never_down) == []

    found, logged = rows_of(store, "contact_subscription")
    assert [(d["state"], d["lease_owner"]) for d in found] == [("delivered", None)] * 3
    by_delivery = {a["delivery_id"]: a for a in logged}
    assert [by_delivery[d.id]["error_code"] for d in (first, odd, last)] == [None, SET_ASIDE, None]
    aside = by_delivery[odd.id]
    assert (aside["outcome"], aside["status"]) == ("delivered", 201)
    assert aside["error_message"].startswith("the attempt's record could not be stored and was set aside (")
    client = create_app({"TESTING": True}, runtime=store).test_client()
    shown = client.get(f"/admin/api/deliveries/{odd.id}", headers=BEARER).json
    assert [(a["error_code"], a["error_message"]) for a in shown["attempt_log"]] == [
        (SET_ASIDE, aside["error_message"])
    ]
    page = client.get(f"/live/events/{shown['event']['id']}", headers=BEARER)
    assert page.status_code == 200
    assert "set aside" in page.get_data(as_text=True)


def test_an_error_code_too_long_for_the_column_is_set_aside_not_retried(leased):
    """PostgreSQL refuses a code over VARCHAR(128) (SQLite takes it): either way nothing jams."""
    store, (only,) = leased(1)

    record_all(store.engine, OWNER, [delivered(only, error_code="E" * 300)], never_down)

    (delivery,), (attempt,) = rows_of(store, "contact_subscription")
    assert delivery["state"] == "delivered"
    assert attempt["error_code"] in ("E" * 300, SET_ASIDE)


def test_a_store_that_is_down_is_waited_for_then_recorded(leased, monkeypatch):
    store, (only,) = leased(1)
    real, calls, waits = recorder_module.record_many, [], []

    def down_twice(engine, owner, items):
        calls.append(len(items))
        if len(calls) <= 2:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(engine, owner, items)

    monkeypatch.setattr(recorder_module, "record_many", down_twice)

    left = record_all(store.engine, OWNER, [delivered(only)], lambda n, exc: waits.append(n) or True)

    assert (left, waits, calls) == ([], [1, 2], [1, 1, 1])
    (delivery,), (attempt,) = rows_of(store, "contact_subscription")
    assert (delivery["state"], attempt["error_code"]) == ("delivered", None)


def test_stopping_gives_up_on_a_store_that_stays_down(leased, monkeypatch, caplog):
    store, (only,) = leased(1)

    def down(engine, owner, items):
        raise OperationalError("INSERT", {}, Exception("could not connect to server"))

    monkeypatch.setattr(recorder_module, "record_many", down)
    monkeypatch.setattr(recorder_module, "STOP_GRACE", 0.2)
    recorder = Recorder(store.engine, OWNER)
    recorder.start()
    recorder.put(*delivered(only))

    with caplog.at_level(logging.WARNING, "connector.worker"):
        recorder.stop()

    assert not recorder.is_alive()
    assert "stopping with 1 results unrecorded" in caplog.text
    (delivery,) = rows_of(store, "contact_subscription")[0]
    assert delivery["lease_owner"] == OWNER  # its lease runs out: tried again, never lost
