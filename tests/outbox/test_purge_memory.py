"""What outlives `connector purge`: each contact's newest consent (for good) and each source's
accepted event ids (for the replay window), so a captured request sent again after a purge
never changes consent; events that planned no delivery go after a day."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, update

from connector.contract import InboundEvent, PlannedDelivery, Unauthorized
from connector.delivery.worker import Worker
from connector.outbox import contacts, storing
from connector.outbox.claims import claim
from connector.outbox.consent import Change, Reason
from connector.outbox.intake import IngestResult, accept, ingest
from connector.outbox.replay import replay
from connector.outbox.retention import purge
from connector.outbox.tables import consent_marks, deliveries, events, seen_events
from connector.records import ReplayGuard
from connector.runtime import Runtime
from connector.testing.store import after_planning, stored_deliveries, stored_events
from plugins.extole.source import ExtoleSource
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API
from plugins.segment.testing import audience_event, post_segment

CONTACT = f"{API}/List/12345/Contact"
KEY = "listrak|production|12345|jane.doe@example.com"
T1, T2, T3 = "2026-11-22T05:00:00Z", "2026-11-22T06:00:00Z", "2026-11-22T07:00:00Z"
WEEK = 7 * 86400.0
EVERYTHING = {"delivered": 0.0, "dead": WEEK, "replay_window": 0.0}  # all that purge may take
IDS_KEPT = {"delivered": 0.0, "dead": WEEK}  # the default replay window: 30 days


@pytest.fixture
def contact_route(requests_mock, listrak_token):
    return requests_mock.post(CONTACT, status_code=201, json={"status": 201})


@pytest.fixture
def captured_opt_in(post_events, runtime, contact_route, clock) -> bytes:
    """Jane opted in (T1), then out (T2), both delivered; the opt-in's body was captured."""
    body = json.dumps(referral_event("in-1", event_time=T1)).encode()
    assert post_events(body).status_code == 202
    Worker(runtime).run_once()
    assert post_events(referral_event("out-1", type="opt_out", event_time=T2)).status_code == 202
    Worker(runtime).run_once()
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["delivered", "delivered"]
    assert contact_route.call_count == 2
    clock.advance(1)
    return body


def marks(runtime) -> list[tuple]:
    with runtime.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(consent_marks).order_by(consent_marks.c.contact_key))]


def test_captured_opt_in_sent_again_after_everything_is_purged_never_reaches_the_partner(
    captured_opt_in, post_events, runtime, contact_route
):
    assert purge(runtime.engine, EVERYTHING) == {"deliveries": 2, "attempts": 2, "events": 2}
    assert stored_events(after_planning(runtime)) == []
    assert post_events(captured_opt_in).json == {"accepted": 1, "duplicates": 0}
    (replayed,) = stored_deliveries(after_planning(runtime))
    assert (replayed["state"], replayed["reason"]) == ("superseded", Reason.NEWER_REMEMBERED)
    assert Worker(runtime).run_once() == 0
    assert contact_route.call_count == 2


def test_a_tied_opt_in_sent_again_after_the_purge_never_undoes_the_opt_out(
    post_events, runtime, contact_route, clock
):
    # Same event_time: while both are stored the later arrival (the opt-out) wins; once both
    # are purged and their ids forgotten, the captured opt-in is a new arrival, and only the
    # remembered mark stands between it and a resubscription.
    opt_in = json.dumps(referral_event("in-1", event_time=T1)).encode()
    post_events(opt_in)
    Worker(runtime).run_once()
    post_events(referral_event("out-1", type="opt_out", event_time=T1))
    Worker(runtime).run_once()
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["delivered", "delivered"]
    clock.advance(1)
    purge(runtime.engine, EVERYTHING)

    assert post_events(opt_in).json == {"accepted": 1, "duplicates": 0}
    (replayed,) = stored_deliveries(after_planning(runtime))
    assert (replayed["state"], replayed["reason"]) == ("superseded", Reason.NEWER_REMEMBERED)
    assert Worker(runtime).run_once() == 0
    assert contact_route.last_request.json()["subscriptionState"] == "Unsubscribed"


