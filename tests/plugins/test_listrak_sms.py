"""Listrak SMS consent (the partner's `sms:` block): the exact SMS API requests for opt-in and
opt-out, how each answer becomes an outcome, and the consent order per (sender code, phone list,
number), apart from email's. Events go in through the webhook, the worker sends."""

from __future__ import annotations

import pytest

from connector.delivery.worker import Worker
from connector.outbox.replay import replay
from connector.testing.store import after_planning, stored_attempts, stored_deliveries
from plugins.extole.testing import referral_event
from plugins.listrak.sms import NOT_LISTRAKS_404, NOT_ON_THE_LIST
from plugins.listrak.testing import API, SMS_API, TOKEN_URL
from tests.config_files import update_yaml
from tests.plugins.test_listrak_destination import post_with

PHONE = "15555555555"
SUBSCRIBE = f"{SMS_API}/ShortCode/123/Contact/{PHONE}/PhoneList/456"
CREATE = f"{SMS_API}/ShortCode/123/PhoneList/456/Contact"
UNSUBSCRIBE = f"{SMS_API}/ShortCode/123/ContactUnsubscribe/{PHONE}/PhoneList/456"
NOT_FOUND = {"status": 404, "error": "ERROR_UNABLE_TO_LOCATE_RESOURCE", "message": "Unable to locate"}


def sms_event(
    event_id="s-1", type="sms_opt_in", event_time="2026-11-22T05:44:22Z", environment="production", **person
):
    event = referral_event(
        event_id, type, event_time=event_time, environment=environment, phone_number="+1 (555) 555-5555"
    )
    event["person"].update(person)
    return event


@pytest.fixture
def tokens(requests_mock):
    """The token endpoint: one token per client, so each request shows which key it used."""

    def answer(request, context):
        client = dict(pair.split("=") for pair in request.text.split("&"))["client_id"]
        return {"access_token": f"tok-{client}", "token_type": "bearer", "expires_in": 3599}

    return requests_mock.post(TOKEN_URL, json=answer)


@pytest.fixture
def deliver(post_events, runtime, tokens):
    """Post events through the webhook, run the worker once, return the stored deliveries."""

    def run(*events):
        assert post_events(list(events)).status_code == 202
        Worker(runtime).run_once()
        return stored_deliveries(after_planning(runtime))

    return run


@pytest.fixture
def partner_config(config_dir):
    def edit(drop: tuple[str, ...] = (), **values) -> None:
        update_yaml(config_dir / "partners/listrak.yaml", values, drop)

    return edit


def sms_only(deliveries):
    return [d for d in deliveries if d["action"] == "sms_subscription"]


# -- opt-in -------------------------------------------------------------------------------------
def test_opt_in_of_a_known_number_subscribes_it_with_the_sms_key(deliver, requests_mock):
    subscribe = requests_mock.post(SUBSCRIBE, status_code=201, json={"status": 201, "resourceId": PHONE})
    (delivery,) = sms_only(deliver(sms_event()))
    assert delivery["state"] == "delivered"
    assert delivery["last_status"] == 201
    request = subscribe.last_request
    assert request.body is None
    assert request.headers["Authorization"] == "Bearer tok-sms-client"
    assert delivery["contact_key"] == f"listrak|production|sms:123:456|{PHONE}"


def test_opt_in_of_a_number_new_to_the_sender_code_creates_and_subscribes_it(deliver, requests_mock, runtime):
    requests_mock.post(SUBSCRIBE, status_code=404, json=NOT_FOUND)
    create = requests_mock.post(CREATE, status_code=201, json={"status": 201, "resourceId": PHONE})
    (delivery,) = sms_only(deliver(sms_event(email="Jane.Doe@Example.com")))
    assert create.last_request.json() == {
        "phoneNumber": PHONE,
        "emailAddress": "jane.doe@example.com",
        "firstName": "Jane",
        "lastName": "Doe",
    }
    assert create.last_request.headers["Content-Type"] == "application/json"
    assert (delivery["state"], delivery["reason"]) == (
        "delivered",
        "new to the sender code: created and subscribed",
    )
    (attempt,) = stored_attempts(runtime)
    assert attempt["request"]["url"] == CREATE
    assert [step["request"]["url"] for step in attempt["request"]["before"]] == [SUBSCRIBE]


def test_create_sends_only_the_fields_the_event_has(deliver, requests_mock):
    requests_mock.post(SUBSCRIBE, status_code=404, json=NOT_FOUND)
    create = requests_mock.post(CREATE, status_code=201, json={"status": 201})
    event = sms_event()
    event["person"] = {"phone_number": "+15555555555", "first_name": ""}
    deliver(event)
    assert create.last_request.json() == {"phoneNumber": PHONE}


