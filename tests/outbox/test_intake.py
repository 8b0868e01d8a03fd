"""Consent order at ingest: per contact, the newest event_time wins; a late older event is
superseded and never sent; on a tie the later arrival wins."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from connector.contract import InboundEvent, PlannedDelivery
from connector.outbox.engine import now
from connector.outbox.intake import ingest
from connector.outbox.tables import deliveries
from connector.testing.store import after_planning, stored_deliveries, stored_events
from plugins.extole.testing import referral_event

T1 = "2026-11-22T05:00:00Z"
T2 = "2026-11-22T06:00:00Z"
T3 = "2026-11-22T07:00:00Z"


def states(runtime) -> list[tuple[str, str]]:
    return [(d["spec"]["state"], d["state"]) for d in stored_deliveries(after_planning(runtime))]


def set_state(runtime, delivery_id: int, **values) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))


def test_older_event_arriving_late_is_superseded(post_events, runtime):
    post_events(referral_event("out", type="opt_out", event_time=T2))
    assert post_events(referral_event("in", event_time=T1)).json == {"accepted": 1, "duplicates": 0}
    assert states(runtime) == [("Unsubscribed", "queued"), ("Subscribed", "superseded")]
    assert stored_deliveries(after_planning(runtime))[1]["reason"] == (
        "a newer event for this contact is queued or delivered"
    )
    assert stored_deliveries(after_planning(runtime))[1]["next_attempt_at"] is None


def test_newer_event_supersedes_a_queued_older_one(post_events, runtime):
    post_events(referral_event("in", event_time=T1))
    post_events(referral_event("out", type="opt_out", event_time=T2))
    assert states(runtime) == [("Subscribed", "superseded"), ("Unsubscribed", "queued")]
    assert stored_deliveries(after_planning(runtime))[0]["reason"] == "a newer event for this contact arrived"


def test_newer_event_supersedes_a_retrying_or_paused_older_one(post_events, runtime):
    post_events(referral_event("a", event_time=T1, email="a@example.com"))
    post_events(referral_event("b", event_time=T1, email="b@example.com"))
    set_state(runtime, 1, state="retrying")
    set_state(runtime, 2, state="paused")
    post_events(
        [
            referral_event("a2", type="opt_out", event_time=T2, email="a@example.com"),
            referral_event("b2", type="opt_out", event_time=T2, email="b@example.com"),
        ]
    )
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == [
        "superseded",
        "superseded",
        "queued",
        "queued",
    ]


def test_tie_on_event_time_the_later_arrival_wins(post_events, runtime):
    post_events(referral_event("first", event_time=T1))
    post_events(referral_event("second", type="opt_out", event_time=T1))
    assert states(runtime) == [("Subscribed", "superseded"), ("Unsubscribed", "queued")]


def test_tie_within_one_request_the_later_item_wins(post_events, runtime):
    post_events(
        [referral_event("first", type="opt_out", event_time=T1), referral_event("second", event_time=T1)]
    )
    assert states(runtime) == [("Unsubscribed", "superseded"), ("Subscribed", "queued")]


def test_only_the_newest_in_one_request_stays_queued(post_events, runtime):
    post_events(
        [
            referral_event("b", type="opt_out", event_time=T2),
            referral_event("c", event_time=T3),
            referral_event("a", event_time=T1),
        ]
    )
    assert [(d["event_time"], d["state"]) for d in stored_deliveries(after_planning(runtime))] == [
        (ts(T2), "superseded"),
        (ts(T3), "queued"),
        (ts(T1), "superseded"),
    ]


def test_older_event_after_a_delivered_newer_one_is_superseded(post_events, runtime):
    post_events(referral_event("out", type="opt_out", event_time=T2))
    set_state(runtime, 1, state="delivered", next_attempt_at=None)
    post_events(referral_event("in", event_time=T1))
    assert states(runtime) == [("Unsubscribed", "delivered"), ("Subscribed", "superseded")]


def test_newer_event_after_a_delivered_older_one_is_queued(post_events, runtime):
    post_events(referral_event("in", event_time=T1))
    set_state(runtime, 1, state="delivered", next_attempt_at=None)
    post_events(referral_event("out", type="opt_out", event_time=T2))
    assert states(runtime) == [("Subscribed", "delivered"), ("Unsubscribed", "queued")]


def test_in_flight_older_delivery_is_left_to_finish(post_events, runtime):
    post_events(referral_event("in", event_time=T1))
    set_state(runtime, 1, lease_owner="worker-1", lease_expires_at=now() + 60)
    post_events(referral_event("out", type="opt_out", event_time=T2))
    assert states(runtime) == [("Subscribed", "queued"), ("Unsubscribed", "queued")]


def test_expired_lease_does_not_protect_an_older_delivery(post_events, runtime):
    post_events(referral_event("in", event_time=T1))
    set_state(runtime, 1, lease_owner="dead-worker", lease_expires_at=now() - 1)
    post_events(referral_event("out", type="opt_out", event_time=T2))
    assert states(runtime) == [("Subscribed", "superseded"), ("Unsubscribed", "queued")]


def test_other_contacts_are_independent(post_events, runtime):
    post_events(referral_event("jane-out", type="opt_out", event_time=T2))
    post_events(
        [
            referral_event("john-in", event_time=T1, email="john@example.com"),
            referral_event("jane-staging", event_time=T1, environment="staging"),
        ]
    )
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["queued", "queued", "queued"]


def test_same_person_different_case_is_one_contact(post_events, runtime):
    post_events(referral_event("out", type="opt_out", event_time=T2, email="JANE@example.com"))
    post_events(referral_event("in", event_time=T1, email=" jane@EXAMPLE.com"))
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["queued", "superseded"]


def test_superseded_events_are_still_stored(post_events, runtime):
    post_events(referral_event("out", type="opt_out", event_time=T2))
    post_events(referral_event("in", event_time=T1))
    assert [e["event_id"] for e in stored_events(after_planning(runtime))] == ["out", "in"]


# -- ingest on its own --------------------------------------------------------------------------


def inbound(event_id: str, at: str, email: str = "x@example.com") -> InboundEvent:
    return InboundEvent(
        event_id, "opt_in", datetime.fromisoformat(at), "production", email, {"event_id": event_id}
    )


def planned(contact_key: str | None, skip: str | None = None) -> PlannedDelivery:
    return PlannedDelivery("contact_subscription", {"n": 1}, "key", contact_key=contact_key, skip_reason=skip)


def test_skipped_deliveries_take_no_part_in_ordering(runtime):
    ingest(runtime.engine, "extole", [(inbound("new", T2), [("p", planned("c", skip="off"))])])
    ingest(runtime.engine, "extole", [(inbound("old", T1), [("p", planned("c"))])])
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["skipped", "queued"]


def test_unordered_deliveries_are_never_superseded(runtime):
    ingest(runtime.engine, "extole", [(inbound("new", T2), [("p", planned(None))])])
    ingest(runtime.engine, "extole", [(inbound("old", T1), [("p", planned(None))])])
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["queued", "queued"]


def test_due_delay_postpones_batchable_actions(runtime, clock):
    ingest(
        runtime.engine,
        "extole",
        [(inbound("e", T1), [("p", planned(None))])],
        due_delay={"contact_subscription": 30.0},
    )
    ingest(
        runtime.engine,
        "extole",
        [(inbound("f", T1), [("p", planned(None))])],
        due_delay={"another_action": 30.0},
    )
    assert [d["next_attempt_at"] for d in stored_deliveries(after_planning(runtime))] == [
        clock.at + 30,
        clock.at,
    ]


def test_duplicates_are_counted_against_stored_and_repeated_ids(runtime):
    first = ingest(runtime.engine, "extole", [(inbound("a", T1), [])])
    again = ingest(
        runtime.engine, "extole", [(inbound("a", T1), []), (inbound("b", T1), []), (inbound("b", T1), [])]
    )
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates) == (1, 2)


def ts(value: str) -> float:
    return datetime.fromisoformat(value).astimezone(UTC).timestamp()
