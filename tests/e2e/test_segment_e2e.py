"""Issue 5 end to end: Segment audience events through gunicorn, a worker and the sandbox end as
Listrak check-box profile field values."""

from __future__ import annotations

import json

import pytest
import requests

from connector.testing import example_stack, wait_until
from plugins.segment import testing as segment_testing
from plugins.segment.testing import audience_event, identify_event, segment_signature

pytestmark = pytest.mark.e2e

MAPPINGS = [
    {
        "name": "my_audience → 12345/6789",
        "action": "update_email_contact_profile_fields",
        "when": [{"field": "context.personas.computation_key", "is": "my_audience"}],
        "list_id": 12345,
        "profile_field_values": {"6789": "useAudienceKey"},
    },
    {
        "name": "vip identify → list from traits",
        "action": "update_email_contact_profile_fields",
        "when": [
            {"field": "type", "is": "identify"},
            {"field": "context.personas.computation_key", "is": "vip"},
        ],
        "list_id": {"path": "traits.listrak_list"},
        "profile_field_values": {"6789": "useAudienceKey"},
    },
]


@pytest.fixture
def segment_stack(tmp_path):
    stack = example_stack(
        tmp_path / "stack",
        partner_overrides={"listrak": {"mappings": MAPPINGS}},
        settings={"retry_schedule": ["200ms", "500ms", "1s"], "worker": {"batch_window": "300ms"}},
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def post(stack, payload) -> requests.Response:
    body = json.dumps(payload).encode()
    signature = segment_signature(body, segment_testing.STACK_ENV["SEGMENT_WEBHOOK_SECRET"])
    return requests.post(
        f"{stack.base_url}/webhooks/segment",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/json", "X-Signature": signature},
    )


def field_values(stack, list_id: str) -> dict[str, dict]:
    contacts = stack.part("listrak").state()["lists"][list_id]["contacts"]
    return {email: c["segmentationFieldValues"] for email, c in contacts.items()}


def settled(stack) -> bool:
    states = stack.delivery_states()
    return not {"queued", "retrying", "paused"} & set(states) and not stack.waiting_to_plan()


def test_audience_sync_ends_with_newest_membership_in_listrak(segment_stack):
    stack = segment_stack
    first = {
        "batch": [
            audience_event("a1", "jane@example.com", entered=True, timestamp="2026-11-22T05:00:00Z"),
            audience_event("a2", "joe@example.com", entered=True, timestamp="2026-11-22T05:00:00Z"),
            audience_event("a3", "amy@example.com", entered=False, timestamp="2026-11-22T05:00:00Z"),
            audience_event("a4", "not-an-email", entered=True),
            identify_event("i1", "bob@example.com", entered=True, audience="vip")
            | {"traits": {"email": "bob@example.com", "vip": True, "listrak_list": 456}},
        ]
    }
    assert post(stack, first).json() == {"accepted": 5, "duplicates": 0}
    exited = audience_event("a5", "jane@example.com", entered=False, timestamp="2026-11-22T05:00:01Z")
    assert post(stack, exited).status_code == 202
    assert post(stack, first).json() == {"accepted": 0, "duplicates": 5}

    wait_until(lambda: settled(stack), message="every delivery finished")
    assert field_values(stack, "12345") == {
        "jane@example.com": {"6789": "off"},
        "joe@example.com": {"6789": "on"},
        "amy@example.com": {"6789": "off"},
    }
    assert field_values(stack, "456") == {"bob@example.com": {"6789": "on"}}
    states = stack.delivery_states()
    assert states.get("skipped") == 1
    assert states.get("dead") is None


def test_failed_bulk_request_is_retried_and_lands(segment_stack):
    stack = segment_stack
    stack.part("listrak").request("POST", "/_sandbox/faults", json={"mode": "500", "count": 1})
    batch = {"batch": [audience_event(f"m{i}", f"p{i}@example.com", entered=i % 2 == 0) for i in range(40)]}
    assert post(stack, batch).json() == {"accepted": 40, "duplicates": 0}
    wait_until(lambda: stack.delivery_states() == {"delivered": 40}, message="all delivered")
    assert field_values(stack, "12345") == {
        f"p{i}@example.com": {"6789": "on" if i % 2 == 0 else "off"} for i in range(40)
    }
    assert stack.part("listrak").state()["faults_applied"] == {"500": 1}
