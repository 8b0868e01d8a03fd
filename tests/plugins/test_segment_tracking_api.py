"""Segment's HTTP tracking API shape on POST /webhooks/<source_id>/v1/…: write-key auth, gzip,
`200 {"success": true}` after the commit, Segment-like refusals; and the bare array (Segment's
Webhooks destination in batch mode) on the plain webhook route."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml
from sqlalchemy.exc import OperationalError

from connector.testing.store import after_planning, stored_deliveries, stored_events
from plugins.segment.auth import SegmentWriteKey
from plugins.segment.testing import (
    audience_event,
    identify_event,
    post_call,
    post_segment,
    segment_signature,
    write_key_headers,
)


def track_call(message_id: str | None = "m-1", email: str = "jane@example.com", **extra) -> dict:
    """A track call as `segment-analytics-python` puts it in a batch."""
    call = {
        "type": "track",
        "event": "Plan Changed",
        "userId": "u-1",
        "properties": {"tier": "gold"},
        "context": {"traits": {"email": email}, "library": {"name": "analytics-python"}},
        "timestamp": "2026-11-22T05:00:00.000+00:00",
    }
    if message_id is not None:
        call["messageId"] = message_id
    call.update(extra)
    return call


def test_batch_call_is_stored_and_answered_like_segment(client, runtime):
    body = {"batch": [track_call("m-1"), identify_event("m-2")], "sentAt": "2026-11-22T05:00:01Z"}
    response = post_call(client, "v1/batch", body | {"writeKey": "testInboundWriteKey"})
    assert (response.status_code, response.json) == (200, {"success": True})
    stored = stored_events(after_planning(runtime))
    assert [(e["source_id"], e["event_id"], e["type"]) for e in stored] == [
        ("segment-library", "m-1", "track"),
        ("segment-library", "m-2", "identify"),
    ]
    assert json.loads(stored[0]["payload"]) == track_call("m-1")


INBOUND_KEY = "testInboundWriteKey"
SENT_AT = "2026-11-22T05:00:07Z"


def with_request_fields(call: dict) -> dict:
    """A call as some libraries put it in a batch: with the write key and sentAt inside."""
    return call | {"writeKey": INBOUND_KEY, "sentAt": SENT_AT}


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("v1/batch", {"batch": [with_request_fields(track_call("m-1"))], "writeKey": INBOUND_KEY}),
        ("v1/t", with_request_fields(track_call("m-1"))),
        ("", [with_request_fields(track_call("m-1"))]),  # the webhook route: a bare array
        ("", {"batch": [with_request_fields(track_call("m-1"))]}),
        ("", with_request_fields(track_call("m-1"))),
    ],
    ids=["batch", "track", "bare array", "webhook batch", "webhook event"],
)
def test_the_write_key_and_sent_at_are_never_stored(client, runtime, route, body):
    response = post_call(client, route, body) if route else post_segment(client, body)
    assert response.status_code in (200, 202), response.json
    (event,) = stored_events(after_planning(runtime))
    assert json.loads(event["payload"]) == track_call("m-1")
    assert INBOUND_KEY not in event["payload"]


def test_an_item_without_a_time_of_its_own_is_stamped_with_its_sent_at(client, runtime):
    call = {key: value for key, value in track_call("m-1").items() if key != "timestamp"}
    assert post_call(client, "v1/batch", {"batch": [call | {"sentAt": SENT_AT}]}).status_code == 200
    (event,) = stored_events(after_planning(runtime))
    assert (event["event_time"], "sentAt" in event["payload"]) == (1795323607.0, False)


@pytest.mark.parametrize("route", ["v1/batch", "v1/b"])
def test_batch_context_is_merged_under_each_calls_own(client, runtime, route):
    body = {
        "batch": [track_call("m-1", context={"traits": {"email": "own@example.com"}}), track_call("m-2")],
        "context": {"traits": {"email": "shared@example.com"}, "ip": "203.0.113.9"},
    }
    assert post_call(client, route, body).status_code == 200
    payloads = [json.loads(e["payload"]) for e in stored_events(after_planning(runtime))]
    assert [p["context"] for p in payloads] == [
        {"traits": {"email": "own@example.com"}, "ip": "203.0.113.9"},
        {
            "traits": {"email": "jane@example.com"},
            "library": {"name": "analytics-python"},
            "ip": "203.0.113.9",
        },
    ]


@pytest.mark.parametrize(
    ("route", "call", "kind"),
    [
        ("v1/track", {"event": "Plan Changed", "properties": {}}, "track"),
        ("v1/t", {"event": "Plan Changed", "properties": {}}, "track"),
        ("v1/identify", {"traits": {"email": "jane@example.com"}}, "identify"),
        ("v1/i", {"traits": {"email": "jane@example.com"}}, "identify"),
    ],
)
def test_single_calls_take_their_type_from_the_route(client, runtime, route, call, kind):
    sent = {"userId": "u-1", "messageId": "one", "writeKey": "testInboundWriteKey", "sentAt": "x", **call}
    assert post_call(client, route, sent).json == {"success": True}
    (event,) = stored_events(after_planning(runtime))
    assert (event["event_id"], event["type"]) == ("one", kind)
    assert json.loads(event["payload"]) == {"userId": "u-1", "messageId": "one", "type": kind, **call}


def test_call_without_message_id_gets_one_from_its_content_so_a_retry_is_a_duplicate(client, runtime):
    call = track_call(None)
    assert post_call(client, "v1/track", call).status_code == 200
    assert post_call(client, "v1/track", call | {"sentAt": "2026-11-22T05:00:09Z"}).status_code == 200
    assert post_call(client, "v1/track", call | {"event": "Other"}).status_code == 200
    ids = [e["event_id"] for e in stored_events(after_planning(runtime))]
    assert len(ids) == 2
    assert all(i.startswith("derived-") and len(i) == 48 for i in ids)


def test_call_of_the_wrong_type_is_a_segment_like_400(client, runtime):
    response = post_call(client, "v1/track", identify_event("m-1"))
    assert response.status_code == 400
    assert response.json == {
        "success": False,
        "code": "invalid_request",
        "message": "type: must be track on this route",
        "problems": {"type": ["must be track on this route"]},
    }
    response = post_call(client, "v1/batch", {"batch": [track_call("a"), {"type": "track"}]})
    assert response.json["problems"] == {"batch[1].event": ["a track call needs an event name"]}
    assert post_call(client, "v1/batch", [track_call("a")]).json["problems"] == {
        "$": ['a batch call is {"batch": [...]}']
    }
    assert stored_events(after_planning(runtime)) == []


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (write_key_headers("wrong-key"), "write key is not valid for this source"),
        ({"Authorization": ""}, "missing Authorization: Basic header with the write key as user name"),
        ({"Authorization": "Basic !!"}, "Authorization: Basic is not valid base64"),
        (write_key_headers(""), "write key is not valid for this source"),
    ],
)
def test_bad_write_key_is_a_segment_like_401(client, runtime, headers, message):
    response = post_call(client, "v1/batch", {"batch": [track_call()]}, headers=headers)
    assert (response.status_code, response.json) == (
        401,
        {"success": False, "code": "unauthorized", "message": message},
    )
    assert stored_events(after_planning(runtime)) == []


def test_gzip_body_is_decoded(client, runtime):
    assert post_call(client, "v1/batch", {"batch": [track_call("g-1")]}, gzipped=True).status_code == 200
    assert [e["event_id"] for e in stored_events(after_planning(runtime))] == ["g-1"]


def test_gzip_bomb_is_413_and_nothing_is_stored(client, runtime):
    padded = json.dumps({"batch": [track_call("b-1", padding=" " * (1024 * 1024))]}).encode()
    bomb = gzip.compress(padded)
    assert len(bomb) < 10_000
    response = post_call(client, "v1/batch", bomb, headers={"Content-Encoding": "gzip"})
    assert (response.status_code, response.json) == (
        413,
        {
            "success": False,
            "code": "payload_too_large",
            "message": "the body is larger than 1048576 bytes once decompressed",
        },
    )
    assert stored_events(after_planning(runtime)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"not gzip at all",
            "the gzip body is corrupt: Error -3 while decompressing data: incorrect header check",
        ),
        # mtime=0: the same bytes, so the same test id, in every process that collects it (pytest-xdist).
        (gzip.compress(b'{"batch": []}', mtime=0)[:-6], "the gzip body is cut off"),
    ],
)
def test_corrupt_gzip_is_400(client, runtime, body, message):
    response = post_call(client, "v1/batch", body, headers={"Content-Encoding": "gzip"})
    assert (response.status_code, response.json["message"]) == (400, message)


def test_unknown_content_encoding_is_415(client):
    response = post_call(client, "v1/batch", b"{}", headers={"Content-Encoding": "br"})
    assert (response.status_code, response.json["message"]) == (415, "send the body plain or gzip-encoded")


def test_body_past_one_mebibyte_is_a_segment_like_413(client):
    response = post_call(client, "v1/batch", b" " * (1024 * 1024 + 1))
    assert (response.status_code, response.json["code"]) == (413, "payload_too_large")


def test_json_sent_as_text_plain_is_taken_and_other_types_are_415(client, runtime):
    plain = post_call(client, "v1/track", track_call("t-1"), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 200
    html = post_call(client, "v1/track", track_call("t-2"), headers={"Content-Type": "text/html"})
    assert (html.status_code, html.json["code"]) == (415, "error")
    assert [e["event_id"] for e in stored_events(after_planning(runtime))] == ["t-1"]


def test_routes_a_source_does_not_have_are_404(client):
    assert post_call(client, "v2/batch", {"batch": [track_call()]}).status_code == 404
    assert post_call(client, "v1/batch", {"batch": [track_call()]}, source="extole").json == {
        "error": "unknown route",
        "message": "source 'extole' has no route 'v1/batch'",
    }
    assert post_call(client, "v1/batch", {}, source="nowhere").status_code == 404


def test_success_is_answered_only_after_the_commit(client, runtime, monkeypatch):
    def store_down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr("connector.web.webhooks.accept", store_down)
    response = post_call(client, "v1/batch", {"batch": [track_call()]})
    assert response.status_code == 503
    assert stored_events(after_planning(runtime)) == []


def test_plain_route_takes_the_write_key_too(client, runtime):
    response = client.post("/webhooks/segment-library", json=[track_call("p-1")], headers=write_key_headers())
    assert (response.status_code, response.json) == (202, {"accepted": 1, "duplicates": 0})


def test_bare_array_is_accepted_on_the_webhook_route(client, runtime):
    events = [audience_event("w-1", "a@example.com"), audience_event("w-2", "b@example.com", entered=False)]
    response = post_segment(client, events)
    assert (response.status_code, response.json) == (202, {"accepted": 2, "duplicates": 0})
    assert [d["spec"]["fields"] for d in stored_deliveries(after_planning(runtime))] == [
        [{"segmentationFieldId": 6789, "value": "on"}],
        [{"segmentationFieldId": 6789, "value": "off"}],
    ]
    bad = post_segment(client, [audience_event("w-3"), {"type": "track", "messageId": "w-4"}])
    assert bad.json["problems"] == {"[1].event": ["a track call needs an event name"]}
    assert post_segment(client, []).json["problems"] == {"$": ["must be a non-empty array of events"]}


def test_plain_route_gzip_body_is_decoded_before_its_signature_is_checked(client, runtime):
    body = json.dumps(audience_event("z-1")).encode()
    response = client.post(
        "/webhooks/segment",
        data=gzip.compress(body),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-Signature": segment_signature(body),
        },
    )
    assert response.status_code == 202
    assert [e["event_id"] for e in stored_events(after_planning(runtime))] == ["z-1"]


def test_write_keys_that_cannot_be_a_basic_user_name_fail_the_config(config_dir):
    assert SegmentWriteKey().check_secrets(["good-key", "user:pass", " padded"]) == {
        1: "a write key is an HTTP Basic user name: no ':' and no surrounding spaces",
        2: "a write key is an HTTP Basic user name: no ':' and no surrounding spaces",
    }
    source = yaml.safe_load((config_dir / "sources" / "segment-library.yaml").read_text())
    assert source["auth"]["algorithm"] == "SEGMENT_WRITE_KEY"


def test_a_password_beside_the_write_key_is_ignored_as_segment_ignores_it(client, runtime):
    basic = base64.b64encode(b"testInboundWriteKey:whatever").decode()
    response = post_call(client, "v1/track", track_call("pw-1"), headers={"Authorization": f"Basic {basic}"})
    assert (response.status_code, response.json) == (200, {"success": True})
