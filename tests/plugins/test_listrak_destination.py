"""Listrak destination: the exact Contact requests for opt-in/opt-out, and how each Listrak
answer becomes an outcome in the store. Events go in through the webhook, the worker sends."""

from __future__ import annotations

import json
from email.utils import formatdate
from types import SimpleNamespace

import pytest
import requests

from connector.app import create_app
from connector.delivery import outcomes
from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_attempts, stored_deliveries
from plugins.extole.testing import referral_event, sign
from plugins.listrak.testing import API, TOKEN_URL
from tests.config_files import update_yaml

CONTACT = f"{API}/List/12345/Contact"
JANE = "jane.doe@example.com"
ALL_FIELDS = [
    {"segmentationFieldId": 1001, "value": "+15555555555"},
    {"segmentationFieldId": 1002, "value": "refer.example.com/jdoe"},
    {"segmentationFieldId": 1003, "value": "Jane"},
    {"segmentationFieldId": 1004, "value": "Doe"},
    {"segmentationFieldId": 1005, "value": "advocate"},
]


def listrak_error(status: int, code: str, message: str = "refused") -> dict:
    return {"status_code": status, "json": {"status": status, "error": code, "message": message}}


@pytest.fixture
def contact(requests_mock, listrak_token):
    return requests_mock.post(CONTACT, status_code=201, json={"status": 201, "resourceId": JANE})


@pytest.fixture
def deliver(post_events, runtime):
    """Post events through the webhook, run the worker once, return the stored deliveries."""

    def run(*events, expect_sent=None):
        response = post_events(list(events) if len(events) > 1 else events[0])
        assert response.status_code == 202, response.json
        sent = Worker(runtime).run_once()
        if expect_sent is not None:
            assert sent == expect_sent
        return stored_deliveries(after_planning(runtime))

    return run


@pytest.fixture
def partner_config(config_dir):
    """Edit the partner file before the runtime is built."""

    def edit(drop: tuple[str, ...] = (), **values) -> None:
        update_yaml(config_dir / "partners/listrak.yaml", values, drop)

    return edit


def post_with(runtime, payload):
    body = json.dumps(payload).encode()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    return client.post(
        "/webhooks/extole",
        data=body,
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
    )


# -- opt-in --------------------------------------------------------------------------------------


def test_opt_in_subscribes_with_every_profile_attribute(deliver, contact):
    (delivery,) = deliver(referral_event(), expect_sent=1)
    request = contact.last_request
    assert request.method == "POST"
    assert request.url == CONTACT
    assert request.json() == {
        "emailAddress": JANE,
        "subscriptionState": "Subscribed",
        "segmentationFieldValues": ALL_FIELDS,
    }
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Content-Type"] == "application/json"
    assert delivery["state"] == "delivered"
    assert delivery["last_status"] == 201


def test_an_opt_in_with_odd_optional_fields_subscribes_without_them(deliver, contact):
    event = referral_event(funnel="friend and advocate", phone_number="call me", first_name=7)
    (delivery,) = deliver(event, expect_sent=1)
    assert contact.last_request.json() == {
        "emailAddress": JANE,
        "subscriptionState": "Subscribed",
        "segmentationFieldValues": [
            {"segmentationFieldId": 1002, "value": "refer.example.com/jdoe"},
            {"segmentationFieldId": 1004, "value": "Doe"},
            {"segmentationFieldId": 1005, "value": "friend and advocate"},
        ],
    }
    assert delivery["state"] == "delivered"


def test_opt_in_sends_only_the_attributes_present(deliver, contact):
    event = referral_event()
    event["person"] = {"email": JANE, "first_name": "Jane", "funnel": "friend", "last_name": ""}
    deliver(event)
    assert contact.last_request.json() == {
        "emailAddress": JANE,
        "subscriptionState": "Subscribed",
        "segmentationFieldValues": [
            {"segmentationFieldId": 1003, "value": "Jane"},
            {"segmentationFieldId": 1005, "value": "friend"},
        ],
    }


def test_opt_in_without_profile_attributes_sends_an_empty_list(deliver, contact):
    event = referral_event()
    event["person"] = {"email": "Only.Email@Example.com"}
    deliver(event)
    assert contact.last_request.json() == {
        "emailAddress": "only.email@example.com",
        "subscriptionState": "Subscribed",
        "segmentationFieldValues": [],
    }
    assert contact.last_request.url == CONTACT


def test_unmapped_attributes_are_not_sent(partner_config, make_runtime, requests_mock, listrak_token):
    partner_config(drop=("segmentation_fields.share_link", "segmentation_fields.funnel"))
    runtime = make_runtime()
    contact = requests_mock.post(CONTACT, status_code=200, json={"status": 200})
    post_with(runtime, referral_event())
    Worker(runtime).run_once()
    assert [f["segmentationFieldId"] for f in contact.last_request.json()["segmentationFieldValues"]] == [
        1001,
        1003,
        1004,
    ]


