"""Segment destination: the exact `POST /v1/batch` requests that reach Segment's tracking API for
Segment spec messages (here from the `segment` push source), Segment's limits, and how each
answer becomes an outcome in the store."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from connector.app import create_app
from connector.cli import main as cli
from connector.config import ConfigError
from connector.contract import InboundEvent, Partner, PartnerKeys
from connector.delivery import outcomes
from connector.delivery.worker import Worker
from connector.plugin_api import body_bytes
from connector.testing.store import after_planning, stored_attempts, stored_breakers, stored_deliveries
from plugins.segment.destination import (
    EMPTY_REQUEST_BYTES,
    MAX_EVENT_BYTES,
    MAX_REQUEST_BYTES,
    SegmentDestination,
    TrackBatch,
)
from plugins.segment.testing import TEST_WRITE_KEY, TRACKING_API, post_segment
from tests.config_files import update_yaml

BATCH = f"{TRACKING_API}/v1/batch"
BASIC = "Basic " + base64.b64encode(f"{TEST_WRITE_KEY}:".encode()).decode()
PARTNER_YAML = """plugin: segment
sources: [segment]
api_url: ${SEGMENT_API_URL}
keys: {production: segment-production}
"""
KEY_YAML = """name: Segment production
partner_key_id: segment-production
algorithm: SEGMENT_WRITE_KEY
key: ${SEGMENT_WRITE_KEY}
"""


def opened(message_id: str, email: str = "jane@example.com", padding: int = 0) -> dict:
    """A track call shaped like the activity source's `Email Opened`."""
    properties = {"event": "Email Opened", "email_id": "m-1", "fromId": "news@example.com"}
    if padding:
        properties["padding"] = "x" * padding
    return {
        "type": "track",
        "event": "Email Opened",
        "messageId": message_id,
        "timestamp": "2026-11-22T05:44:22.000Z",
        "anonymousId": email,
        "properties": properties,
    }


def identified(message_id: str, email: str = "jane@example.com") -> dict:
    return {
        "type": "identify",
        "messageId": message_id,
        "timestamp": "2026-11-22T05:44:22.000Z",
        "anonymousId": email,
        "traits": {"email": email, "Listrak_list_12345": True},
    }


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def segment_config(config_dir):
    """A segment partner fed by the `segment` push source; batches due at once."""
    (config_dir / "partners" / "segment.yaml").write_text(PARTNER_YAML)
    (config_dir / "keys" / "segment-production.yaml").write_text(KEY_YAML)
    (config_dir / "sources" / "listrak-activity.yaml").unlink(missing_ok=True)  # nothing polled
    update_yaml(config_dir / "connector.yaml", set={"worker.batch_window": "0s"})
    return config_dir


@pytest.fixture
def segment_runtime(segment_config, make_runtime):
    return make_runtime()


@pytest.fixture
def deliver(segment_runtime):
    """Post spec messages to the push source (`per_post` in each request), run the worker
    once, return the stored deliveries."""
    client = create_app({"TESTING": True}, runtime=segment_runtime).test_client()

    def run(*messages, per_post: int = 1000):
        for first in range(0, len(messages), per_post):
            response = post_segment(client, {"batch": list(messages[first : first + per_post])})
            assert response.status_code == 202, response.json
        Worker(segment_runtime).run_once()
        return stored_deliveries(after_planning(segment_runtime))

    return run


@pytest.fixture
def no_jitter(monkeypatch):
    monkeypatch.setattr(outcomes, "random", SimpleNamespace(uniform=lambda low, high: 1.0))


# -- the request ---------------------------------------------------------------------------------


