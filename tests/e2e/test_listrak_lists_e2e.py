"""Referral events over real HTTP (gunicorn, a worker, the Listrak sandbox process): several lists
per partner, `resubscribe: when_newer` against unsubscribes made in Listrak itself, and an
integration without the Beta bulk route, as `verify` and the deliveries report it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from connector.testing import ROOT, Stack, example_stack, wait_until
from plugins.extole.testing import referral_event
from plugins.listrak.testing import SANDBOX_CLIENTS_ENV
from plugins.segment.testing import audience_event

pytestmark = pytest.mark.e2e
PRODUCTION_CLIENT = SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_ID"]
SETTINGS = {"retry_schedule": ["200ms", "500ms", "1s"], "worker": {"batch_window": "200ms"}}


def start(tmp_path, **overrides) -> Stack:
    return example_stack(
        tmp_path / "stack", settings=SETTINGS, partner_overrides={"listrak": overrides}
    ).start()


def settled(stack) -> bool:
    return not {"queued", "retrying", "paused"} & set(stack.delivery_states()) and not stack.waiting_to_plan()


def contacts(stack, list_id: int) -> dict[str, str]:
    book = stack.part("listrak").state()["lists"][str(list_id)]["contacts"]
    return {email: c["subscriptionState"] for email, c in book.items()}


def deliveries_of(stack, email: str) -> list[dict]:
    (event, *_) = stack.admin("GET", f"/admin/api/events?email={email}").json()["events"]
    return stack.admin("GET", f"/admin/api/events/{event['id']}").json()["deliveries"]


@pytest.fixture
def several_lists(tmp_path):
    stack = start(
        tmp_path,
        subscription_list_id=None,
        subscription_list_ids=[12345, 456],
        segmentation_fields_by_list={456: {}},  # list 456 has none of the referral fields
    )
    yield stack
    stack.stop()


def test_opt_ins_and_opt_outs_reach_every_list_in_order(several_lists):
    stack = several_lists
    opt_ins = [
        referral_event("l-1", email="jane@example.com", event_time="2026-11-22T05:00:00Z"),
        referral_event("l-2", email="joe@example.com", event_time="2026-11-22T05:00:00Z"),
    ]
    assert stack.post_events(opt_ins).json() == {"accepted": 2, "duplicates": 0}
    wait_until(lambda: settled(stack), message="the opt-ins delivered")
    both = {"jane@example.com": "Subscribed", "joe@example.com": "Subscribed"}
    assert (contacts(stack, 12345), contacts(stack, 456)) == (both, both)
    lists = stack.part("listrak").state()["lists"]
    assert lists["12345"]["contacts"]["joe@example.com"]["segmentationFieldValues"]["1003"] == "Jane"
    assert lists["456"]["contacts"]["joe@example.com"]["segmentationFieldValues"] == {}

    opt_out = referral_event(
        "l-3", type="opt_out", email="jane@example.com", event_time="2026-11-22T06:00:00Z"
    )
    late_opt_in = referral_event("l-4", email="jane@example.com", event_time="2026-11-22T05:30:00Z")
    assert stack.post_events(opt_out).status_code == 202
    assert stack.post_events(late_opt_in).status_code == 202
    wait_until(lambda: settled(stack), message="the opt-out delivered")
    after = {"jane@example.com": "Unsubscribed", "joe@example.com": "Subscribed"}
    assert (contacts(stack, 12345), contacts(stack, 456)) == (after, after)
    assert stack.delivery_states() == {"delivered": 6, "superseded": 2}


@pytest.fixture
def when_newer(tmp_path):
    stack = start(tmp_path, resubscribe="when_newer")
    yield stack
    stack.stop()


def test_when_newer_re_subscribes_only_after_the_unsubscribe_in_listrak(when_newer):
    stack = when_newer
    for email, unsubscribed_at in (("old@example.com", "2026-11-20T00:00:00Z"), ("new@example.com", None)):
        seeded = stack.part("listrak").request(
            "POST",
            "/_sandbox/contacts",
            json={
                "list_id": 12345,
                "emailAddress": email,
                "subscriptionState": "Unsubscribed",
                "unsubscribeDate": unsubscribed_at or "2026-11-28T00:00:00Z",
            },
        )
        assert seeded.status_code == 201
    opt_ins = [
        referral_event("w-1", email="old@example.com", event_time="2026-11-25T00:00:00Z"),
        referral_event("w-2", email="new@example.com", event_time="2026-11-25T00:00:00Z"),
        referral_event("w-3", email="fresh@example.com", event_time="2026-11-25T00:00:00Z"),
    ]
    assert stack.post_events(opt_ins).json() == {"accepted": 3, "duplicates": 0}
    wait_until(lambda: settled(stack), message="every delivery finished")
    assert contacts(stack, 12345) == {
        "old@example.com": "Subscribed",
        "new@example.com": "Unsubscribed",
        "fresh@example.com": "Subscribed",
    }
    (old,) = deliveries_of(stack, "old@example.com")
    (new,) = deliveries_of(stack, "new@example.com")
    assert (old["outcome"], new["outcome"]) == ("delivered", "skipped")
    assert new["attempt_log"][0]["error_message"] == (
        "left unsubscribed: this opt-in at 2026-11-25T00:00:00Z is not newer than the unsubscribe in "
        "Listrak at 2026-11-28T00:00:00Z (when_newer)"
    )
    routes = stack.part("listrak").state()["requests"]["per_route"]
    assert routes["GET /List/<listId>/Contact/<contactIdentifier>"] == 2
    assert routes["POST /List/<listId>/Contact"] == 4  # old: without and with the override


@pytest.fixture
def no_beta(tmp_path):
    stack = start(tmp_path)
    denied = stack.part("listrak").request(
        "POST", "/_sandbox/beta_access", json={"client_id": PRODUCTION_CLIENT, "allowed": False}
    )
    assert denied.json() == {"beta_denied": [PRODUCTION_CLIENT]}
    yield stack
    stack.stop()


def test_without_beta_access_verify_fails_and_deliveries_die_with_what_to_ask(no_beta):
    stack = no_beta
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "verify", "listrak"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if "FAIL" in line] == [
        "  FAIL  profile-field bulk route (Beta) with key listrak-production: "
        "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE: the mappings ('Engage audience my_audience → field "
        "6789') need it; ask Listrak support to give this integration access to the Beta route "
        "POST /List/{listId}/Contact/SegmentationField (Update Email Contact Profile Fields), then replay"
    ]
    assert stack.post_events({"batch": [audience_event("b-1")]}, source="segment").status_code == 202
    wait_until(lambda: settled(stack), message="the delivery finished")
    (delivery,) = deliveries_of(stack, "jane@example.com")
    assert delivery["outcome"] == "dead"
    assert delivery["attempt_log"][0]["error_code"] == "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE"