def test_external_contact_id_when_configured(partner_config, make_runtime, requests_mock, listrak_token):
    partner_config(send_external_contact_id=True)
    runtime = make_runtime()
    contact = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_with(runtime, referral_event())
    Worker(runtime).run_once()
    assert contact.last_request.json()["externalContactID"] == "u-829"


def test_resubscribe_sets_override_unsubscribe(partner_config, make_runtime, requests_mock, listrak_token):
    partner_config(resubscribe=True)
    runtime = make_runtime()
    contact = requests_mock.post(CONTACT, status_code=200, json={"status": 200})
    post_with(runtime, referral_event())
    Worker(runtime).run_once()
    assert contact.last_request.url == f"{CONTACT}?overrideUnsubscribe=true"
    assert contact.last_request.json()["subscriptionState"] == "Subscribed"


def test_without_resubscribe_no_query_is_sent(deliver, contact):
    deliver(referral_event())
    assert contact.last_request.query == ""


# -- opt-out -------------------------------------------------------------------------------------


def test_opt_out_sends_no_profile_fields(deliver, contact):
    (delivery,) = deliver(referral_event(type="opt_out"), expect_sent=1)
    request = contact.last_request
    assert request.url == CONTACT
    assert request.json() == {"emailAddress": JANE, "subscriptionState": "Unsubscribed"}
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Content-Type"] == "application/json"
    assert delivery["state"] == "delivered"


def test_opt_out_never_overrides_or_sends_external_id(
    partner_config, make_runtime, requests_mock, listrak_token
):
    partner_config(resubscribe=True, send_external_contact_id=True)
    runtime = make_runtime()
    contact = requests_mock.post(CONTACT, status_code=200, json={"status": 200})
    post_with(runtime, referral_event(type="opt_out"))
    Worker(runtime).run_once()
    assert contact.last_request.url == CONTACT
    assert contact.last_request.json() == {"emailAddress": JANE, "subscriptionState": "Unsubscribed"}


@pytest.mark.parametrize("code", ["ERROR_UNSUBSCRIBED_EMAIL_ADDRESS", "ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS"])
def test_opt_out_of_someone_already_out_is_delivered(deliver, requests_mock, listrak_token, code):
    requests_mock.post(CONTACT, **listrak_error(400, code))
    (delivery,) = deliver(referral_event(type="opt_out"))
    assert delivery["state"] == "delivered"
    assert delivery["reason"] == "already unsubscribed or not subscribed in Listrak"
    assert delivery["last_error_code"] == code


# -- directions switched off and staging ---------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "event_type"), [("send_opt_ins", "opt_in"), ("send_opt_outs", "opt_out")]
)
def test_direction_switched_off_is_skipped(partner_config, make_runtime, requests_mock, setting, event_type):
    partner_config(**{setting: False})
    runtime = make_runtime()
    assert post_with(runtime, referral_event(type=event_type)).status_code == 202
    assert Worker(runtime).run_once() == 0
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "skipped"
    assert delivery["reason"] == f"{setting} is off for this partner"
    assert requests_mock.call_count == 0


def test_staging_event_uses_staging_credentials(deliver, requests_mock, contact):
    (delivery,) = deliver(referral_event(environment="staging"))
    token_request, contact_request = requests_mock.request_history
    assert token_request.url == TOKEN_URL
    assert "client_id=staging-client" in token_request.text
    assert "client_secret=staging-secret-value" in token_request.text
    assert contact_request.url == CONTACT
    assert delivery["state"] == "delivered"
    assert delivery["partner_key_id"] == "listrak-staging"


def test_staging_event_without_staging_key_never_uses_production(
    partner_config, make_runtime, requests_mock, listrak_token
):
    partner_config(drop=("keys.staging",))
    runtime = make_runtime()
    post_with(runtime, referral_event(environment="staging"))
    assert Worker(runtime).run_once() == 0
    assert requests_mock.call_count == 0
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "skipped"
    assert delivery["reason"] == "staging event and no staging key is configured"


# -- Listrak's answers → outcomes ----------------------------------------------------------------


