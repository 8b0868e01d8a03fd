"""The segment source: Segment spec events on POST /webhooks/segment, signed with X-Signature."""

from __future__ import annotations

import base64
import json

import yaml
from sqlalchemy import select

from connector.app import create_app
from connector.delivery.planner import Planner
from connector.outbox.tables import deliveries, events
from plugins.segment.testing import audience_event, identify_event, post_segment


def stored(runtime, table):
    Planner(runtime).plan_all()  # a worker's planning step
    with runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def test_single_event_is_accepted_and_planned(client, runtime):
    response = post_segment(client, audience_event("msg-1", "Jane.Doe@Example.com "))
    assert response.status_code == 202
    assert response.json == {"accepted": 1, "duplicates": 0}
    (event,) = stored(runtime, events)
    assert (event["event_id"], event["type"], event["email"], event["environment"]) == (
        "msg-1",
        "track",
        "jane.doe@example.com",
        "production",
    )
    assert json.loads(event["payload"])["properties"] == {"audience_key": "my_audience", "my_audience": True}
    (delivery,) = stored(runtime, deliveries)
    assert delivery["action"] == "update_email_contact_profile_fields"


def test_batch_is_accepted_and_repeated_message_ids_are_duplicates(client, runtime):
    batch = {"batch": [audience_event("a"), identify_event("b"), audience_event("a")]}
    assert post_segment(client, batch).json == {"accepted": 2, "duplicates": 1}
    assert post_segment(client, {"batch": [audience_event("b"), audience_event("c")]}).json == {
        "accepted": 1,
        "duplicates": 1,
    }
    assert [e["event_id"] for e in stored(runtime, events)] == ["a", "b", "c"]


def test_event_time_comes_from_timestamp(client, runtime):
    post_segment(client, audience_event("a", timestamp="2026-11-22T05:44:22.500Z"))
    post_segment(
        client, identify_event("b") | {"timestamp": None, "originalTimestamp": "2026-11-22T06:00:00"}
    )
    times = [e["event_time"] for e in stored(runtime, events)]
    assert times == [1795326262.5, 1795327200.0]


def test_bad_signature_is_refused(client, runtime):
    response = post_segment(client, audience_event("a"), secret="wrong")
    assert response.status_code == 401
    assert response.json["message"] == "signature does not match the body"
    response = post_segment(client, audience_event("a"), headers={"X-Signature": ""})
    assert response.json["message"] == "missing X-Signature header"
    assert stored(runtime, events) == []


def test_invalid_events_name_each_path_and_queue_nothing(client, runtime):
    batch = {
        "batch": [
            audience_event("ok"),
            {"type": "track", "messageId": "x"},
            {"type": "sing", "messageId": ""},
            "text",
            audience_event("t", timestamp="yesterday"),
        ]
    }
    response = post_segment(client, batch)
    assert response.status_code == 400
    assert response.json["problems"] == {
        "batch[1].event": ["a track call needs an event name"],
        "batch[2].type": ["Must be one of: track, identify, page, screen, group, alias."],
        "batch[2].messageId": ["Length must be between 1 and 128."],
        "batch[3]": ["an event must be a JSON object"],
        "batch[4].timestamp": ["not an ISO-8601 date-time"],
    }
    assert stored(runtime, events) == []


def test_body_shapes_that_are_not_events(client):
    assert post_segment(client, {"batch": []}).json["problems"] == {
        "batch": ["must be a non-empty array of events"]
    }
    assert post_segment(client, b"{not json").status_code == 400
    assert post_segment(client, {"batch": [audience_event(f"m{i}") for i in range(1001)]}).json[
        "problems"
    ] == {"batch": ["at most 1000 events per request, got 1001"]}


def test_event_without_email_is_recorded_as_skipped(client, runtime):
    event = audience_event("a")
    event["context"]["traits"] = {}
    assert post_segment(client, event).status_code == 202
    (delivery,) = stored(runtime, deliveries)
    assert (delivery["state"], delivery["reason"]) == ("skipped", "no email address at context.traits.email")


def test_http_basic_auth_and_staging_environment(config_dir, make_runtime):
    (config_dir / "sources" / "engage-staging.yaml").write_text(
        yaml.safe_dump(
            {
                "plugin": "segment",
                "environment": "staging",
                "auth": {"algorithm": "HTTP_BASIC", "secrets": ["segment:s3cret-pass"]},
            }
        )
    )
    partner_path = config_dir / "partners" / "listrak.yaml"
    partner = yaml.safe_load(partner_path.read_text())
    partner["sources"].append("engage-staging")
    partner_path.write_text(yaml.safe_dump(partner))
    runtime = make_runtime()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    basic = base64.b64encode(b"segment:s3cret-pass").decode()
    response = client.post(
        "/webhooks/engage-staging", json=audience_event("a"), headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 202
    (delivery,) = stored(runtime, deliveries)
    assert (delivery["environment"], delivery["partner_key_id"]) == ("staging", "listrak-staging")
