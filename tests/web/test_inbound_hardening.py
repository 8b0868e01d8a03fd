"""What a client sends to POST /webhooks/<source> can be refused, never a 500, and a captured
Standard Webhooks delivery is accepted once: malformed auth headers are 401, invalid Unicode and
control characters in ids are 400 naming the path, a `webhook-id` already used is 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from connector.app import create_app
from connector.outbox.retention import purge
from connector.outbox.tables import replay_keys
from connector.runtime import Runtime
from connector.testing.store import after_planning, stored_deliveries, stored_events
from plugins.extole.testing import referral_event, sign
from plugins.segment.testing import audience_event, post_segment
from tests.config_files import update_yaml

SW_KEY = b"standard-webhooks-key-32-bytes!!"
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
CONTROL_CHARACTERS = "must not contain control characters (U+0000–U+001F, U+007F–U+009F)"
SURROGATE = "invalid Unicode: a lone UTF-16 surrogate (\\ud800-\\udfff)"


def standard_headers(body: bytes, msg_id: str, timestamp: int) -> dict[str, str]:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(SW_KEY, signed, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


@pytest.fixture
def standard(config_dir, make_runtime, clock):
    """A Flask client for a source signed the Standard Webhooks way (`standard`), and its runtime."""
    (config_dir / "sources" / "standard.yaml").write_text(
        f'plugin: extole\nauth:\n  algorithm: STANDARD_WEBHOOKS\n  secrets: ["{SW_SECRET}"]\n'
    )
    runtime = make_runtime()
    client = create_app({"TESTING": True}, runtime=runtime).test_client()

    def post(payload, msg_id="msg_1", timestamp=None, **header_changes):
        body = json.dumps(payload).encode()
        headers = standard_headers(body, msg_id, int(clock.at) if timestamp is None else timestamp)
        headers.update(header_changes)
        return client.post("/webhooks/standard", data=body, headers=headers)

    post.runtime = runtime
    return post


def test_a_standard_webhooks_delivery_sent_again_while_fresh_is_refused(standard):
    assert standard(referral_event("e-1")).json == {"accepted": 1, "duplicates": 0}
    again = standard(referral_event("e-1"))
    assert (again.status_code, again.json) == (
        401,
        {"error": "unauthorized", "message": "webhook-id was already used"},
    )
    assert [e["event_id"] for e in stored_events(after_planning(standard.runtime))] == ["e-1"]


def test_a_used_webhook_id_signed_over_new_events_stores_none_of_them(standard):
    standard(referral_event("e-1"))
    again = standard([referral_event("e-2"), referral_event("e-3")])
    assert again.status_code == 401
    assert [e["event_id"] for e in stored_events(after_planning(standard.runtime))] == ["e-1"]


# The package checks the tolerance against the real clock too: signed 290 s ago, the delivery
# is too old after 11 more seconds while a fresh one still passes both checks.


def test_a_webhook_id_is_forgotten_once_its_signature_is_too_old(standard, clock):
    sent_at = int(clock.at) - 290
    assert standard(referral_event("e-1"), timestamp=sent_at).status_code == 202
    clock.advance(11)
    assert standard(referral_event("e-1"), timestamp=sent_at).json["message"] == (
        "webhook-timestamp is outside the 5-minute tolerance"
    )
    with standard.runtime.engine.connect() as conn:
        assert conn.execute(select(replay_keys.c.replay_key)).scalars().all() == ["msg_1"]
    purge(standard.runtime.engine, {"delivered": 30 * 86400.0, "dead": 7 * 86400.0})
    with standard.runtime.engine.connect() as conn:
        assert conn.execute(select(replay_keys.c.replay_key)).scalars().all() == []


def test_an_expired_webhook_id_not_purged_yet_is_taken_again(standard, clock):
    standard(referral_event("e-1"), timestamp=int(clock.at) - 290)
    clock.advance(11)
    assert standard(referral_event("e-2")).json == {"accepted": 1, "duplicates": 0}


def test_webhook_ids_are_per_source(standard, post_events):
    assert standard(referral_event("e-1"), msg_id="shared").status_code == 202
    assert post_events(referral_event("e-1"), headers={"webhook-id": "shared"}).status_code == 202


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"webhook-timestamp": "\u00b2"}, "webhook-timestamp is not a UNIX time in seconds"),
        ({"webhook-timestamp": "1\u00b2"}, "webhook-timestamp is not a UNIX time in seconds"),
        ({"webhook-id": "x" * 257}, "webhook-id is longer than 256 characters"),
        ({"webhook-signature": "v1,\u00e9"}, "signature does not match the body"),
    ],
)
def test_malformed_standard_webhooks_headers_are_401(standard, headers, message):
    response = standard(referral_event("e-1"), **headers)
    assert (response.status_code, response.json) == (401, {"error": "unauthorized", "message": message})
    assert stored_events(after_planning(standard.runtime)) == []


def test_sha1_signatures_are_refused_where_the_source_sets_allow_sha1_false(config_dir, make_runtime):
    update_yaml(config_dir / "sources" / "extole.yaml", set={"auth.allow_sha1": False})
    client = create_app({"TESTING": True}, runtime=make_runtime()).test_client()
    body = json.dumps(referral_event("e-1")).encode()
    headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body, algorithm="sha1")}
    response = client.post("/webhooks/extole", data=body, headers=headers)
    assert (response.status_code, response.json["message"]) == (
        401,
        "X-Extole-Signature must be sha256=<hex>: this source does not accept sha1",
    )
    headers["X-Extole-Signature"] = sign(body)
    assert client.post("/webhooks/extole", data=body, headers=headers).status_code == 202


# -- bodies ------------------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_name_is_400_naming_it(post_events, runtime):
    response = post_events([referral_event("e-1"), referral_event("e-2", first_name="Ja\ud800ne")])
    assert (response.status_code, response.json) == (
        400,
        {"error": "invalid payload", "problems": {"[1].person.first_name": [SURROGATE]}},
    )
    assert stored_events(after_planning(runtime)) == []


def test_a_lone_surrogate_in_an_event_id_is_400(post_events, runtime):
    response = post_events(referral_event("e-\udfff"))
    assert response.json == {"error": "invalid payload", "problems": {"event_id": [SURROGATE]}}
    assert stored_events(after_planning(runtime)) == []


@pytest.mark.parametrize("character", ["\n", "\x00", "\x1b", "\x85"])
def test_control_characters_in_an_event_id_are_400(post_events, runtime, character):
    response = post_events(referral_event(f"e-1{character}forged"))
    assert (response.status_code, response.json) == (
        400,
        {"error": "invalid payload", "problems": {"event_id": [CONTROL_CHARACTERS]}},
    )
    assert stored_events(after_planning(runtime)) == []


@pytest.mark.parametrize("character", ["\r", "\x00", "\x9f"])
def test_control_characters_in_a_message_id_are_400(client, runtime, character):
    response = post_segment(client, {"batch": [audience_event(f"m-1{character}")]})
    assert (response.status_code, response.json) == (
        400,
        {"error": "invalid payload", "problems": {"batch[0].messageId": [CONTROL_CHARACTERS]}},
    )
    assert stored_deliveries(after_planning(runtime)) == []


def test_an_address_with_a_control_character_is_stored_as_none(config_dir, store_url):
    runtime = Runtime.build(str(config_dir), store_url)
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    response = post_segment(client, audience_event("m-1", email="ja\x00ne@example.com"))
    assert response.json == {"accepted": 1, "duplicates": 0}
    (event,) = stored_events(after_planning(runtime))
    assert event["email"] is None
    assert json.loads(event["payload"])["context"]["traits"]["email"] == "ja\x00ne@example.com"