def test_unknown_sender_code_or_list_on_opt_in_is_dead(deliver, requests_mock):
    requests_mock.post(SUBSCRIBE, status_code=404, json=NOT_FOUND)
    requests_mock.post(CREATE, status_code=404, json=NOT_FOUND)
    (delivery,) = sms_only(deliver(sms_event()))
    assert (delivery["state"], delivery["last_error_code"]) == ("dead", "ERROR_UNABLE_TO_LOCATE_RESOURCE")


# -- opt-out ------------------------------------------------------------------------------------
def test_opt_out_unsubscribes_with_delete(deliver, requests_mock):
    delete = requests_mock.delete(UNSUBSCRIBE, status_code=200, json={"status": 200})
    (delivery,) = sms_only(deliver(sms_event(type="sms_opt_out")))
    assert delivery["state"] == "delivered"
    assert delete.last_request.body is None
    assert delete.last_request.headers["Authorization"] == "Bearer tok-sms-client"


def test_opt_out_of_a_number_not_on_the_list_is_delivered(deliver, requests_mock):
    delete = requests_mock.delete(UNSUBSCRIBE, status_code=404, json=NOT_FOUND)
    (delivery,) = sms_only(deliver(sms_event(type="sms_opt_out")))
    assert (delivery["state"], delivery["reason"]) == ("delivered", NOT_ON_THE_LIST)
    assert [r.method for r in requests_mock.request_history if "ShortCode" in r.url] == ["DELETE"]
    assert delete.call_count == 1


def test_a_404_page_from_in_front_of_listrak_is_not_taken_for_not_on_the_list(deliver, requests_mock):
    requests_mock.delete(
        UNSUBSCRIBE,
        status_code=404,
        text="<h1>404 Not Found</h1>nginx",
        headers={"Content-Type": "text/html"},
    )
    (delivery,) = sms_only(deliver(sms_event(type="sms_opt_out")))
    assert (delivery["state"], delivery["reason"]) == ("dead", NOT_LISTRAKS_404)


# -- failures, keys, directions -------------------------------------------------------------------
def test_transient_failures_are_retried(deliver, requests_mock):
    requests_mock.post(SUBSCRIBE, status_code=503, text="busy", headers={"Retry-After": "30"})
    (delivery,) = sms_only(deliver(sms_event()))
    assert delivery["state"] == "retrying"
    assert delivery["attempts"] == 1


def test_a_refused_sms_key_pauses_sms_deliveries_and_not_email_ones(deliver, requests_mock):
    def answer(request, context):
        if "client_id=sms-client" in request.text:
            context.status_code = 400
            return {"error": "Invalid Credentials"}
        return {"access_token": "tok-email", "token_type": "bearer", "expires_in": 3599}

    requests_mock.post(TOKEN_URL, json=answer)
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    found = deliver(sms_event(), referral_event("e-1"))
    assert {d["action"]: d["state"] for d in found} == {
        "sms_subscription": "paused",
        "contact_subscription": "delivered",
    }
    assert "credentials refused for key listrak-sms-production" in sms_only(found)[0]["reason"]


@pytest.mark.parametrize(
    ("setting", "event_type"), [("send_opt_ins", "sms_opt_in"), ("send_opt_outs", "sms_opt_out")]
)
def test_a_direction_switched_off_is_skipped(partner_config, make_runtime, setting, event_type):
    partner_config(**{f"sms.{setting}": False})
    runtime = make_runtime()
    assert post_with(runtime, sms_event(type=event_type)).status_code == 202
    found = sms_only(stored_deliveries(after_planning(runtime)))
    assert [(d["state"], d["reason"]) for d in found] == [
        ("skipped", f"sms.{setting} is off for this partner")
    ]


def test_staging_sms_event_without_a_staging_sms_key_is_skipped(deliver, requests_mock):
    found = sms_only(deliver(sms_event(environment="staging")))
    assert [(d["state"], d["reason"]) for d in found] == [
        ("skipped", "staging event and no staging key in sms.keys")
    ]
    assert requests_mock.call_count == 0


def test_without_an_sms_block_sms_events_are_skipped(partner_config, make_runtime):
    partner_config(drop=("sms",))
    runtime = make_runtime()
    assert post_with(runtime, sms_event()).status_code == 202
    found = sms_only(stored_deliveries(after_planning(runtime)))
    assert [(d["state"], d["reason"], d["contact_key"]) for d in found] == [
        ("skipped", "this partner has no sms: block, so SMS consent is not sent to Listrak", None)
    ]


