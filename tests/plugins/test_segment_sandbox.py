"""The Segment tracking-API look-alike: what it records, how it checks write keys and Segment's
size limits, its faults and its control routes."""

from __future__ import annotations

import gzip
import json

import pytest

from plugins.segment.keys import basic_header
from plugins.segment.sandbox import DEMO_WRITE_KEY, create_sandbox_app

AUTH = {"Authorization": basic_header(DEMO_WRITE_KEY)}


def call(message_id: str, type_: str = "track", **extra) -> dict:
    message = {"type": type_, "messageId": message_id, "anonymousId": "jane@example.com", **extra}
    if type_ == "track":
        message.setdefault("event", "Email Opened")
    return message


@pytest.fixture
def lookalike():
    return create_sandbox_app().test_client()


def state(client) -> dict:
    return client.get("/_sandbox/state").json


def test_a_batch_is_recorded_call_by_call(lookalike):
    batch = [call("m1"), call("m2", event="Link Clicked"), call("m3", "identify")]
    response = lookalike.post(
        "/v1/batch", json={"batch": batch, "sentAt": "2026-11-22T05:44:22.000Z"}, headers=AUTH
    )
    assert (response.status_code, response.json) == (200, {"success": True})
    seen = state(lookalike)
    assert seen["calls"] == {
        "total": 3,
        "by_type": {"track": 2, "identify": 1},
        "by_event": {"Email Opened": 1, "Link Clicked": 1},
    }
    assert seen["message_ids"] == ["m1", "m2", "m3"]
    size = len(json.dumps({"batch": batch, "sentAt": "2026-11-22T05:44:22.000Z"}).encode())
    assert seen["requests"]["log"] == [
        {"path": "/v1/batch", "status": 200, "bytes": size, "gzip": False, "events": 3}
    ]
    assert lookalike.get("/_sandbox/calls").json == {"calls": batch}
    assert lookalike.get("/_sandbox/calls?event=Link Clicked").json == {"calls": [batch[1]]}


