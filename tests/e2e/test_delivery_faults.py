"""Issue 3: each sandbox fault leads to the right outcome and timing (real processes)."""

import pytest

from connector.testing import StoreReader, example_stack, wait_until
from plugins.extole.testing import referral_event

pytestmark = pytest.mark.e2e

SETTINGS = {
    "retry_schedule": ["300ms", "300ms", "300ms", "300ms"],
    "worker": {"threads": 8, "http_timeout": "1s", "lease": "4s", "poll_interval": "50ms"},
    "breaker": {"threshold": 5, "probe_interval": "500ms", "max_probe_interval": "1s"},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = example_stack(tmp_path_factory.mktemp("faults"), settings=SETTINGS).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def store(stack):
    stack.part("listrak").request("POST", "/_sandbox/reset")
    reader = StoreReader(stack.database_url)
    yield reader
    reader.close()
    stack.part("listrak").request("DELETE", "/_sandbox/faults")


def fault(stack, **body):
    response = stack.part("listrak").request("POST", "/_sandbox/faults", json=body)
    assert response.ok, response.text


def settled(store, event_id, state):
    return wait_until(
        lambda: store.delivery(event_id)["state"] == state and store.delivery(event_id),
        timeout=20,
        message=f"{event_id} {state}",
    )


def send(stack, event_id, email, **kwargs):
    response = stack.post_events(referral_event(event_id, email=email, **kwargs))
    assert response.status_code == 202, response.text


def test_server_errors_are_retried_then_delivered(stack, store):
    fault(stack, mode="500", count=2)
    send(stack, "f-500", "five@example.com")
    delivery = settled(store, "f-500", "delivered")
    outcomes = [(a["status"], a["outcome"]) for a in store.attempts_for(delivery["id"])]
    assert outcomes == [(500, "retrying"), (500, "retrying"), (201, "delivered")]


def test_retry_after_is_honoured(stack, store):
    fault(stack, mode="429", count=1, retry_after=2)
    send(stack, "f-429", "rate@example.com")
    delivery = settled(store, "f-429", "delivered")
    first, second = store.attempts_for(delivery["id"])
    assert first["status"] == 429
    assert first["outcome"] == "retrying"
    # Retry-After (2 s) outweighs the schedule's 300 ms: the next claim waits for it.
    assert second["started_at"] - first["started_at"] >= 2.0


def test_hang_past_timeout_is_retried(stack, store):
    fault(stack, mode="hang", count=1, hang_seconds=3)
    send(stack, "f-hang", "hang@example.com")
    delivery = settled(store, "f-hang", "delivered")
    first = store.attempts_for(delivery["id"])[0]
    assert first["status"] is None
    assert first["error_message"].startswith("timeout")


def test_dropped_connection_is_retried(stack, store):
    fault(stack, mode="drop", count=1)
    send(stack, "f-drop", "drop@example.com")
    delivery = settled(store, "f-drop", "delivered")
    first = store.attempts_for(delivery["id"])[0]
    assert first["status"] is None
    assert first["error_message"].startswith("connection")


def test_expired_token_is_fetched_again_and_the_request_retried_at_once(stack, store):
    send(stack, "f-tok-1", "token1@example.com")
    settled(store, "f-tok-1", "delivered")
    fetches_before = sum(stack.part("listrak").state()["requests"]["token_fetches"].values())
    fault(stack, mode="expire_token")
    send(stack, "f-tok-2", "token2@example.com")
    delivery = settled(store, "f-tok-2", "delivered")
    (only,) = store.attempts_for(delivery["id"])
    assert only["status"] == 201
    assert sum(stack.part("listrak").state()["requests"]["token_fetches"].values()) == fetches_before + 1


def test_refused_credentials_pause_the_key_and_resume_by_themselves(stack, store):
    fault(stack, mode="refuse_credentials")
    fault(stack, mode="expire_token")
    send(stack, "f-ref-0", "warm@example.com")  # uses up the expired token: 401, refetch refused
    send(stack, "f-ref-1", "paused1@example.com")
    paused = settled(store, "f-ref-1", "paused")
    assert paused["attempts"] == 0
    assert store.breakers()["key:listrak-production"]["state"] == "paused"
    # Probes keep being refused (each claim of one moves `opened` on): the deliveries wait,
    # never burned into dead.
    wait_until(
        lambda: store.breakers()["key:listrak-production"]["opened"] >= 3,
        timeout=20,
        message="two more probes of the paused key",
    )
    assert [(store.delivery(e)["state"], store.delivery(e)["attempts"]) for e in ("f-ref-0", "f-ref-1")] == [
        ("paused", 0),
        ("paused", 0),
    ]
    stack.part("listrak").request("DELETE", "/_sandbox/faults")
    settled(store, "f-ref-1", "delivered")
    settled(store, "f-ref-0", "delivered")
    assert "key:listrak-production" not in store.breakers()


def test_unknown_list_is_dead_with_the_partner_error_code(tmp_path):
    stack = example_stack(
        tmp_path / "s", settings=SETTINGS, partner_overrides={"listrak": {"subscription_list_id": 999}}
    )
    try:
        stack.start()
        send(stack, "f-404", "nolist@example.com")
        reader = StoreReader(stack.database_url)
        delivery = settled(reader, "f-404", "dead")
        assert delivery["last_status"] == 404
        assert delivery["last_error_code"] == "ERROR_UNABLE_TO_LOCATE_RESOURCE"
        assert delivery["attempts"] == 1
        reader.close()
    finally:
        stack.stop()


def test_retry_schedule_running_out_is_dead(stack, store):
    fault(stack, mode="503", count=5)
    send(stack, "f-out", "out@example.com")
    delivery = settled(store, "f-out", "dead")
    assert delivery["attempts"] == 5
    assert delivery["reason"].startswith("retry schedule ran out")


def test_opt_in_of_contact_unsubscribed_in_listrak_is_skipped(stack, store):
    send(stack, "f-u1", "gone@example.com", event_time="2026-11-22T01:00:00Z")
    settled(store, "f-u1", "delivered")
    send(stack, "f-u2", "gone@example.com", type="opt_out", event_time="2026-11-22T02:00:00Z")
    settled(store, "f-u2", "delivered")
    send(stack, "f-u3", "gone@example.com", event_time="2026-11-22T03:00:00Z")
    skipped = settled(store, "f-u3", "skipped")
    assert skipped["reason"] == "unsubscribed in Listrak (resubscribe is off)"
    assert len(store.attempts_for(skipped["id"])) == 1


def test_opt_out_of_contact_not_in_listrak_counts_as_delivered(stack, store):
    send(stack, "f-n1", "never@example.com", type="opt_out")
    delivery = settled(store, "f-n1", "delivered")
    assert delivery["last_error_code"] == "ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS"
