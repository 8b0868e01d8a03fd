"""Issue 3 under real processes: order per contact, SIGKILL safety, several workers, outages."""

import json
import random

import pytest

from connector.testing import StoreReader, example_stack, wait_until
from plugins.extole.testing import referral_event
from plugins.listrak import testing as reliability

pytestmark = pytest.mark.e2e


def make_stack(path, database_url=None, **settings):
    merged = {**reliability.RELIABILITY_SETTINGS, **settings}
    return example_stack(
        path, settings=merged, partner_overrides={"listrak": {"resubscribe": True}}, database_url=database_url
    )


def test_flood_with_worker_kills_and_an_outage_loses_nothing_and_keeps_order(tmp_path, store_url):
    stack = make_stack(tmp_path / "flood", database_url=store_url)
    try:
        stack.start(workers=0)
        figures = reliability.run(
            stack, referral_event, people=150, per_person=4, kill_rounds=3, outage_seconds=4.0, workers=2
        )
    finally:
        stack.stop()
    print(figures)
    assert figures["events_sent"] == 600
    assert figures["events_acknowledged"] == 600
    assert figures["worker_kills"] == 3
    assert figures["events_lost"] == 0
    assert figures["contacts_wrong"] == 0, figures["wrong_examples"]
    # The request rates during the outage are `make bench` figures; that an open circuit
    # stops requests until its probe is tests/delivery/test_worker.py's to show.


def test_two_workers_deliver_each_delivery_once(tmp_path, store_url):
    stack = make_stack(tmp_path / "two", database_url=store_url)
    try:
        stack.start(workers=2)
        stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": 20})
        events = [referral_event(f"two-{i}", email=f"p{i}@example.com") for i in range(300)]
        for start in range(0, 300, 50):
            assert stack.post_events(events[start : start + 50]).status_code == 202
        wait_until(lambda: stack.delivery_states() == {"delivered": 300}, timeout=60, message="all delivered")
        per_route = stack.part("listrak").state()["requests"]["per_route"]
        assert per_route["POST /List/<listId>/Contact"] == 300
        reader = StoreReader(stack.database_url)
        assert all(d["attempts"] == 1 for d in reader.all_deliveries())
        reader.close()
    finally:
        stack.stop()


def test_shuffled_burst_ends_with_each_persons_newest_state(tmp_path):
    stack = make_stack(tmp_path / "burst")
    try:
        stack.start(workers=1)
        stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": 10})
        all_events, newest = reliability.make_events(
            people=60, per_person=6, seed=11, make_event=referral_event
        )
        rng = random.Random(3)
        for batch in reliability.batches(all_events, rng, largest=15):
            assert stack.post_events(batch).status_code == 202
        wait_until(
            lambda: (
                not ({"queued", "retrying", "paused"} & set(stack.delivery_states()))
                and not stack.waiting_to_plan()
            ),
            timeout=60,
            message="drained",
        )
        contacts = stack.part("listrak").state()["lists"]["12345"]["contacts"]
        reader = StoreReader(stack.database_url)
        specs = [(d["state"], json.loads(d["spec"])) for d in reader.all_deliveries()]
        reader.close()
        # Listrak keeps no contact for someone whose every opt-in was superseded before it
        # was sent (an opt-out of a stranger is "not subscribed").
        known = {
            spec["email"] for state, spec in specs if state == "delivered" and spec["state"] == "Subscribed"
        }
        held = {email: contacts.get(email, {}).get("subscriptionState") for email in newest}
        assert held == {
            email: "Subscribed" if kind == "opt_in" else "Unsubscribed" if email in known else None
            for email, kind in newest.items()
        }
        states = stack.delivery_states()
        assert states.get("superseded", 0) > 0
        assert "dead" not in states
    finally:
        stack.stop()


def test_late_opt_in_never_undoes_a_newer_opt_out(tmp_path):
    stack = make_stack(tmp_path / "late")
    try:
        stack.start(workers=1)
        out = referral_event(
            "late-2", type="opt_out", email="late@example.com", event_time="2026-11-22T10:00:00Z"
        )
        assert stack.post_events(out).status_code == 202
        wait_until(lambda: stack.delivery_states() == {"delivered": 1}, message="opt-out sent")
        late_in = referral_event("late-1", email="late@example.com", event_time="2026-11-22T09:00:00Z")
        assert stack.post_events(late_in).status_code == 202
        reader = StoreReader(stack.database_url)
        wait_until(lambda: reader.deliveries_for("late-1"), message="the late opt-in planned")
        assert reader.delivery("late-1")["state"] == "superseded"
        assert reader.attempts_for(reader.delivery("late-1")["id"]) == []
        reader.close()
    finally:
        stack.stop()
