"""Replays over real HTTP (gunicorn with two workers, a worker, the Listrak sandbox): a captured
signed opt-in sent again after `connector purge` has removed everything it may never changes
Listrak, and a Standard Webhooks delivery sent many times at once is stored once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from connector.testing import ROOT, StoreReader, example_stack, wait_until
from plugins.extole.testing import referral_event

JANE = "jane.doe@example.com"
SW_KEY = b"standard-webhooks-e2e-key-bytes!"
PURGE_EVERYTHING = {"retention": {"delivered": "0s", "replay_window": "0s"}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request):
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture
def stack(tmp_path, database_url):
    secret = "whsec_" + base64.b64encode(SW_KEY).decode()
    stack = example_stack(
        tmp_path / "stack",
        database_url=database_url,
        settings=PURGE_EVERYTHING,
        extra_files={
            "sources/standard.yaml": {
                "plugin": "extole",
                "auth": {"algorithm": "STANDARD_WEBHOOKS", "secrets": [secret]},
            }
        },
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def contact(stack) -> dict | None:
    return stack.part("listrak").state()["lists"]["12345"]["contacts"].get(JANE)


def contact_requests(stack) -> int:
    by_route = stack.part("listrak").state()["requests"]["per_route"]
    return sum(n for route, n in by_route.items() if route.endswith("/Contact"))


def purge(stack) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "purge"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_captured_opt_in_sent_again_after_a_purge_never_changes_listrak(stack):
    opt_in = json.dumps(referral_event("in-1", event_time="2026-11-22T05:00:00Z")).encode()
    captured = {"Content-Type": "application/json", **stack.signers["extole"](opt_in)}
    url = f"{stack.base_url}/webhooks/extole"
    assert requests.post(url, data=opt_in, headers=captured, timeout=10).status_code == 202
    wait_until(lambda: (contact(stack) or {}).get("subscriptionState") == "Subscribed", message="opt-in")
    stack.post_events(referral_event("out-1", type="opt_out", event_time="2026-11-22T06:00:00Z"))
    wait_until(lambda: contact(stack)["subscriptionState"] == "Unsubscribed", message="opt-out")
    wait_until(lambda: stack.delivery_states() == {"delivered": 2}, message="both recorded delivered")
    assert re.fullmatch(
        r"purged 2 deliveries, 2 attempts, 2 events in \d+ transactions \(the longest [\d.]+ ms\)",
        purge(stack),
    )
    sent = contact_requests(stack)

    again = requests.post(url, data=opt_in, headers=captured, timeout=10)
    assert (again.status_code, again.json()) == (202, {"accepted": 1, "duplicates": 0})
    store = StoreReader(stack.database_url)
    try:
        (replayed,) = wait_until(store.all_deliveries, message="the replayed opt-in planned")
    finally:
        store.close()
    assert (replayed["state"], replayed["reason"]) == (
        "superseded",
        "a newer event for this contact was received before (remembered after its purge)",
    )
    assert contact(stack)["subscriptionState"] == "Unsubscribed"
    assert contact_requests(stack) == sent


def test_a_captured_opt_in_tied_with_the_opt_out_never_resubscribes_after_a_purge(stack):
    # Equal event times: the opt-out arrived later, so it won; after the purge both ids are
    # forgotten and the captured opt-in arrives anew, later still. The remembered mark wins.
    opt_in = json.dumps(referral_event("in-1", event_time="2026-11-22T05:00:00Z")).encode()
    captured = {"Content-Type": "application/json", **stack.signers["extole"](opt_in)}
    url = f"{stack.base_url}/webhooks/extole"
    assert requests.post(url, data=opt_in, headers=captured, timeout=10).status_code == 202
    wait_until(lambda: (contact(stack) or {}).get("subscriptionState") == "Subscribed", message="opt-in")
    stack.post_events(referral_event("out-1", type="opt_out", event_time="2026-11-22T05:00:00Z"))
    wait_until(lambda: contact(stack)["subscriptionState"] == "Unsubscribed", message="opt-out")
    wait_until(lambda: stack.delivery_states() == {"delivered": 2}, message="both recorded delivered")
    purge(stack)
    sent = contact_requests(stack)

    again = requests.post(url, data=opt_in, headers=captured, timeout=10)
    assert (again.status_code, again.json()) == (202, {"accepted": 1, "duplicates": 0})
    store = StoreReader(stack.database_url)
    try:
        (replayed,) = wait_until(store.all_deliveries, message="the replayed opt-in planned")
    finally:
        store.close()
    assert replayed["state"] == "superseded"
    assert contact(stack)["subscriptionState"] == "Unsubscribed"
    assert contact_requests(stack) == sent


def test_a_tie_loser_is_kept_while_its_winner_is_and_never_resubscribes(tmp_path, database_url):
    # The opt-in lost its tie to the later opt-out. A purge that takes the opt-in (older) but
    # not yet the opt-out must keep it, or its id is forgotten and a captured copy wins the tie.
    stack = example_stack(
        tmp_path / "tie",
        database_url=database_url,
        settings={"retention": {"delivered": "4s", "replay_window": "0s"}},
    )
    try:
        stack.start()
        opt_in = json.dumps(referral_event("in-1", event_time="2026-11-22T05:00:00Z")).encode()
        captured = {"Content-Type": "application/json", **stack.signers["extole"](opt_in)}
        url = f"{stack.base_url}/webhooks/extole"
        assert requests.post(url, data=opt_in, headers=captured, timeout=10).status_code == 202
        wait_until(lambda: stack.delivery_states() == {"delivered": 1}, message="opt-in delivered")
        time.sleep(5)
        stack.post_events(referral_event("out-1", type="opt_out", event_time="2026-11-22T05:00:00Z"))
        wait_until(lambda: stack.delivery_states() == {"delivered": 2}, message="opt-out delivered")
        assert purge(stack).startswith("purged 0 deliveries")
        again = requests.post(url, data=opt_in, headers=captured, timeout=10)
        assert again.json() == {"accepted": 0, "duplicates": 1}

        time.sleep(5)
        assert purge(stack).startswith("purged 2 deliveries")
        again = requests.post(url, data=opt_in, headers=captured, timeout=10)
        assert again.json() == {"accepted": 1, "duplicates": 0}
        store = StoreReader(stack.database_url)
        try:
            (replayed,) = wait_until(store.all_deliveries, message="the captured opt-in planned")
        finally:
            store.close()
        assert replayed["state"] == "superseded"
        assert contact(stack)["subscriptionState"] == "Unsubscribed"
    finally:
        stack.stop()


def test_a_standard_webhooks_delivery_sent_many_times_at_once_is_stored_once(stack):
    body = json.dumps(referral_event("sw-1", email="sam@example.com")).encode()
    timestamp = str(int(time.time()))
    signed = f"msg_e2e.{timestamp}.".encode() + body
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_e2e",
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1,"
        + base64.b64encode(hmac.new(SW_KEY, signed, hashlib.sha256).digest()).decode(),
    }

    def send(_):
        response = requests.post(
            f"{stack.base_url}/webhooks/standard", data=body, headers=headers, timeout=30
        )
        return response.status_code, response.json()

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(map(json.dumps, pool.map(send, range(8))))
    assert answers == sorted(
        [json.dumps([202, {"accepted": 1, "duplicates": 0}])]
        + [json.dumps([401, {"error": "unauthorized", "message": "webhook-id was already used"}])] * 7
    )