def test_opt_in_of_someone_unsubscribed_in_listrak_is_skipped(deliver, requests_mock, listrak_token, runtime):
    requests_mock.post(
        CONTACT,
        **listrak_error(
            400,
            "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS",
            "The emailAddress has already been unsubscribed from the list.",
        ),
    )
    (delivery,) = deliver(referral_event())
    assert delivery["state"] == "skipped"
    assert delivery["reason"] == "unsubscribed in Listrak (resubscribe is off)"
    (attempt,) = stored_attempts(runtime)
    assert attempt["error_code"] == "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ERROR_INVALID_PARAMETER"),
        (400, "ERROR_BANNED_EMAIL_ADDRESS"),
        (400, "ERROR_SUPPRESSED_EMAIL"),
        (404, "ERROR_UNABLE_TO_LOCATE_RESOURCE"),
        (415, "ERROR_UNSUPPORTED_CONTENT_TYPE"),
    ],
)
def test_other_client_errors_are_dead_with_the_listrak_code(
    deliver, requests_mock, listrak_token, runtime, status, code
):
    requests_mock.post(CONTACT, **listrak_error(status, code, "Listrak says no"))
    (delivery,) = deliver(referral_event())
    assert delivery["state"] == "dead"
    assert (delivery["last_status"], delivery["last_error_code"], delivery["last_error_message"]) == (
        status,
        code,
        "Listrak says no",
    )
    (attempt,) = stored_attempts(runtime)
    assert (attempt["outcome"], attempt["status"], attempt["error_code"]) == ("dead", status, code)
    assert attempt["response"]["status"] == status


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 500, "json": {"status": 500, "error": "ERROR_INTERNAL", "message": "boom"}},
        {"status_code": 502, "text": "<html>bad gateway</html>"},
        {"status_code": 503, "text": ""},
        {"status_code": 429, "text": "slow down"},
        {"status_code": 408, "text": ""},
        {"exc": requests.exceptions.ConnectTimeout},
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": requests.exceptions.ConnectionError},
    ],
)
def test_transient_failures_are_retried_later(
    deliver, requests_mock, listrak_token, runtime, clock, no_jitter, answer
):
    requests_mock.post(CONTACT, **answer)
    (delivery,) = deliver(referral_event())
    assert (delivery["state"], delivery["attempts"], delivery["lease_owner"]) == ("retrying", 1, None)
    assert delivery["next_attempt_at"] == clock.at + 1  # the schedule's first step: 1s
    (attempt,) = stored_attempts(runtime)
    assert attempt["outcome"] == "retrying"


@pytest.fixture
def no_jitter(monkeypatch):
    """The schedule's steps as configured (the worker spreads them by up to a fifth)."""
    monkeypatch.setattr(outcomes, "random", SimpleNamespace(uniform=lambda low, high: 1.0))


@pytest.mark.parametrize("form", ["seconds", "HTTP date"])
def test_retry_after_is_honoured(deliver, requests_mock, listrak_token, clock, form):
    retry_after = "120" if form == "seconds" else formatdate(clock.at + 120, usegmt=True)
    requests_mock.post(CONTACT, status_code=429, headers={"Retry-After": retry_after}, text="")
    (delivery,) = deliver(referral_event())
    assert (delivery["state"], delivery["next_attempt_at"]) == ("retrying", clock.at + 120)


def test_retrying_delivery_is_delivered_on_the_next_try(deliver, requests_mock, listrak_token, runtime):
    contact = requests_mock.post(
        CONTACT, [{"status_code": 503, "text": ""}, {"status_code": 201, "json": {"status": 201}}]
    )
    deliver(referral_event())
    make_due(runtime)
    assert Worker(runtime).run_once() == 1
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    assert contact.call_count == 2
    assert [a["outcome"] for a in stored_attempts(runtime)] == ["retrying", "delivered"]


def test_dead_when_the_schedule_runs_out(partner_config, make_runtime, requests_mock, listrak_token):
    partner_config(retry_schedule=["1s"])
    runtime = make_runtime()
    requests_mock.post(CONTACT, status_code=500, text="")
    post_with(runtime, referral_event())
    Worker(runtime).run_once()
    make_due(runtime)
    Worker(runtime).run_once()
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "dead"
    assert delivery["reason"] == "retry schedule ran out: HTTP 500"


def make_due(runtime):
    from sqlalchemy import update

    from connector.outbox.tables import deliveries

    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.state == "retrying").values(next_attempt_at=0))


# -- the attempt log ----------------------------------------------------------------------------


def test_attempt_records_redacted_request_and_response(deliver, contact, runtime):
    deliver(referral_event())
    (attempt,) = stored_attempts(runtime)
    assert attempt["outcome"] == "delivered"
    assert attempt["status"] == 201
    assert attempt["latency_ms"] >= 0
    request = attempt["request"]
    assert request["method"] == "POST"
    assert request["url"] == CONTACT
    assert request["headers"]["Authorization"] == "Bearer ***"
    assert request["headers"]["Content-Type"] == "application/json"
    assert '"subscriptionState":"Subscribed"' in request["body"]
    assert attempt["response"]["status"] == 201
    assert '"resourceId"' in attempt["response"]["body"]
    assert "tok-1" not in str(attempt)


def test_each_delivery_is_sent_once(deliver, contact):
    deliver(
        referral_event("a", email="a@example.com"), referral_event("b", email="b@example.com"), expect_sent=2
    )
    assert sorted(r.json()["emailAddress"] for r in contact.request_history) == [
        "a@example.com",
        "b@example.com",
    ]