def test_a_gzip_body_is_read(lookalike):
    body = gzip.compress(json.dumps({"batch": [call("m1")]}).encode())
    headers = {**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert lookalike.post("/v1/batch", data=body, headers=headers).status_code == 200
    assert state(lookalike)["message_ids"] == ["m1"]


def test_single_calls_take_their_type_from_the_route(lookalike):
    assert lookalike.post("/v1/track", json={**call("m1"), "type": "x"}, headers=AUTH).status_code == 200
    assert lookalike.post("/v1/i", json=call("m2", "identify"), headers=AUTH).status_code == 200
    assert state(lookalike)["calls"]["by_type"] == {"track": 1, "identify": 1}


@pytest.mark.parametrize(
    ("headers", "body", "answer"),
    [
        (
            {"Authorization": basic_header("not-a-known-key")},
            {"batch": [call("m1")]},
            (401, {"code": "unauthorized", "message": "unknown write key"}),
        ),
        (
            {},
            {"batch": [call("m1")]},
            (400, {"code": "invalid_request", "message": "no write key (HTTP Basic user name or writeKey)"}),
        ),
        ({}, {"batch": [call("m1")], "writeKey": DEMO_WRITE_KEY}, (200, {"success": True})),
    ],
)
def test_write_keys_are_checked(lookalike, headers, body, answer):
    response = lookalike.post("/v1/batch", json=body, headers=headers)
    assert (response.status_code, response.json) == answer


def test_any_write_key_is_taken_when_none_are_configured():
    open_lookalike = create_sandbox_app(write_keys=None).test_client()
    response = open_lookalike.post(
        "/v1/batch", json={"batch": [call("m1")]}, headers={"Authorization": basic_header("whatever")}
    )
    assert response.status_code == 200


def test_a_request_over_500_kb_is_refused_whole(lookalike):
    batch = [call(f"m{i}", properties={"padding": "x" * 20_000}) for i in range(25)]
    response = lookalike.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert (response.status_code, response.json) == (
        400,
        {"code": "payload_too_large", "message": "request is over the 500 KB limit of /v1/batch"},
    )
    assert state(lookalike)["calls"]["total"] == 0


def test_an_event_over_32_kb_refuses_its_whole_batch(lookalike):
    big = call("m2", properties={"padding": "x" * 33_000})
    response = lookalike.post("/v1/batch", json={"batch": [call("m1"), big]}, headers=AUTH)
    size = len(json.dumps(big))
    assert (response.status_code, response.json) == (
        400,
        {"code": "payload_too_large", "message": f"batch[1] is {size} bytes, over the 32 KB limit"},
    )
    assert state(lookalike)["calls"]["total"] == 0


def test_invalid_json_is_a_400(lookalike):
    response = lookalike.post("/v1/batch", data=b"{not json", headers=AUTH)
    assert (response.status_code, response.json) == (400, {"code": "invalid_json", "message": "Invalid JSON"})


def test_calls_segment_would_drop_are_answered_200_and_listed_as_dropped(lookalike):
    batch = [call("m1"), {"type": "track", "messageId": "m2", "event": "E"}, call("m3", event="")]
    assert lookalike.post("/v1/batch", json={"batch": batch}, headers=AUTH).status_code == 200
    seen = state(lookalike)
    assert seen["message_ids"] == ["m1"]
    assert seen["dropped"] == [
        {"messageId": "m2", "reason": "no userId or anonymousId"},
        {"messageId": "m3", "reason": "track call without an event name"},
    ]


def test_repeated_message_ids_are_counted_as_duplicates(lookalike):
    for _ in range(2):
        lookalike.post("/v1/batch", json={"batch": [call("m1"), call("m2")]}, headers=AUTH)
    assert state(lookalike)["duplicates"] == 2


def test_faults_answer_the_next_requests_then_stop(lookalike):
    added = lookalike.post("/_sandbox/faults", json={"status": 429, "count": 2, "retry_after": 3})
    assert added.status_code == 201
    answers = [lookalike.post("/v1/batch", json={"batch": [call("m1")]}, headers=AUTH) for _ in range(3)]
    assert [(r.status_code, r.headers.get("Retry-After")) for r in answers] == [
        (429, "3"),
        (429, "3"),
        (200, None),
    ]
    assert answers[0].json == {"code": "rate_limited", "message": "injected fault: HTTP 429"}
    seen = state(lookalike)
    assert (seen["faults"], seen["message_ids"]) == ({"pending": [], "applied": {"429": 2}}, ["m1"])
    assert seen["requests"]["by_status"] == {"200": 1, "429": 2}


def test_a_server_error_fault_with_a_message(lookalike):
    lookalike.post("/_sandbox/faults", json={"status": 500, "message": "internal"})
    response = lookalike.post("/v1/batch", json={"batch": [call("m1")]}, headers=AUTH)
    assert (response.status_code, response.json) == (500, {"code": "server_error", "message": "internal"})


def test_an_answer_fault_for_one_contact_answers_anything(lookalike):
    answer = {"status": 200, "body": "<html>ok</html>", "content_type": "text/html"}
    lookalike.post("/_sandbox/faults", json={"answer": answer, "contact": "odd@example.com", "count": 1})
    plain = lookalike.post("/v1/batch", json={"batch": [call("m1")]}, headers=AUTH)
    odd = lookalike.post(
        "/v1/batch", json={"batch": [call("m2", anonymousId="odd@example.com")]}, headers=AUTH
    )
    assert (plain.status_code, plain.json) == (200, {"success": True})
    assert (odd.status_code, odd.data, odd.mimetype) == (200, b"<html>ok</html>", "text/html")
    seen = state(lookalike)
    assert (seen["message_ids"], seen["faults"]["applied"]) == (["m1"], {"200": 1})
    assert seen["per_contact"] == {"jane@example.com": 1, "odd@example.com": 1}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"status": 200}, "status: Must be greater than or equal to 400 and less than or equal to 599."),
        ({"count": 1}, "status: give status (an error in Segment's shape) or answer"),
        ({"status": 429, "count": "2"}, "count: Not a valid integer."),
        ({"status": 429, "bogus": 1}, "bogus: Unknown field."),
        ([1], "body: must be a JSON object"),
    ],
)
def test_fault_bodies_are_checked_field_by_field(lookalike, body, error):
    response = lookalike.post("/_sandbox/faults", json=body)
    assert (response.status_code, response.json["error"]) == (400, error)


def test_reset_forgets_everything(lookalike):
    lookalike.post("/v1/batch", json={"batch": [call("m1")]}, headers=AUTH)
    lookalike.post("/_sandbox/faults", json={"status": 503})
    assert lookalike.post("/_sandbox/reset").json == {"reset": True}
    seen = state(lookalike)
    assert (seen["requests"]["total"], seen["calls"]["total"], seen["faults"]["pending"]) == (0, 0, [])


def test_more_than_2500_calls_in_a_batch_are_answered_200_and_dropped(lookalike):
    batch = [{"type": "identify", "messageId": str(i), "userId": "u"} for i in range(2501)]
    assert lookalike.post("/v1/batch", json={"batch": batch}, headers=AUTH).status_code == 200
    seen = state(lookalike)
    assert (seen["calls"]["total"], len(seen["dropped"])) == (0, 2501)
    assert seen["dropped"][0] == {"messageId": "0", "reason": "more than 2500 calls in one batch"}
