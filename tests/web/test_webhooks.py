"""POST /webhooks/<source_id>: 202 only after the commit, duplicates, and every bad input
answered with a documented 4xx naming the problem, nothing queued, never a 500."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy.exc import OperationalError

from connector.app import create_app
from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_deliveries, stored_events
from plugins.extole.testing import referral_event, sign
from tests.config_files import update_yaml


def test_accepted_event_is_committed_with_its_delivery(post_events, runtime):
    response = post_events(referral_event())
    assert response.status_code == 202
    assert response.json == {"accepted": 1, "duplicates": 0}
    (event,) = stored_events(after_planning(runtime))
    assert (event["source_id"], event["event_id"], event["type"], event["environment"]) == (
        "extole",
        "e-1",
        "opt_in",
        "production",
    )
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["event_pk"] == event["id"]
    assert (delivery["partner_id"], delivery["state"], delivery["partner_key_id"]) == (
        "listrak",
        "queued",
        "listrak-production",
    )


def test_email_is_trimmed_and_lower_cased(post_events, runtime):
    post_events(referral_event(email="  Jane.Doe@Example.COM \t"))
    assert stored_events(after_planning(runtime))[0]["email"] == "jane.doe@example.com"
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["spec"]["email"] == "jane.doe@example.com"
    assert delivery["contact_key"] == "listrak|production|12345|jane.doe@example.com"


def test_array_of_events_is_accepted(post_events, runtime):
    response = post_events(
        [
            referral_event("a", email="a@example.com"),
            referral_event("b", email="b@example.com", type="opt_out"),
        ]
    )
    assert response.json == {"accepted": 2, "duplicates": 0}
    assert [d["spec"]["state"] for d in stored_deliveries(after_planning(runtime))] == [
        "Subscribed",
        "Unsubscribed",
    ]


def test_numeric_event_id_keeps_its_digits(post_events, runtime):
    body = json.dumps(referral_event()).replace('"e-1"', "7371940231718590001").encode()
    assert post_events(body).status_code == 202
    assert stored_events(after_planning(runtime))[0]["event_id"] == "7371940231718590001"


def test_repeated_event_id_is_a_duplicate_and_not_queued_twice(post_events, runtime):
    assert post_events(referral_event()).json == {"accepted": 1, "duplicates": 0}
    again = post_events(referral_event(type="opt_out"))
    assert again.status_code == 202
    assert again.json == {"accepted": 0, "duplicates": 1}
    assert len(stored_events(after_planning(runtime))) == 1
    assert [d["spec"]["state"] for d in stored_deliveries(after_planning(runtime))] == ["Subscribed"]


def test_repeated_event_id_within_one_array(post_events, runtime):
    response = post_events(
        [referral_event("x"), referral_event("y", email="y@example.com"), referral_event("x")]
    )
    assert response.json == {"accepted": 2, "duplicates": 1}
    assert [e["event_id"] for e in stored_events(after_planning(runtime))] == ["x", "y"]
    assert len(stored_deliveries(after_planning(runtime))) == 2


def test_same_event_id_from_another_source_is_not_a_duplicate(config_dir, make_runtime):
    (config_dir / "sources/extole-eu.yaml").write_text((config_dir / "sources/extole.yaml").read_text())
    runtime = make_runtime()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    body = json.dumps(referral_event()).encode()
    headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
    assert client.post("/webhooks/extole", data=body, headers=headers).json["accepted"] == 1
    assert client.post("/webhooks/extole-eu", data=body, headers=headers).json["accepted"] == 1


def test_no_202_when_the_commit_fails(post_events, runtime, monkeypatch):
    def failing_accept(*args, **kwargs):
        raise OperationalError("INSERT INTO seen_events", {}, Exception("database is locked"))

    monkeypatch.setattr("connector.web.webhooks.accept", failing_accept)
    response = post_events(referral_event())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"] == "store unavailable"
    assert stored_events(after_planning(runtime)) == []


# -- bad input: documented 4xx, a JSON body naming the problem, nothing queued -----------------


def assert_nothing_queued(runtime):
    assert stored_events(after_planning(runtime)) == []
    assert stored_deliveries(after_planning(runtime)) == []


def bad_payload(post_events, runtime, payload) -> dict:
    response = post_events(payload)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid payload"
    assert_nothing_queued(runtime)
    return response.json["problems"]


def test_malformed_json(post_events, runtime):
    problems = bad_payload(post_events, runtime, b'{"event_id": "e-1",')
    assert list(problems) == ["$"]
    assert problems["$"][0].startswith("malformed JSON: ")


@pytest.mark.parametrize("body", [b"", b"\xff\xfe\x00", b"[" * 50_000])
def test_unreadable_bodies_are_400(post_events, runtime, body):
    assert list(bad_payload(post_events, runtime, body)) == ["$"]


@pytest.mark.parametrize("levels", [65, 970, 971, 50_000])
def test_json_nested_deeper_than_64_levels_is_400_naming_the_path(post_events, runtime, levels):
    body = b'{"person": ' * levels + b"1" + b"}" * levels
    assert bad_payload(post_events, runtime, body) == {
        "person." * 63 + "person": ["nested deeper than 64 levels"]
    }


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 400])
def test_a_number_outside_the_double_range_is_400_naming_the_path(post_events, runtime, number):
    body = json.dumps(referral_event()).replace('"Jane"', number).encode()
    assert bad_payload(post_events, runtime, body) == {
        "person.first_name": ["a number outside the range of a double (about ±1.8e308)"]
    }


@pytest.mark.parametrize("body", [b'"opt_in"', b"null", b"42"])
def test_body_must_be_an_object_or_array(post_events, runtime, body):
    assert bad_payload(post_events, runtime, body) == {"$": ["an event must be a JSON object"]}


def test_empty_array(post_events, runtime):
    assert bad_payload(post_events, runtime, []) == {"$": ["an empty array holds no events"]}


def test_missing_required_fields_are_each_named(post_events, runtime):
    assert bad_payload(post_events, runtime, {"client_id": "1"}) == {
        "event_id": ["Missing data for required field."],
        "type": ["Missing data for required field."],
        "event_time": ["Missing data for required field."],
        "person": ["Missing data for required field."],
    }


def test_wrong_types(post_events, runtime):
    event = referral_event()
    event.update(event_id=["e"], event_time=12345, environment="prod")
    event["person"]["first_name"] = {"given": "Jane"}
    assert bad_payload(post_events, runtime, event) == {  # an optional field never refuses one
        "event_id": ["Not a valid string."],
        "event_time": ["not an ISO-8601 date-time"],
        "environment": ["Must be one of: production, staging."],
    }


def test_event_time_needs_an_offset(post_events, runtime):
    problems = bad_payload(post_events, runtime, referral_event(event_time="2026-11-22T05:44:22"))
    assert problems == {"event_time": ["needs a UTC offset, e.g. 2026-11-22T05:44:22Z"]}


def test_missing_email(post_events, runtime):
    event = referral_event()
    del event["person"]["email"]
    assert bad_payload(post_events, runtime, event) == {"person.email": ["Missing data for required field."]}


@pytest.mark.parametrize("email", ["", "   ", "jane", "jane@", "@example.com", "a b@example.com"])
def test_invalid_email(post_events, runtime, email):
    assert bad_payload(post_events, runtime, referral_event(email=email)) == {
        "person.email": ["not a valid email address"]
    }


def test_unknown_type(post_events, runtime):
    assert bad_payload(post_events, runtime, referral_event(type="subscribe")) == {
        "type": ["Must be one of: opt_in, opt_out, sms_opt_in, sms_opt_out."]
    }


@pytest.mark.parametrize("funnel", ["friend and advocate", "Friend", "partner"])
def test_any_funnel_text_is_sent_as_it_is(post_events, runtime, funnel):
    assert post_events(referral_event(funnel=funnel)).status_code == 202
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert {"segmentationFieldId": 1005, "value": funnel} in delivery["spec"]["fields"]


@pytest.mark.parametrize("funnel", [5, "f" * 65, "friend\n"])
def test_a_funnel_that_does_not_fit_is_left_out_and_the_consent_change_queued(post_events, runtime, funnel):
    assert post_events(referral_event(funnel=funnel)).json == {"accepted": 1, "duplicates": 0}
    (event,) = stored_events(after_planning(runtime))
    assert json.loads(event["warnings"])[0].startswith("person.funnel: ")
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["spec"]["state"]) == ("queued", "Subscribed")
    assert 1005 not in [field["segmentationFieldId"] for field in delivery["spec"]["fields"]]


def test_sms_event_with_a_number_that_is_not_one_is_a_400_naming_the_path(post_events, runtime):
    payload = [
        referral_event("s-1", type="sms_opt_in", phone_number="+1 (555) 555-5555"),
        referral_event("s-2", type="sms_opt_out", phone_number="555-5555"),
    ]
    assert bad_payload(post_events, runtime, payload) == {
        "[1].person.phone_number": ["not a phone number of 8–15 digits"]
    }


def test_sms_event_is_stored_with_its_number(post_events, runtime):
    event = referral_event("s-1", type="sms_opt_in", phone_number="+1 (555) 555-5555")
    del event["person"]["email"]
    assert post_events(event).status_code == 202
    (stored,) = stored_events(runtime)
    assert (stored["type"], stored["email"], stored["phone"]) == ("sms_opt_in", None, "15555555555")


def test_bad_event_in_an_array_names_its_index_and_queues_none(post_events, runtime):
    payload = [
        referral_event("ok-1", email="a@example.com"),
        referral_event("bad", email="not-an-email"),
        referral_event("ok-2", email="b@example.com"),
        "opt_in",
    ]
    assert bad_payload(post_events, runtime, payload) == {
        "[1].person.email": ["not a valid email address"],
        "[3]": ["an event must be a JSON object"],
    }


def test_more_than_1000_events(post_events, runtime):
    payload = [referral_event(f"e-{i}", email=f"p{i}@example.com") for i in range(1001)]
    assert bad_payload(post_events, runtime, payload) == {"$": ["at most 1000 events per request, got 1001"]}


def test_exactly_1000_events_are_accepted(post_events, runtime):
    payload = [
        {
            "event_id": f"e-{i}",
            "type": "opt_in",
            "event_time": "2026-11-22T05:44:22Z",
            "person": {"email": f"p{i}@example.com"},
        }
        for i in range(1000)
    ]
    assert post_events(payload).json == {"accepted": 1000, "duplicates": 0}
    assert len(stored_deliveries(after_planning(runtime))) == 1000


def test_body_over_one_mebibyte_is_413(post_events, runtime):
    event = referral_event(share_link="x" * 100)
    event["padding"] = "p" * (1024 * 1024)
    response = post_events(event)
    assert response.status_code == 413
    assert response.json["error"] == "request entity too large"
    assert_nothing_queued(runtime)


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 3 * 1024 * 1024])
def test_body_over_one_mebibyte_without_a_content_length_is_413(client, runtime, size):
    """A chunked body: the server ends the stream, and no length was declared up front."""
    body = json.dumps([referral_event(share_link="x" * 100)] * 2).encode().ljust(size)
    response = client.post(
        "/webhooks/extole",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert (response.status_code, response.json["message"]) == (413, "the body is larger than 1048576 bytes")
    assert_nothing_queued(runtime)


def test_body_of_exactly_one_mebibyte_without_a_content_length_is_read_whole(client, runtime):
    body = json.dumps(referral_event()).encode().ljust(1024 * 1024)
    response = client.post(
        "/webhooks/extole",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 202


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(post_events, runtime, content_type):
    response = post_events(referral_event(), headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json == {
        "error": "unsupported content type",
        "message": "send the events with Content-Type: application/json",
    }
    assert_nothing_queued(runtime)


def test_json_with_charset_is_accepted(post_events):
    response = post_events(referral_event(), headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 202


def test_unknown_source_is_404(post_events, runtime):
    response = post_events(referral_event(), source="friendbuy")
    assert response.status_code == 404
    assert response.json == {"error": "unknown source", "message": "no source 'friendbuy' is configured"}
    assert_nothing_queued(runtime)


def test_bad_signature_is_401(post_events, runtime):
    response = post_events(referral_event(), secret="wrong-secret")
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "message": "signature does not match the body"}
    assert_nothing_queued(runtime)


def test_missing_signature_is_401(client, runtime):
    response = client.post(
        "/webhooks/extole", data=json.dumps(referral_event()), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "message": "missing X-Extole-Signature header"}
    assert_nothing_queued(runtime)


def test_sha1_signature_form_is_accepted(client):
    body = json.dumps(referral_event()).encode()
    response = client.post(
        "/webhooks/extole",
        data=body,
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body, algorithm="sha1")},
    )
    assert response.status_code == 202


def test_signature_is_checked_before_the_payload(post_events, runtime):
    response = post_events(b"{not json", secret="wrong-secret")
    assert response.status_code == 401


def test_get_is_405_json(client):
    response = client.get("/webhooks/extole")
    assert response.status_code == 405
    assert response.json["error"] == "method not allowed"


# -- staging events and keys -----------------------------------------------------------------


def test_staging_event_without_staging_key_is_skipped_and_never_sent(config_dir, make_runtime, requests_mock):
    update_yaml(config_dir / "partners/listrak.yaml", drop=("keys.staging",))
    runtime = make_runtime()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    body = json.dumps(referral_event(environment="staging")).encode()
    response = client.post(
        "/webhooks/extole",
        data=body,
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
    )
    assert response.json == {"accepted": 1, "duplicates": 0}
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "skipped"
    assert delivery["reason"] == "staging event and no staging key is configured"
    assert delivery["partner_key_id"] is None
    assert Worker(runtime).run_once() == 0
    assert requests_mock.call_count == 0


def test_staging_event_uses_the_staging_key(post_events, runtime):
    post_events(referral_event(environment="staging"))
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["environment"], delivery["partner_key_id"]) == (
        "queued",
        "staging",
        "listrak-staging",
    )
    assert delivery["contact_key"] == "listrak|staging|12345|jane.doe@example.com"