def test_messages_reach_segment_as_they_are_in_one_batch_with_the_write_key(deliver, requests_mock, clock):
    segment = requests_mock.post(BATCH, json={"success": True})
    messages = [opened("o-1"), identified("i-1"), opened("o-2", "joe@example.com")]
    found = deliver(*messages)
    (request,) = segment.request_history
    assert request.headers["Authorization"] == BASIC
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {"batch": messages, "sentAt": iso(clock.at)}
    assert [(d["state"], d["action"], d["contact_key"]) for d in found] == [
        ("delivered", "track_batch", None)
    ] * 3
    assert {d["batch_key"] for d in found} == {"segment|production"}


def test_the_write_key_is_never_stored(deliver, requests_mock, segment_runtime):
    requests_mock.post(BATCH, json={"success": True})
    deliver(opened("o-1"), opened("o-2"))
    attempts = stored_attempts(segment_runtime)
    assert [a["request"]["headers"]["Authorization"] for a in attempts] == ["Basic ***"] * 2
    stored = json.dumps(attempts)
    assert TEST_WRITE_KEY not in stored
    assert BASIC.split()[1] not in stored


def test_a_batch_splits_at_500_kb_into_requests_that_each_fit(deliver, requests_mock):
    segment = requests_mock.post(BATCH, json={"success": True})
    messages = [opened(f"o-{i:03d}", padding=20_000) for i in range(60)]
    size = body_bytes(messages[0])
    per_request = (MAX_REQUEST_BYTES - EMPTY_REQUEST_BYTES + 1) // (size + 1)  # "," between events
    deliver(*messages, per_post=30)  # a webhook body is at most 1 MiB
    sent = [r.json()["batch"] for r in segment.request_history]
    assert [len(batch) for batch in sent] == [per_request, per_request, 60 - 2 * per_request]
    assert [m for batch in sent for m in batch] == messages
    sizes = [len(r.body) for r in segment.request_history]
    assert max(sizes) <= MAX_REQUEST_BYTES < sizes[0] + size + 1  # full: one more would not fit


def test_requests_are_sized_exactly_as_sent():
    specs = [opened(f"o-{i}", padding=1000 * i) for i in range(1, 5)]
    request = TrackBatch().build_request(Partner.from_config("segment", {"api_url": TRACKING_API}), specs)
    separators = len(specs) - 1
    expected = EMPTY_REQUEST_BYTES + sum(body_bytes(s) for s in specs) + separators
    assert body_bytes(request.json) == expected


def test_at_most_1000_events_go_in_one_request():
    specs = [{"type": "track", "event": "E", "messageId": str(i), "anonymousId": "a"} for i in range(2001)]
    assert [len(g) for g in TrackBatch().batches(Partner("segment"), specs)] == [1000, 1000, 1]


def test_an_event_over_32_kb_is_dead_with_the_reason_and_the_rest_is_sent(deliver, requests_mock):
    segment = requests_mock.post(BATCH, json={"success": True})
    big = opened("o-big", padding=MAX_EVENT_BYTES)
    found = deliver(opened("o-1"), big, opened("o-2"))
    (request,) = segment.request_history
    assert [m["messageId"] for m in request.json()["batch"]] == ["o-1", "o-2"]
    size = body_bytes(big)
    assert [(d["state"], d["reason"]) for d in found] == [
        ("delivered", None),
        ("dead", f"event is {size} bytes, over Segment's 32 KB limit"),
        ("delivered", None),
    ]


def test_32_kb_is_the_last_size_sent():
    action = TrackBatch()
    base = body_bytes(opened("o", padding=1))
    at_limit = opened("o", padding=1 + MAX_EVENT_BYTES - base)
    over = opened("o", padding=2 + MAX_EVENT_BYTES - base)
    assert (action.refuse(Partner("segment"), at_limit), action.refuse(Partner("segment"), over)) == (
        None,
        f"event is {MAX_EVENT_BYTES + 1} bytes, over Segment's 32 KB limit",
    )


