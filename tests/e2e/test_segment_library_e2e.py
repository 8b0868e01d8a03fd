"""Segment's own Python library (`segment-analytics-python`) pointed at the connector with
`host=<connector>/webhooks/segment-library` and a write key, against gunicorn, a worker and the
Listrak sandbox: what it sends ends as Listrak profile fields through mappings that read values
from the event; gzip on and off, `sync_mode` and the background thread; refusals it understands."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
import requests
from segment.analytics import Client
from segment.analytics.request import APIError

from connector.testing import example_stack, wait_until
from plugins.segment import testing as segment_testing
from plugins.segment.testing import write_key_headers

pytestmark = pytest.mark.e2e

WRITE_KEY = segment_testing.STACK_ENV["SEGMENT_INBOUND_WRITE_KEY"]
MAPPINGS = [
    {
        "name": "plan tier",
        "action": "update_email_contact_profile_fields",
        "when": [
            {"field": "type", "is": "track"},
            {"field": "event", "is": "Plan Changed"},
            {"field": "properties.seats", "gt": 10},
        ],
        "list_id": 12345,
        "profile_field_values": {"1005": {"path": "properties.tier"}, "6790": "on"},
    },
    {
        "name": "names",
        "action": "update_email_contact_profile_fields",
        "when": [{"field": "type", "is": "identify"}, {"field": "traits.first_name", "starts_with": "J"}],
        "list_id": 12345,
        "email_address": {"path": "traits.email"},
        "profile_field_values": {"1003": {"path": "traits.first_name"}, "1004": {"path": "traits.last_name"}},
    },
]
WHEN = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = example_stack(
        tmp_path_factory.mktemp("library") / "stack",
        partner_overrides={"listrak": {"mappings": MAPPINGS}},
        settings={"retry_schedule": ["200ms", "500ms", "1s"], "worker": {"batch_window": "200ms"}},
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def client(stack, **options) -> Client:
    return Client(WRITE_KEY, host=f"{stack.base_url}/webhooks/segment-library", max_retries=0, **options)


def settled(stack) -> bool:
    return not {"queued", "retrying", "paused"} & set(stack.delivery_states()) and not stack.waiting_to_plan()


def fields_of(stack, email: str) -> dict:
    contacts = stack.part("listrak").state()["lists"]["12345"]["contacts"]
    return contacts.get(email, {}).get("segmentationFieldValues")


def plan_changed(analytics: Client, email: str, **properties):
    context = {"traits": {"email": email}}
    return analytics.track(f"u-{email}", "Plan Changed", properties, context=context, timestamp=WHEN)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_sync_mode_calls_reach_listrak_through_mappings(stack, gzipped):
    analytics = client(stack, sync_mode=True, gzip=gzipped)
    tag = "gz" if gzipped else "plain"
    plan_changed(analytics, f"ann-{tag}@example.com", tier="gold", seats=12)
    plan_changed(analytics, f"few-{tag}@example.com", tier="gold", seats=3)  # no mapping's trigger
    analytics.identify(
        f"u-{tag}", {"email": f"jo-{tag}@example.com", "first_name": "Jo", "last_name": "Doe"}, timestamp=WHEN
    )
    wait_until(lambda: settled(stack) and fields_of(stack, f"jo-{tag}@example.com"), message="delivered")
    assert fields_of(stack, f"ann-{tag}@example.com") == {"1005": "gold", "6790": "on"}
    assert fields_of(stack, f"few-{tag}@example.com") is None
    assert fields_of(stack, f"jo-{tag}@example.com") == {"1003": "Jo", "1004": "Doe"}


def test_background_thread_flushes_every_call(stack):
    errors = []
    analytics = client(stack, gzip=True, upload_size=7, on_error=lambda exc, batch: errors.append(exc))
    for i in range(25):
        plan_changed(analytics, f"bulk{i}@example.com", tier=f"t{i}", seats=20 + i)
    analytics.flush()
    analytics.join()
    assert errors == []
    wait_until(lambda: settled(stack) and fields_of(stack, "bulk24@example.com"), message="all delivered")
    assert {i: fields_of(stack, f"bulk{i}@example.com") for i in range(25)} == {
        i: {"1005": f"t{i}", "6790": "on"} for i in range(25)
    }


def test_a_missing_path_is_left_out_with_the_reason_in_the_attempt_record(stack):
    plan_changed(client(stack, sync_mode=True), "notier@example.com", seats=40)
    wait_until(lambda: settled(stack) and fields_of(stack, "notier@example.com"), message="delivered")
    assert fields_of(stack, "notier@example.com") == {"6790": "on"}
    (event,) = stack.admin("GET", "/admin/api/events?email=notier@example.com").json()["events"]
    (delivery,) = stack.admin("GET", f"/admin/api/events/{event['id']}").json()["deliveries"]
    assert delivery["outcome"] == "delivered"
    assert [a["error_message"] for a in delivery["attempt_log"]] == [
        "field 1005 left out: the event has no value at properties.tier"
    ]


def test_a_wrong_write_key_is_a_401_the_library_reports(stack):
    analytics = Client("not-the-key", host=f"{stack.base_url}/webhooks/segment-library", sync_mode=True)
    with pytest.raises(APIError) as refused:
        plan_changed(analytics, "nobody@example.com", tier="x", seats=99)
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        401,
        "unauthorized",
        "write key is not valid for this source",
    )


def test_single_calls_gzip_and_a_gzip_bomb_over_real_http(stack):
    url = f"{stack.base_url}/webhooks/segment-library"
    call = {
        "userId": "u-t",
        "event": "Plan Changed",
        "messageId": "route-t-1",
        "properties": {"tier": "silver", "seats": 11},
        "context": {"traits": {"email": "short@example.com"}},
    }
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", **write_key_headers(WRITE_KEY)}
    sent = requests.post(
        f"{url}/v1/t", data=gzip.compress(json.dumps(call).encode()), headers=headers, timeout=10
    )
    assert (sent.status_code, sent.json()) == (200, {"success": True})
    bomb = gzip.compress(json.dumps({"batch": [dict(call, padding=" " * (2 << 20))]}).encode())
    refused = requests.post(f"{url}/v1/batch", data=bomb, headers=headers, timeout=10)
    assert (refused.status_code, refused.json()["code"]) == (413, "payload_too_large")
    wait_until(lambda: settled(stack) and fields_of(stack, "short@example.com"), message="delivered")
    assert fields_of(stack, "short@example.com") == {"1005": "silver", "6790": "on"}


def test_webhooks_destination_batch_mode_posts_a_bare_array(stack):
    call = {
        "type": "track",
        "event": "Plan Changed",
        "messageId": "wh-1",
        "timestamp": "2026-11-22T05:00:00Z",
        "properties": {"tier": "bronze", "seats": 15},
        "context": {"traits": {"email": "hook@example.com"}},
    }
    sent = requests.post(
        f"{stack.base_url}/webhooks/segment-library",
        json=[call, dict(call, messageId="wh-2")],
        headers=write_key_headers(WRITE_KEY),
        timeout=10,
    )
    assert (sent.status_code, sent.json()) == (202, {"accepted": 2, "duplicates": 0})
    wait_until(lambda: settled(stack) and fields_of(stack, "hook@example.com"), message="delivered")
    assert fields_of(stack, "hook@example.com") == {"1005": "bronze", "6790": "on"}
