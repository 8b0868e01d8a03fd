"""One person's consent story (`GET /admin/api/contacts/<address>`, `/live/contacts/<address>`):
their consent events across channels in event-time order with each change's outcome in words,
the connector's last word per contact, and what Listrak holds now, read live with the exact
requests asserted."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from connector.delivery.worker import Worker
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API, SMS_API, TOKEN_URL

ADMIN = {"Authorization": "Bearer test-admin-token"}
PHONE = "15555555555"
JANE = "jane.doe@example.com"
SUBSCRIBE = f"{SMS_API}/ShortCode/123/Contact/{PHONE}/PhoneList/456"
UNSUBSCRIBE = f"{SMS_API}/ShortCode/123/ContactUnsubscribe/{PHONE}/PhoneList/456"
SMS_CONTACT = f"{SMS_API}/ShortCode/123/Contact/{PHONE}"
EMAIL_CONTACT = f"{API}/List/12345/Contact/{JANE}"
T = "2026-11-22T0{}:00:00Z"
NEITHER = "address: neither an email address nor a phone number"


def sms(event_id, type, hour, **more):
    return referral_event(event_id, type, event_time=T.format(hour), phone_number="+1 (555) 555-5555", **more)


@pytest.fixture
def listrak(requests_mock):
    """Listrak answering the sends: each client gets its own token."""

    def token(request, context):
        client = dict(pair.split("=") for pair in request.text.split("&"))["client_id"]
        return {"access_token": f"tok-{client}", "token_type": "bearer", "expires_in": 3599}

    requests_mock.post(TOKEN_URL, json=token)
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    requests_mock.post(SUBSCRIBE, status_code=201, json={"status": 201})
    requests_mock.delete(UNSUBSCRIBE, status_code=200, json={"status": 200})
    return requests_mock


@pytest.fixture
def jane(post_events, runtime, listrak):
    """Jane's email opt-in (01:00, with her number), SMS opt-in (02:00), SMS opt-out (04:00),
    a late SMS opt-in (03:00) and a staging SMS opt-in (05:00, no staging SMS key)."""
    post_events([referral_event("e-1", event_time=T.format(1)), sms("s-1", "sms_opt_in", 2)])
    Worker(runtime).run_once()
    post_events(sms("s-3", "sms_opt_out", 4))
    Worker(runtime).run_once()
    post_events([sms("s-2", "sms_opt_in", 3), sms("s-4", "sms_opt_in", 5, environment="staging")])
    Worker(runtime).run_once()


@pytest.fixture
def listrak_now(listrak):
    """What Listrak holds now: Jane subscribed by email, her number unsubscribed from the list."""
    listrak.get(
        EMAIL_CONTACT,
        json={
            "status": 200,
            "data": {
                "emailAddress": JANE,
                "subscriptionState": "Subscribed",
                "subscribeDate": "2026-11-22T01:00:05Z",
            },
        },
    )
    listrak.get(
        SMS_CONTACT,
        json={
            "status": 200,
            "data": {"phoneNumber": PHONE, "optedOut": False, "subscribeDate": "2026-11-22T02:00:05Z"},
        },
    )
    listrak.get(
        f"{SMS_CONTACT}/PhoneList",
        json={
            "status": 200,
            "nextPageCursor": None,
            "data": [
                {
                    "phoneListId": 456,
                    "subscriptionState": "Unsubscribed",
                    "unsubscribeDate": "2026-11-22T04:00:05Z",
                }
            ],
        },
    )
    return listrak


def story(client, address: str, **args):
    answer = client.get(f"/admin/api/contacts/{quote(address)}", query_string=args, headers=ADMIN)
    assert answer.status_code == 200, answer.json
    return answer.json


def rows(told) -> list[tuple]:
    return [
        (e["event_id"], c["place"], c["change"], c["outcome"]) for e in told["events"] for c in e["changes"]
    ]


def test_a_numbers_story_is_every_consent_event_carrying_it_in_event_time_order(client, jane, listrak_now):
    told = story(client, "+1 (555) 555-5555")
    assert told["address"] == {"kind": "phone", "value": PHONE}
    sms_list = "SMS list 456 (sender code 123)"
    assert rows(told) == [
        ("e-1", "email list 12345", "subscribe", "delivered"),
        ("s-1", sms_list, "subscribe", "delivered"),
        ("s-2", sms_list, "subscribe", "superseded"),
        ("s-3", sms_list, "unsubscribe", "delivered"),
        ("s-4", sms_list, "subscribe", "skipped"),
    ]
    by_event = {e["event_id"]: e["changes"][0] for e in told["events"]}
    assert by_event["s-2"]["superseded_by"]["event"]["event_id"] == "s-3"
    assert by_event["s-2"]["explanation"] == (
        "superseded by event s-3 (sms_opt_out at 2026-11-22T04:00:00.000Z), which is newer: not sent"
    )
    assert by_event["s-4"]["explanation"] == "skipped: staging event and no staging key in sms.keys: not sent"
    assert by_event["s-1"]["explanation"].startswith("delivered (HTTP 201) at ")
    assert told["related"] == [{"kind": "email", "value": JANE}]


def test_each_contact_has_the_connectors_last_word_and_what_listrak_holds(client, jane, listrak_now):
    told = story(client, PHONE)
    contacts = {(c["environment"], c["place"]): c for c in told["contacts"]}
    sms_contact = contacts[("production", "SMS list 456 (sender code 123)")]
    assert sms_contact["last_word"]["event"]["event_id"] == "s-3"
    assert sms_contact["partner_now"]["state"] == "Unsubscribed"
    assert sms_contact["verdict"] == (
        "The connector last asked to unsubscribe (sms_opt_out s-3 at 2026-11-22T04:00:00.000Z), delivered. "
        "The partner agrees: Unsubscribed."
    )
    email_contact = contacts[("production", "email list 12345")]
    assert email_contact["partner_now"]["state"] == "Subscribed"  # her email, read as well
    assert email_contact["verdict"].endswith("The partner agrees: Subscribed.")
    staging = contacts[("staging", "SMS list 456 (sender code 123)")]
    assert staging["verdict"] == "The connector never sent a change here (every event was skipped)."


def test_the_live_reads_are_the_exact_get_requests_with_each_apis_key(client, jane, listrak_now):
    sent = len(listrak_now.request_history)
    story(client, PHONE)
    reads = [
        (r.method, r.url, r.headers["Authorization"])
        for r in listrak_now.request_history[sent:]
        if r.method == "GET"
    ]
    assert sorted(reads) == sorted(
        [
            ("GET", SMS_CONTACT, "Bearer tok-sms-client"),
            ("GET", f"{SMS_CONTACT}/PhoneList", "Bearer tok-sms-client"),
            ("GET", EMAIL_CONTACT, "Bearer tok-prod-client"),
            ("GET", EMAIL_CONTACT, "Bearer tok-staging-client"),
        ]
    )


def test_live_false_reads_nothing(client, jane, listrak):
    sent = listrak.call_count
    told = story(client, PHONE, live="false")
    assert told["partner_state"] is None
    assert listrak.call_count == sent
    (sms_contact,) = [c for c in told["contacts"] if c["last_word"] and c["place"].startswith("SMS")]
    assert sms_contact["verdict"].endswith("), delivered.")


def test_listrak_differing_from_the_last_word_is_said(client, jane, listrak_now):
    listrak_now.get(
        f"{SMS_CONTACT}/PhoneList",
        json={"status": 200, "data": [{"phoneListId": 456, "subscriptionState": "Subscribed"}]},
    )
    (sms_contact,) = [
        c
        for c in story(client, PHONE)["contacts"]
        if c["environment"] == "production" and c["place"].startswith("SMS")
    ]
    assert (
        "The partner differs: it shows Subscribed, so it changed there afterwards" in sms_contact["verdict"]
    )


def test_a_partner_that_cannot_be_read_is_said_and_the_story_still_told(client, jane, listrak_now):
    listrak_now.get(
        SMS_CONTACT,
        status_code=500,
        json={"status": 500, "error": "ERROR_UNHANDLED_EXCEPTION", "message": "boom"},
    )
    told = story(client, PHONE)
    (sms_contact,) = [
        c for c in told["contacts"] if c["environment"] == "production" and c["place"].startswith("SMS")
    ]
    assert sms_contact["verdict"].endswith(
        "The partner could not be read: HTTP 500 ERROR_UNHANDLED_EXCEPTION: boom."
    )
    assert len(told["events"]) == 5


@pytest.mark.parametrize(
    "answer",
    [
        {"text": "<html>busy</html>"},
        {"json": {"status": 200, "data": ["odd"]}},
        {"json": [{"data": None}]},
    ],
)
def test_answers_of_any_shape_are_said_and_never_fail_the_page(client, jane, listrak_now, answer):
    listrak_now.get(SMS_CONTACT, status_code=200, **answer)
    told = story(client, PHONE)
    (read,) = [s for s in told["partner_state"] if s["address"] == PHONE]
    assert read["state"] is None or read["state"].startswith("unknown")
    assert client.get(f"/live/contacts/{PHONE}", headers=ADMIN).status_code == 200


def test_a_number_listrak_does_not_know_is_not_on_the_list(client, post_events, listrak):
    listrak.get(
        SMS_CONTACT, status_code=404, json={"status": 404, "error": "ERROR_UNABLE_TO_LOCATE_RESOURCE"}
    )
    told = story(client, PHONE)
    assert told["events"] == []
    assert [(s["place"], s["state"], s["subscribed"]) for s in told["partner_state"]] == [
        ("SMS list 456 (sender code 123)", "not on the list", False)
    ]


def test_an_email_story_has_the_sms_events_that_carry_the_address(
    client, post_events, runtime, listrak, listrak_now
):
    event = sms("s-1", "sms_opt_in", 2)
    post_events([event, referral_event("e-1", event_time=T.format(1))])
    Worker(runtime).run_once()
    told = story(client, " Jane.Doe@Example.COM ")
    assert told["address"] == {"kind": "email", "value": JANE}
    assert [e["event_id"] for e in told["events"]] == ["e-1", "s-1"]
    assert told["related"] == [{"kind": "phone", "value": PHONE}]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("jane@", "address: not a valid email address"),
        (
            "12",
            f"{NEITHER} (one of 8–15 digits with its country code, e.g. +1 555 555 5555)",
        ),
        (
            "call me",
            f"{NEITHER} (one of 8–15 digits with its country code, e.g. +1 555 555 5555)",
        ),
    ],
)
def test_an_address_that_is_neither_is_a_400_saying_so(client, address, message):
    answer = client.get(f"/admin/api/contacts/{quote(address)}", headers=ADMIN)
    assert (answer.status_code, answer.json) == (400, {"error": "bad request", "message": message})


def test_a_bad_live_argument_is_a_400(client):
    answer = client.get(f"/admin/api/contacts/{PHONE}?live=perhaps", headers=ADMIN)
    assert (answer.status_code, answer.json["message"]) == (400, "live: true or false")


# -- the Live View page -----------------------------------------------------------------------
def test_the_page_tells_the_story_and_event_pages_link_to_it(client, jane, listrak_now):
    page = client.get(f"/live/contacts/{PHONE}", headers=ADMIN).get_data(as_text=True)
    assert 'Consent story of <code id="address">15555555555</code>' in page
    assert (
        "superseded by event s-3 (sms_opt_out at 2026-11-22T04:00:00.000Z), which is newer: not sent" in page
    )
    assert "The partner agrees: Unsubscribed." in page
    assert f'href="/live/contacts/{quote(JANE)}"' in page or f'href="/live/contacts/{JANE}"' in page
    event = client.get("/live/events/1", headers=ADMIN).get_data(as_text=True)
    assert f'href="/live/contacts/{PHONE}"' in event


def test_the_lookup_box_leads_to_the_story(client):
    answer = client.get("/live?story=%2B1%20555%20555%205555", headers=ADMIN)
    assert (answer.status_code, answer.headers["Location"]) == (302, f"/live/contacts/{PHONE}")
    refused = client.get("/live?story=nobody", headers=ADMIN)
    assert refused.status_code == 400
