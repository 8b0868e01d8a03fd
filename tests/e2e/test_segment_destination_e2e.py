"""The segment destination end to end, independently of the activity pull source: Segment spec
messages posted to the `segment` push source (gunicorn) reach the Segment look-alike
(`connector segment-sandbox`) over real HTTP through `connector worker`, once each; a 429 is
retried after its Retry-After, an event over 32 KB is dead and the rest sent, a dead batch
is replayed from the admin API, the Live View's read model shows it all, and `connector
verify` tells a write key the look-alike takes from one it refuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from connector.plugin_api import body_bytes
from connector.testing import example_stack, wait_until

pytestmark = pytest.mark.e2e

FILES = {
    "partners/segment.yaml": {
        "plugin": "segment",
        "sources": ["segment"],
        "api_url": "${SEGMENT_API_URL}",
        "keys": {"production": "segment-production"},
    },
    "keys/segment-production.yaml": {
        "name": "Segment production",
        "partner_key_id": "segment-production",
        "algorithm": "SEGMENT_WRITE_KEY",
        "key": "${SEGMENT_WRITE_KEY}",
    },
}


def opened(message_id: str, email: str, padding: int = 0) -> dict:
    properties = {"event": "Email Opened", "email_id": "m-1"}
    if padding:
        properties["padding"] = "x" * padding
    return {
        "type": "track",
        "event": "Email Opened",
        "messageId": message_id,
        "timestamp": "2026-11-22T05:44:22.000Z",
        "anonymousId": email,
        "properties": properties,
        "context": {"traits": {"email": email}},
    }


@pytest.fixture
def stack(tmp_path):
    stack = example_stack(
        tmp_path / "stack",
        extra_files=FILES,
        settings={"retry_schedule": ["200ms", "500ms", "1s"], "worker": {"batch_window": "300ms"}},
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def settled(stack) -> dict[str, int]:
    states = stack.delivery_states()
    return states if not {"queued", "retrying"} & set(states) and not stack.waiting_to_plan() else {}


def test_messages_reach_the_lookalike_once_through_a_429_and_the_oversized_one_is_dead(stack):
    stack.part("segment").fault(429, count=1, retry_after=1)
    messages = [opened(f"o-{i}", f"person{i}@example.com") for i in range(20)]
    big = opened("o-big", "big@example.com", padding=40_000)
    response = stack.post_events({"batch": [*messages[:10], big, *messages[10:]]}, source="segment")
    assert response.status_code == 202, response.text

    states = wait_until(lambda: settled(stack), timeout=30, message="deliveries settled")
    assert states == {"delivered": 20, "dead": 1}
    received = stack.part("segment").state()
    assert received["requests"]["by_status"] == {"200": 1, "429": 1}
    assert received["faults"]["applied"] == {"429": 1}
    assert (received["calls"]["total"], received["duplicates"], received["dropped"]) == (20, 0, [])
    assert sorted(stack.part("segment").calls(), key=lambda m: int(m["messageId"][2:])) == messages

    dead = stack.admin("GET", "/admin/api/events", params={"partner": "segment", "outcome": "dead"}).json()
    (event,) = dead["events"]
    (delivery,) = event["deliveries"]
    assert (event["event_id"], delivery["outcome"]) == ("o-big", "dead")
    assert delivery["reason"] == f"event is {body_bytes(big)} bytes, over Segment's 32 KB limit"


def test_a_batch_segment_refuses_is_dead_and_a_replay_delivers_it(stack):
    stack.part("segment").fault(400, count=1)
    messages = [opened("r-1", "jane@example.com"), opened("r-2", "joe@example.com")]
    assert stack.post_events({"batch": messages}, source="segment").status_code == 202
    assert wait_until(lambda: settled(stack), timeout=30, message="dead") == {"dead": 2}

    page = stack.admin("GET", "/admin/api/events", params={"partner": "segment"}).json()
    detail = stack.admin("GET", f"/admin/api/events/{page['events'][0]['id']}").json()
    (attempt,) = detail["deliveries"][0]["attempt_log"]
    assert (attempt["status"], attempt["error_code"], attempt["error_message"]) == (
        400,
        "invalid_request",
        "injected fault: HTTP 400",
    )
    assert stack.part("segment").state()["calls"]["total"] == 0

    replayed = stack.admin("POST", "/admin/api/replay", json={"dead": True, "partner": "segment"})
    assert replayed.json() == {"queued": 2, "superseded": 0, "unchanged": 0}
    assert wait_until(lambda: settled(stack), timeout=30, message="replayed") == {"delivered": 2}
    assert sorted(stack.part("segment").calls(), key=lambda m: m["messageId"]) == messages
    live = stack.admin("GET", "/live", params={"partner": "segment"}).text
    assert "r-1" in live
    assert "r-2" in live


def verify(stack, write_key: str) -> subprocess.CompletedProcess:
    env = {**stack.env, "SEGMENT_WRITE_KEY": write_key}
    args = [sys.executable, "-m", "connector.cli", "verify", "segment"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def test_verify_sends_an_empty_batch_to_the_lookalike(stack):
    url = f"{stack.part('segment').url}/v1/batch"
    accepted = verify(stack, stack.env["SEGMENT_WRITE_KEY"])
    assert (accepted.returncode, accepted.stdout.splitlines()[1]) == (
        0,
        f"  ok    write key segment-production (production): an empty batch to {url} was accepted "
        "(HTTP 200): the API is reachable and takes the request; Segment accepts unknown write "
        "keys here, so this does not prove the key belongs to a source",
    )
    refused = verify(stack, "someone-elses-write-key")
    assert (refused.returncode, refused.stdout.splitlines()[1]) == (
        1,
        f"  FAIL  write key segment-production (production): refused by {url}: "
        "HTTP 401 unauthorized: unknown write key",
    )
    assert "someone-elses-write-key" not in refused.stdout
    assert stack.part("segment").state()["calls"]["total"] == 0
