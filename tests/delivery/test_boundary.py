"""The delivery boundary: an exception at any step from claim to record becomes a recorded
failed attempt on the retry schedule (never a delivery left leased, nor sent again without an
attempt), and a failure of ours never counts against the partner's circuit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from connector.app import create_app
from connector.contract import State, Verdict
from connector.delivery import boundary as boundary_module
from connector.delivery import outcomes
from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_attempts, stored_breakers, stored_deliveries
from plugins.extole.testing import referral_event
from plugins.listrak.destination import ContactSubscription, ListrakDestination
from plugins.listrak.profile_fields import UpdateEmailContactProfileFields
from plugins.listrak.testing import API
from plugins.segment.testing import audience_event, post_segment
from tests.config_files import update_yaml

CONTACT = f"{API}/List/12345/Contact"


class Boom(RuntimeError):
    pass


def _raise(*_args, **_kwargs):
    raise Boom("step failed for jane.doe@example.com")


#: (step, where it is patched, whether a request reached the partner before it failed)
STEPS = [
    ("destination lookup", lambda mp, rt: mp.setattr(rt, "destination", _raise), False),
    ("build_request", lambda mp, rt: mp.setattr(ContactSubscription, "build_request", _raise), False),
    ("credentials", lambda mp, rt: mp.setattr(rt, "credentials", _raise), False),
    ("http send", lambda mp, rt: mp.setattr(rt.http, "send", _raise), False),
    ("interpret", lambda mp, rt: mp.setattr(ContactSubscription, "interpret", _raise), True),
    ("error_details", lambda mp, rt: mp.setattr(ListrakDestination, "error_details", _raise), True),
]


@pytest.fixture
def one_opt_in(post_events, runtime, requests_mock, listrak_token):
    contact = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    assert post_events(referral_event("b-1")).status_code == 202
    return contact


@pytest.mark.parametrize(("step", "patch", "reached_partner"), STEPS, ids=[s[0] for s in STEPS])
def test_exception_at_a_step_is_a_recorded_attempt_on_the_schedule(
    step, patch, reached_partner, clock, one_opt_in, runtime, monkeypatch
):
    monkeypatch.setattr(outcomes, "random", SimpleNamespace(uniform=lambda low, high: 1.0))
    patch(monkeypatch, runtime)
    assert Worker(runtime).run_once() == 1

    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "retrying"
    assert delivery["attempts"] == 1
    assert delivery["lease_owner"] is None
    assert delivery["lease_expires_at"] is None
    assert delivery["next_attempt_at"] == clock.at + runtime.config.retry_schedule("listrak")[0]
    assert delivery["reason"] == "internal error: Boom"
    (attempt,) = stored_attempts(runtime)
    assert attempt["outcome"] == "retrying"
    assert attempt["error_code"] == "INTERNAL_ERROR"
    assert attempt["error_message"].startswith("Boom: step failed for")
    assert one_opt_in.call_count == (1 if reached_partner else 0)
    assert stored_breakers(runtime) == []  # our failure says nothing about the partner


def test_exception_building_a_batch_members_part_settles_every_member(
    config_dir, make_runtime, requests_mock, listrak_token, monkeypatch
):
    """A batch: each delivery's share of the request is recorded after the answer; failing
    there settles every delivery of the batch, once each."""
    bulk = requests_mock.post(
        f"{API}/List/123/Contact/SegmentationField", status_code=201, json={"status": 201}
    )
    update_yaml(
        config_dir / "partners" / "listrak.yaml",
        set={
            "mappings": [
                {
                    "name": "audience",
                    "action": "update_email_contact_profile_fields",
                    "list_id": 123,
                    "when": [{"field": "context.personas.computation_key", "is": "my_audience"}],
                    "profile_field_values": {"6789": "useAudienceKey"},
                }
            ]
        },
    )
    update_yaml(config_dir / "connector.yaml", set={"worker.batch_window": "0s"})
    runtime = make_runtime()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    events = [audience_event(f"m-{i}", email=f"a{i}@example.com") for i in range(3)]
    assert post_segment(client, {"batch": events}).status_code == 202
    monkeypatch.setattr(UpdateEmailContactProfileFields, "part_of_request", _raise)

    Worker(runtime).run_once()

    assert bulk.call_count == 1
    found = stored_deliveries(after_planning(runtime))
    assert [(d["state"], d["attempts"], d["lease_owner"]) for d in found] == [("retrying", 1, None)] * 3
    assert [a["error_code"] for a in stored_attempts(runtime)] == ["INTERNAL_ERROR"] * 3
    assert stored_breakers(runtime) == []


def test_verdict_an_action_may_not_give_is_an_internal_error(one_opt_in, runtime, monkeypatch):
    monkeypatch.setattr(
        ContactSubscription, "interpret", lambda *a: [Verdict(State.SUPERSEDED, "not for actions to say")]
    )
    Worker(runtime).run_once()
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["attempts"]) == ("retrying", 1)
    (attempt,) = stored_attempts(runtime)
    assert attempt["error_code"] == "INTERNAL_ERROR"
    assert attempt["error_message"] == "an action cannot decide 'superseded'"


def test_wrong_number_of_verdicts_is_an_internal_error(one_opt_in, runtime, monkeypatch):
    monkeypatch.setattr(ContactSubscription, "interpret", lambda *a: [])
    Worker(runtime).run_once()
    (attempt,) = stored_attempts(runtime)
    assert attempt["error_code"] == "INTERNAL_ERROR"
    assert attempt["error_message"] == ("ValueError: contact_subscription gave 0 verdicts for 1 deliveries")


def test_internal_failures_run_down_the_schedule_to_dead(one_opt_in, runtime, monkeypatch):
    monkeypatch.setattr(ContactSubscription, "build_request", _raise)
    schedule = runtime.config.retry_schedule("listrak")
    worker = Worker(runtime)
    for _ in range(len(schedule) + 1):
        _make_due(runtime)
        worker.run_once()
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "dead"
    assert delivery["attempts"] == len(schedule) + 1
    assert delivery["reason"] == "retry schedule ran out: internal error: Boom"
    assert one_opt_in.call_count == 0


def test_failure_after_recording_does_not_record_twice(one_opt_in, runtime, monkeypatch):
    """Metrics or breakers failing after the result is stored leave that result alone."""
    monkeypatch.setattr(boundary_module.Boundary, "_observe", _raise)
    Worker(runtime).run_once()
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 1)
    assert len(stored_attempts(runtime)) == 1


def test_partner_failures_still_open_the_circuit(post_events, runtime, requests_mock, listrak_token):
    requests_mock.post(CONTACT, status_code=503, json={"status": 503})
    for i in range(runtime.config.settings["breaker"]["threshold"]):
        assert post_events(referral_event(f"c-{i}", email=f"p{i}@example.com")).status_code == 202
    Worker(runtime).run_once()
    (breaker,) = stored_breakers(runtime)
    assert (breaker["scope"], breaker["state"]) == ("circuit:listrak|listrak-production", "open")


def _make_due(runtime):
    from sqlalchemy import update

    from connector.outbox.tables import deliveries

    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).values(next_attempt_at=0.0))