def test_a_tie_loser_outlives_the_purge_while_its_winner_is_kept(post_events, runtime, contact_route, clock):
    # The opt-in lost its tie to the later opt-out. Purged (and its id forgotten) while the
    # opt-out is still kept, a captured copy of it would arrive after both and win the tie:
    # it stays until the purge that takes the opt-out.
    opt_in = json.dumps(referral_event("in-1", event_time=T1)).encode()
    post_events(opt_in)
    Worker(runtime).run_once()
    clock.advance(100)
    post_events(referral_event("out-1", type="opt_out", event_time=T1))
    Worker(runtime).run_once()
    clock.advance(50)
    keep_the_opt_out = {"delivered": 120.0, "dead": WEEK, "replay_window": 0.0}
    assert purge(runtime.engine, keep_the_opt_out)["deliveries"] == 0
    assert post_events(opt_in).json == {"accepted": 0, "duplicates": 1}

    clock.advance(200)
    assert purge(runtime.engine, keep_the_opt_out)["deliveries"] == 2
    assert post_events(opt_in).json == {"accepted": 1, "duplicates": 0}
    (replayed,) = stored_deliveries(runtime)
    assert (replayed["state"], replayed["reason"]) == ("superseded", Reason.NEWER_REMEMBERED)
    assert Worker(runtime).run_once() == 0
    assert contact_route.last_request.json()["subscriptionState"] == "Unsubscribed"


def test_a_tie_with_a_stored_change_still_goes_to_the_later_arrival(post_events, runtime, contact_route):
    post_events(referral_event("in-1", event_time=T1))
    Worker(runtime).run_once()
    post_events(referral_event("out-1", type="opt_out", event_time=T1))
    assert Worker(runtime).run_once() == 1
    assert contact_route.last_request.json()["subscriptionState"] == "Unsubscribed"


def test_captured_opt_in_sent_again_within_the_replay_window_is_a_duplicate(
    captured_opt_in, post_events, runtime
):
    assert purge(runtime.engine, IDS_KEPT)["events"] == 2
    assert post_events(captured_opt_in).json == {"accepted": 0, "duplicates": 1}
    assert stored_events(after_planning(runtime)) == []


def test_a_newer_opt_in_after_a_purge_is_sent(captured_opt_in, post_events, runtime, contact_route):
    purge(runtime.engine, EVERYTHING)
    assert post_events(referral_event("in-2", event_time=T3)).json == {"accepted": 1, "duplicates": 0}
    assert Worker(runtime).run_once() == 1
    assert contact_route.call_count == 3
    assert contact_route.last_request.json()["subscriptionState"] == "Subscribed"


def test_the_newest_queued_change_is_the_contacts_mark(post_events, runtime, clock):
    post_events(referral_event("out-1", type="opt_out", event_time=T2))
    post_events(referral_event("in-1", event_time=T1))  # older: superseded, not the mark
    (out, _) = stored_deliveries(after_planning(runtime))
    assert marks(runtime) == [(KEY, out["event_time"], out["id"], clock.at)]


def test_claim_supersedes_a_retrying_change_older_than_a_purged_one(engine, add, runtime):
    older = add(KEY, 100.0, state="retrying")
    with engine.begin() as conn:  # a newer change was delivered, then purged
        contacts.remember(conn, [Change(older + 1, KEY, 200.0, "delivered")], 0.0)
    assert claim(engine, "w1", 10, 60.0) == []
    (row,) = stored_deliveries(after_planning(runtime))
    assert (row["state"], row["reason"]) == ("superseded", Reason.NEWER_REMEMBERED)


def test_replay_of_a_dead_opt_in_older_than_a_purged_opt_out_is_superseded(
    post_events, runtime, requests_mock, listrak_token, clock
):
    refused = requests_mock.post(CONTACT, status_code=400, json={"status": 400, "message": "bad"})
    post_events(referral_event("in-1", event_time=T1))
    Worker(runtime).run_once()
    requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_events(referral_event("out-1", type="opt_out", event_time=T2))
    Worker(runtime).run_once()
    clock.advance(1)
    assert purge(runtime.engine, EVERYTHING)["deliveries"] == 1  # the dead one stays a week
    (dead,) = stored_deliveries(after_planning(runtime))
    assert replay(runtime.engine, [dead["id"]]) == {"queued": 0, "superseded": 1, "unchanged": 0}
    (after,) = stored_deliveries(after_planning(runtime))
    assert after["reason"] == f"replay refused: {Reason.NEWER_REMEMBERED}"
    assert refused.call_count == 1


