"""Issue 23 under real processes (gunicorn, workers, the Listrak sandbox's SMS API): SMS consent
floods — shuffled, retried through an outage, sent again, with workers SIGKILLed — leave the
sandbox's SMS list exactly as each number's newest event says, on SQLite and PostgreSQL; email
and SMS consent of the same people never interfere; a captured SMS opt-in sent again after a
purge never changes the list."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
import requests

from connector.testing import ROOT, batches, example_stack, wait_until
from plugins.extole.testing import referral_event
from plugins.listrak import testing as reliability

pytestmark = pytest.mark.e2e
PHONE = "15555555555"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request):
    """None (a SQLite file in the stack's folder) or a fresh PostgreSQL database."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


def drained(stack) -> bool:
    return (
        not ({"queued", "retrying", "paused"} & set(stack.delivery_states())) and not stack.waiting_to_plan()
    )


def test_an_sms_flood_with_kills_an_outage_and_replays_leaves_each_numbers_newest_state(tmp_path, store_url):
    stack = example_stack(
        tmp_path / "flood",
        settings=reliability.RELIABILITY_SETTINGS,
        partner_overrides={"listrak": {"resubscribe": True}},
        database_url=store_url,
    )
    try:
        stack.start(workers=0)
        figures = reliability.run(
            stack,
            referral_event,
            people=120,
            per_person=4,
            kill_rounds=3,
            outage_seconds=3.0,
            workers=2,
            channels=("sms",),
            replayed_share=0.25,
        )
        states = stack.delivery_states()
    finally:
        stack.stop()
    print(figures)
    assert figures["events_sent"] == figures["events_acknowledged"] == 480
    assert figures["events_stored"] == 480  # the requests sent again were duplicates
    assert figures["replays_acknowledged"] == figures["events_replayed"] > 0
    assert figures["worker_kills"] == 3
    assert figures["faults_injected"] > 0
    assert figures["events_lost"] == 0
    assert figures["contacts_wrong"] == 0, figures["wrong_examples"]
    assert states.get("superseded", 0) > 0
    assert "dead" not in states


def test_email_and_sms_consent_of_the_same_people_never_interfere(tmp_path):
    stack = example_stack(
        tmp_path / "both",
        settings=reliability.RELIABILITY_SETTINGS,
        partner_overrides={"listrak": {"resubscribe": True}},
    )
    try:
        stack.start(workers=2)
        stack.part("listrak").request(
            "POST", "/_sandbox/faults", json={"mode": "503", "ratio": 0.2}
        )  # some retries
        events, newest = reliability.make_events(
            people=40, per_person=5, seed=23, make_event=referral_event, channels=("email", "sms")
        )
        for batch in batches(events, random.Random(5), largest=20):
            assert stack.post_events(batch).status_code == 202
        wait_until(lambda: drained(stack), timeout=90, message="drained")
        state = stack.part("listrak").state()
    finally:
        stack.stop()
    assert len(newest) == 80  # 40 addresses and 40 numbers, each with its own newest event
    assert reliability.wrong_addresses(state, newest) == []
    # An SMS opt-out never touched the email list, nor an email opt-out the SMS list: each
    # list holds what its own channel's newest events say, even where they disagree.
    disagree = [p for p in range(40) if newest[f"person{p}@example.com"] != newest[reliability.phone_of(p)]]
    assert disagree


def test_a_captured_sms_opt_in_sent_again_after_a_purge_never_changes_the_list(tmp_path):
    stack = example_stack(
        tmp_path / "purge", settings={"retention": {"delivered": "0s", "replay_window": "0s"}}
    )
    try:
        stack.start()
        opt_in = sms_event("in-1", "sms_opt_in", "2026-11-22T05:00:00Z")
        body = json.dumps(opt_in).encode()
        captured = {"Content-Type": "application/json", **stack.signers["extole"](body)}
        url = f"{stack.base_url}/webhooks/extole"
        assert requests.post(url, data=body, headers=captured, timeout=10).status_code == 202
        wait_until(lambda: held(stack) == "Subscribed", message="opt-in")
        assert stack.post_events(sms_event("out-1", "sms_opt_out", "2026-11-22T06:00:00Z")).status_code == 202
        wait_until(lambda: held(stack) == "Unsubscribed", message="opt-out")
        wait_until(lambda: stack.delivery_states() == {"delivered": 2}, message="both recorded delivered")
        purge = subprocess.run(
            [sys.executable, "-m", "connector.cli", "purge"],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
            text=True,
        )
        assert purge.returncode == 0, purge.stderr
        assert stack.delivery_states() == {}
        answer = requests.post(url, data=body, headers=captured, timeout=10)
        assert answer.json() == {"accepted": 1, "duplicates": 0}  # its id was forgotten too
        wait_until(lambda: stack.delivery_states() == {"superseded": 1}, message="the replay superseded")
        assert held(stack) == "Unsubscribed"
        # The opt-in's subscribe (404: a new number) and create, the opt-out's DELETE; nothing since.
        assert requests_to_the_sms_list(stack) == 3
    finally:
        stack.stop()


def sms_event(event_id: str, type: str, event_time: str) -> dict:
    return referral_event(event_id, type, event_time=event_time, phone_number=f"+{PHONE}")


def held(stack) -> str | None:
    return reliability.held(stack.part("listrak").state(), PHONE)


def requests_to_the_sms_list(stack) -> int:
    routes = stack.part("listrak").state()["requests"]["per_route"]
    return sum(n for route, n in routes.items() if route.startswith(("POST /sms/v1", "DELETE /sms/v1")))