# -- answers -------------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after_then_delivered(deliver, requests_mock, segment_runtime, clock):
    segment = requests_mock.post(
        BATCH,
        [
            {"status_code": 429, "headers": {"Retry-After": "120"}, "json": {"code": "rate_limited"}},
            {"status_code": 200, "json": {"success": True}},
        ],
    )
    (delivery,) = deliver(opened("o-1"))
    assert (delivery["state"], delivery["next_attempt_at"]) == ("retrying", clock.at + 120)
    assert Worker(segment_runtime).run_once() == 0  # not before Retry-After
    clock.advance(120)
    assert Worker(segment_runtime).run_once() == 1
    ((delivery,), calls) = stored_deliveries(after_planning(segment_runtime)), segment.call_count
    assert (delivery["state"], delivery["attempts"], calls) == ("delivered", 2, 2)


def test_5xx_is_retried_on_the_schedule(deliver, requests_mock, clock, no_jitter):
    requests_mock.post(BATCH, status_code=502, text="<html>bad gateway</html>")
    (delivery,) = deliver(opened("o-1"))
    assert (delivery["state"], delivery["next_attempt_at"]) == ("retrying", clock.at + 1)


def test_400_is_dead_with_segments_message_in_the_attempt_log(deliver, requests_mock, segment_runtime):
    requests_mock.post(BATCH, status_code=400, json={"code": "invalid_json", "message": "Invalid JSON"})
    found = deliver(opened("o-1"), opened("o-2"))
    assert [d["state"] for d in found] == ["dead", "dead"]
    assert [(a["status"], a["error_code"], a["error_message"]) for a in stored_attempts(segment_runtime)] == [
        (400, "invalid_json", "Invalid JSON")
    ] * 2


def test_a_refused_write_key_pauses_the_key_instead_of_burning_the_batch(
    deliver, requests_mock, segment_runtime
):
    requests_mock.post(BATCH, status_code=401, json={"code": "unauthorized", "message": "unknown write key"})
    found = deliver(opened("o-1"), opened("o-2"))
    message = (
        "credentials refused for key segment-production: the tracking API refused the write key "
        "(HTTP 401 unauthorized: unknown write key)"
    )
    assert [(d["state"], d["reason"], d["attempts"]) for d in found] == [("paused", message, 0)] * 2
    assert [(b["scope"], b["state"]) for b in stored_breakers(segment_runtime)] == [
        ("key:segment-production", "paused")
    ]