def test_replayed_change_becomes_the_contacts_mark(post_events, runtime, requests_mock, listrak_token, clock):
    requests_mock.post(CONTACT, status_code=400, json={"status": 400, "message": "bad"})
    post_events(referral_event("in-1", event_time=T1))
    Worker(runtime).run_once()
    (dead,) = stored_deliveries(after_planning(runtime))
    with runtime.engine.begin() as conn:
        conn.execute(consent_marks.delete())
    assert replay(runtime.engine, [dead["id"]])["queued"] == 1
    assert marks(runtime) == [(KEY, dead["event_time"], dead["id"], clock.at)]


REMEMBER = [
    # (case, the mark before, the change remembered, the mark after)
    ("no mark yet", None, (100.0, 5), (100.0, 5)),
    ("a newer change", (100.0, 5), (200.0, 6), (200.0, 6)),
    ("an older change", (200.0, 6), (100.0, 7), (200.0, 6)),
    ("equal time, later id", (100.0, 5), (100.0, 6), (100.0, 6)),
    ("equal time, earlier id", (100.0, 6), (100.0, 5), (100.0, 6)),
]


@pytest.mark.parametrize(
    ("before", "change", "after"), [c[1:] for c in REMEMBER], ids=[c[0] for c in REMEMBER]
)
def test_remember_keeps_the_newest_change(engine, runtime, before, change, after):
    with engine.begin() as conn:
        if before:
            contacts.remember(conn, [Change(before[1], "c", before[0], "queued")], 1.0)
        contacts.remember(conn, [Change(change[1], "c", change[0], "queued")], 1.0)
    assert [m[1:3] for m in marks(runtime)] == [after]


def test_a_mark_counts_as_a_delivered_change_unless_its_delivery_is_stored(engine, add):
    stored = add("a", 100.0)
    with engine.begin() as conn:
        contacts.remember(
            conn, [Change(stored, "a", 100.0, "queued"), Change(99, "b", 50.0, "delivered")], 1.0
        )
        found = contacts.live_changes(conn, ["a", "b"])
    assert found == {
        "a": [Change(stored, "a", 100.0, "queued")],
        "b": [Change(99, "b", 50.0, "delivered", None, remembered=True, purged=True)],
    }


# -- what purge removes and keeps -------------------------------------------------------------


def test_an_event_that_planned_no_delivery_goes_after_a_day(client, runtime, clock):
    unmapped = audience_event("m-1", audience="no_mapping_for_this")
    assert post_segment(client, unmapped).json == {"accepted": 1, "duplicates": 0}
    assert stored_deliveries(after_planning(runtime)) == []
    clock.advance(3600)
    assert purge(runtime.engine, {"delivered": 30 * 86400.0, "dead": WEEK})["events"] == 0
    clock.advance(86400)
    assert purge(runtime.engine, {"delivered": 30 * 86400.0, "dead": WEEK})["events"] == 1
    assert post_segment(client, unmapped).json == {"accepted": 0, "duplicates": 1}


def test_seen_event_ids_go_after_the_replay_window_and_marks_never(captured_opt_in, runtime, clock):
    before = marks(runtime)
    clock.advance(30 * 86400 - 1)  # received 30 days ago to the second
    purge(runtime.engine, IDS_KEPT)
    with runtime.engine.connect() as conn:
        assert conn.execute(select(seen_events.c.event_id)).scalars().all() == ["in-1", "out-1"]
    clock.advance(1)
    purge(runtime.engine, IDS_KEPT)
    with runtime.engine.connect() as conn:
        assert conn.execute(select(seen_events.c.event_id)).scalars().all() == []
    assert marks(runtime) == before


def test_a_pulled_event_id_is_remembered_when_its_event_is_purged(runtime, clock):
    """A pull source's event has no `seen_events` row while it is stored (its own row makes a
    repeat a duplicate); the purge that takes the event remembers its id instead, for the rest
    of the replay window."""
    pulled = InboundEvent("row-1", "opened", datetime.now(UTC), "production", "x@example.com", {"a": 1})
    unordered = PlannedDelivery("forward", {"a": 1}, None)
    assert ingest(runtime.engine, "pulled", [(pulled, [("hook", unordered)])]).accepted == 1
    assert seen_ids(runtime) == []
    assert ingest(runtime.engine, "pulled", [(pulled, [("hook", unordered)])]).duplicates == 1
    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).values(state="delivered", next_attempt_at=None))
    clock.advance(86400)
    assert purge(runtime.engine, IDS_KEPT)["events"] == 1
    assert seen_ids(runtime) == ["row-1"]
    assert ingest(runtime.engine, "pulled", [(pulled, [("hook", unordered)])]).duplicates == 1
    clock.advance(30 * 86400)  # past the window counted from its arrival
    purge(runtime.engine, IDS_KEPT)
    assert seen_ids(runtime) == []
    assert ingest(runtime.engine, "pulled", [(pulled, [("hook", unordered)])]).accepted == 1