def test_sms_events_plan_no_email_delivery_and_email_events_no_sms_one(deliver, requests_mock):
    requests_mock.post(SUBSCRIBE, status_code=201, json={"status": 201})
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    found = deliver(sms_event(), referral_event("e-1"))
    assert sorted(d["action"] for d in found) == ["contact_subscription", "sms_subscription"]


# -- consent order ------------------------------------------------------------------------------
def test_a_late_sms_opt_in_never_undoes_a_newer_sms_opt_out(deliver, requests_mock):
    requests_mock.delete(UNSUBSCRIBE, status_code=200, json={"status": 200})
    subscribe = requests_mock.post(SUBSCRIBE, status_code=201, json={"status": 201})
    (opt_out,) = deliver(sms_event("s-2", type="sms_opt_out", event_time="2026-11-22T10:00:00Z"))
    found = {d["id"]: d for d in deliver(sms_event("s-1", event_time="2026-11-22T09:00:00Z"))}
    late = next(d for d in found.values() if d["id"] != opt_out["id"])
    assert (late["state"], late["superseded_by"]) == ("superseded", opt_out["id"])
    assert subscribe.call_count == 0


def test_email_and_sms_consent_of_one_person_are_ordered_apart(deliver, requests_mock):
    requests_mock.post(SUBSCRIBE, status_code=201, json={"status": 201})
    requests_mock.post(f"{API}/List/12345/Contact", status_code=200, json={"status": 200})
    found = deliver(
        referral_event("e-out", type="opt_out", event_time="2026-11-22T10:00:00Z"),
        sms_event("s-in", event_time="2026-11-22T09:00:00Z", email="jane.doe@example.com"),
    )
    assert {d["action"]: d["state"] for d in found} == {
        "contact_subscription": "delivered",
        "sms_subscription": "delivered",
    }


def test_another_phone_list_is_another_contact(partner_config, make_runtime, requests_mock, tokens):
    requests_mock.delete(UNSUBSCRIBE, status_code=200, json={"status": 200})
    first = make_runtime()
    post_with(first, sms_event("s-2", type="sms_opt_out", event_time="2026-11-22T10:00:00Z"))
    Worker(first).run_once()
    partner_config(**{"sms.phone_list_id": 789})
    second = make_runtime()
    subscribe = requests_mock.post(
        f"{SMS_API}/ShortCode/123/Contact/{PHONE}/PhoneList/789", status_code=201, json={"status": 201}
    )
    post_with(second, sms_event("s-1", event_time="2026-11-22T09:00:00Z"))  # older, but elsewhere
    Worker(second).run_once()
    assert [d["state"] for d in sms_only(stored_deliveries(after_planning(second)))] == [
        "delivered",
        "delivered",
    ]
    assert subscribe.call_count == 1


def test_replayed_dead_sms_opt_in_is_sent_again(deliver, requests_mock, runtime):
    requests_mock.post(SUBSCRIBE, status_code=400, json={"status": 400, "error": "ERROR_INVALID_PARAMETER"})
    (dead,) = sms_only(deliver(sms_event()))
    assert dead["state"] == "dead"
    requests_mock.post(SUBSCRIBE, status_code=201, json={"status": 201})
    assert replay(runtime.engine, [dead["id"]])["queued"] == 1
    Worker(runtime).run_once()
    assert sms_only(stored_deliveries(after_planning(runtime)))[0]["state"] == "delivered"


def test_replay_of_an_sms_opt_in_older_than_a_delivered_opt_out_is_refused(deliver, requests_mock, runtime):
    requests_mock.post(SUBSCRIBE, status_code=400, json={"status": 400, "error": "ERROR_INVALID_PARAMETER"})
    requests_mock.delete(UNSUBSCRIBE, status_code=200, json={"status": 200})
    (old,) = deliver(sms_event("s-old", event_time="2026-11-22T09:00:00Z"))
    found = deliver(sms_event("s-new", type="sms_opt_out", event_time="2026-11-22T10:00:00Z"))
    newer = next(d for d in found if d["id"] != old["id"])
    assert replay(runtime.engine, [old["id"]])["superseded"] == 1
    after = {d["id"]: d for d in stored_deliveries(after_planning(runtime))}[old["id"]]
    assert (after["state"], after["superseded_by"]) == ("superseded", newer["id"])