def test_a_dead_delivery_replayed_is_sent_again(deliver, requests_mock, segment_runtime):
    segment = requests_mock.post(
        BATCH,
        [
            {"status_code": 400, "json": {"code": "invalid_request", "message": "bad"}},
            {"status_code": 200, "json": {"success": True}},
        ],
    )
    (dead,) = deliver(opened("o-1"))
    assert dead["state"] == "dead"
    admin = create_app({"TESTING": True}, runtime=segment_runtime).test_client()
    replayed = admin.post(
        "/admin/api/replay",
        json={"delivery_ids": [dead["id"]]},
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert replayed.status_code == 200, replayed.json
    assert Worker(segment_runtime).run_once() == 1
    (delivery,) = stored_deliveries(after_planning(segment_runtime))
    assert delivery["state"] == "delivered"
    assert [r.json()["batch"] for r in segment.request_history] == [[opened("o-1")]] * 2


def test_staging_messages_without_a_staging_key_are_skipped(segment_config, make_runtime, requests_mock):
    update_yaml(segment_config / "sources" / "segment.yaml", set={"environment": "staging"})
    runtime = make_runtime()
    segment = requests_mock.post(BATCH, json={"success": True})
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    assert post_segment(client, opened("o-1")).status_code == 202
    Worker(runtime).run_once()
    deliveries = [d for d in stored_deliveries(after_planning(runtime)) if d["partner_id"] == "segment"]
    assert [(d["state"], d["reason"]) for d in deliveries] == [
        ("skipped", "staging event and no staging key is configured")
    ]
    assert segment.call_count == 0


def test_a_payload_that_is_not_a_spec_message_is_skipped():
    event = InboundEvent("e-1", "opt_in", datetime(2026, 11, 22, tzinfo=UTC), "production", None, {"id": 1})
    partner = Partner("segment", keys=PartnerKeys("segment-production"))
    (planned,) = SegmentDestination().plan(event, partner)
    assert planned.skip_reason == (
        "not a Segment spec message (needs a messageId and a type: "
        "track, identify, page, screen, group, alias)"
    )


def test_state_changes_are_ordered_per_contact_and_trait_and_facts_are_not():
    partner = Partner("segment", keys=PartnerKeys("segment-production"))
    at = datetime(2026, 11, 22, tzinfo=UTC)
    change = InboundEvent("m-1", "membership", at, "production", "jane@example.com", identified("m-1"))
    fact = InboundEvent("i-1", "identify", at, "production", "jane@example.com", identified("i-1"))
    assert [
        planned.contact_key for e in (change, fact) for planned in SegmentDestination().plan(e, partner)
    ] == [
        "segment|production|jane@example.com|Listrak_list_12345",
        None,
    ]


# -- config, verify, preview ---------------------------------------------------------------------


def test_a_key_of_another_algorithm_fails_the_config(segment_config, make_runtime):
    update_yaml(segment_config / "partners" / "segment.yaml", set={"keys.production": "listrak-production"})
    with pytest.raises(ConfigError) as caught:
        make_runtime()
    assert caught.value.problems == [
        "partners/segment.yaml: keys.production: key 'listrak-production' is OAUTH_LISTRAK; "
        "the tracking API takes a SEGMENT_WRITE_KEY key"
    ]


VERIFY_HEAD = f"verify segment (plugin segment) {TRACKING_API}\n"


@pytest.mark.parametrize(
    ("answer", "line", "code"),
    [
        (
            {"json": {"success": True}},
            "  ok    write key segment-production (production): an empty batch to "
            f"{BATCH} was accepted (HTTP 200): the API is reachable and takes the request; "
            "Segment accepts unknown write keys here, so this does not prove the key belongs to a source",
            0,
        ),
        (
            {"status_code": 401, "json": {"code": "unauthorized", "message": "unknown write key"}},
            f"  FAIL  write key segment-production (production): refused by {BATCH}: "
            "HTTP 401 unauthorized: unknown write key",
            1,
        ),
        (
            {"status_code": 400, "json": {"code": "invalid_request", "message": "no write key"}},
            f"  FAIL  write key segment-production (production): an empty batch to {BATCH} failed: "
            "HTTP 400 invalid_request: no write key",
            1,
        ),
    ],
)
def test_verify_sends_an_empty_batch_and_says_what_it_proves(
    segment_config, requests_mock, capsys, answer, line, code
):
    segment = requests_mock.post(BATCH, **answer)
    assert cli(["--config", str(segment_config), "--database-url", "sqlite://", "verify", "segment"]) == code
    out = capsys.readouterr().out
    assert out.startswith(VERIFY_HEAD + line + "\n")
    assert segment.last_request.json() == {"batch": []}
    assert segment.last_request.headers["Authorization"] == BASIC


def test_preview_shows_the_request_with_the_write_key_hidden(segment_config, tmp_path, capsys, clock):
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(opened("o-1")))
    args = ["--config", str(segment_config), "preview", str(event_file), "--source", "segment"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    body = json.dumps({"batch": [opened("o-1")], "sentAt": iso(clock.at)}, indent=2).splitlines()
    request = [
        "  partner segment: track_batch (key segment-production)",
        f"    POST {BATCH}",
        "    Accept: application/json",
        "    Authorization: Basic ***",
        "    Content-Type: application/json",
        "",
        *[f"    {line}" for line in body],
        "    outcome rules:",
    ]
    lines = out.splitlines()
    start = lines.index(request[0])
    assert lines[start : start + len(request)] == request
    assert TEST_WRITE_KEY not in out