def test_a_pulled_event_whose_purge_commits_while_it_is_stored_again_stays_a_duplicate(
    runtime, clock, monkeypatch
):
    """On PostgreSQL a purge can commit (the id remembered, the event deleted) while a repeat
    of the event is being stored: the repeat must still be a duplicate."""
    pulled = InboundEvent("row-1", "opened", datetime.now(UTC), "production", "x@example.com", {"a": 1})
    page = [(pulled, [("hook", PlannedDelivery("forward", {"a": 1}, None))])]
    ingest(runtime.engine, "pulled", page)
    real_insert = storing.insert_new_rows

    def purged_meanwhile(conn, *args, **kwargs):
        conn.execute(delete(deliveries))
        conn.execute(delete(events))
        conn.execute(insert(seen_events).values(source_id="pulled", event_id="row-1", received_at=clock()))
        return real_insert(conn, *args, **kwargs)

    monkeypatch.setattr(storing, "insert_new_rows", purged_meanwhile)
    again = ingest(
        runtime.engine, "pulled", [(pulled, [("hook", PlannedDelivery("forward", {"a": 1}, None))])]
    )
    assert (again.accepted, again.duplicates) == (0, 1)
    with runtime.engine.connect() as conn:
        assert conn.execute(select(events.c.id)).all() == []
        assert conn.execute(select(deliveries.c.id)).all() == []


def seen_ids(runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return conn.execute(select(seen_events.c.event_id).order_by(seen_events.c.event_id)).scalars().all()


# -- the same on PostgreSQL ------------------------------------------------------------------


def test_replay_after_purge_and_replay_keys_on_postgres(
    config_dir, postgres_url, requests_mock, listrak_token, clock
):
    runtime = Runtime.build(str(config_dir), postgres_url)
    contact_route = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    opt_in, opt_out = ExtoleSource().parse(
        json.dumps(
            [referral_event("in-1", event_time=T1), referral_event("out-1", "opt_out", event_time=T2)]
        ).encode(),
        {},
    )
    guard = ReplayGuard("msg-1", clock.at + 300, "used")
    assert accept(runtime.engine, "extole", [opt_in], replay=guard) == IngestResult(1, 0)
    with pytest.raises(Unauthorized):
        accept(runtime.engine, "extole", [opt_out], replay=guard)
    Worker(runtime).run_once()
    assert accept(runtime.engine, "extole", [opt_out]) == IngestResult(1, 0)
    Worker(runtime).run_once()
    clock.advance(1)
    purge(runtime.engine, EVERYTHING)
    assert accept(runtime.engine, "extole", [opt_in]) == IngestResult(1, 0)
    (replayed,) = stored_deliveries(after_planning(runtime))
    assert (replayed["state"], replayed["reason"]) == ("superseded", Reason.NEWER_REMEMBERED)
    assert Worker(runtime).run_once() == 0
    assert contact_route.call_count == 2


def test_one_of_two_requests_at_once_with_one_replay_key_is_stored_on_postgres(config_dir, postgres_url):
    runtime = Runtime.build(str(config_dir), postgres_url)
    events = ExtoleSource().parse(
        json.dumps([referral_event(f"e-{i}", email=f"p{i}@example.com") for i in range(2)]).encode(), {}
    )
    start, outcomes = threading.Barrier(2, timeout=30), []

    def send(event):
        start.wait()
        try:
            guard = ReplayGuard("msg-1", 9e9, "used")
            outcomes.append(accept(runtime.engine, "extole", [event], replay=guard))
        except Unauthorized as refused:
            outcomes.append(str(refused))

    threads = [threading.Thread(target=send, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) == ["IngestResult(accepted=1, duplicates=0)", "used"]
    assert len(stored_events(after_planning(runtime))) == 1
