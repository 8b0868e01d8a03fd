"""A superseded delivery names the delivery that won over it (`superseded_by`), whichever caller
of the consent rule decided: intake (against a stored change, against another arrival in the
same batch, or beating older pending ones), claims, replay, or a contact's mark after a purge."""

from __future__ import annotations

from sqlalchemy import update

from connector.outbox.claims import claim
from connector.outbox.replay import replay
from connector.outbox.retention import purge
from connector.outbox.tables import deliveries
from connector.testing.store import after_planning, stored_deliveries, stored_delivery, stored_events
from plugins.extole.testing import referral_event

T1, T2, T3 = "2026-11-22T05:00:00Z", "2026-11-22T06:00:00Z", "2026-11-22T07:00:00Z"


def winners(runtime) -> dict[str, tuple[str, str | None]]:
    """{event_id: (state, event_id of the winner)} of the stored deliveries."""
    event_ids = {e["id"]: e["event_id"] for e in stored_events(after_planning(runtime))}
    found = stored_deliveries(after_planning(runtime))
    event_of = {d["id"]: event_ids[d["event_pk"]] for d in found}
    return {event_of[d["id"]]: (d["state"], event_of.get(d["superseded_by"])) for d in found}


def opt(event_id: str, at: str, type="opt_in"):
    return referral_event(event_id, type=type, event_time=at)


def test_a_late_arrival_names_the_stored_change_it_lost_to(post_events, runtime):
    post_events(opt("new", T2, "opt_out"))
    post_events(opt("late", T1))
    assert winners(runtime) == {"new": ("queued", None), "late": ("superseded", "new")}


def test_an_older_pending_change_names_the_arrival_that_beat_it(post_events, runtime):
    post_events(opt("old", T1))
    post_events(opt("new", T2, "opt_out"))
    assert winners(runtime) == {"old": ("superseded", "new"), "new": ("queued", None)}


def test_arrivals_of_one_batch_name_the_newest_of_them(post_events, runtime):
    post_events([opt("b", T2, "opt_out"), opt("c", T3), opt("a", T1)])
    assert winners(runtime) == {"b": ("superseded", "c"), "c": ("queued", None), "a": ("superseded", "c")}


def test_a_claim_names_the_newer_change(engine, add, runtime):
    older = add("a", 100.0, state="retrying")
    newer = add("a", 200.0)
    claim(engine, "w1", 10, 60.0)
    assert (
        stored_delivery(after_planning(runtime), older)["state"],
        stored_delivery(after_planning(runtime), older)["superseded_by"],
    ) == ("superseded", newer)


def test_a_refused_replay_names_the_newer_change(engine, add, runtime):
    old = add("a", 100.0, state="dead", next_attempt_at=None)
    newer = add("a", 200.0, state="delivered", next_attempt_at=None)
    replay(engine, [old])
    assert (
        stored_delivery(after_planning(runtime), old)["state"],
        stored_delivery(after_planning(runtime), old)["superseded_by"],
    ) == ("superseded", newer)


def test_a_queued_replay_forgets_the_winner_it_had(engine, add, runtime):
    old = add("a", 100.0, state="superseded", next_attempt_at=None, superseded_by=99)
    replay(engine, [old])
    assert (
        stored_delivery(after_planning(runtime), old)["state"],
        stored_delivery(after_planning(runtime), old)["superseded_by"],
    ) == ("queued", None)


def test_after_a_purge_the_mark_names_the_forgotten_delivery(post_events, runtime):
    post_events(opt("new", T2, "opt_out"))
    (newer,) = stored_deliveries(after_planning(runtime))
    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).values(state="delivered", next_attempt_at=None, updated_at=0.0))
    purge(runtime.engine, {"delivered": 0.0, "dead": 7 * 86400.0, "replay_window": 0.0})
    assert stored_deliveries(after_planning(runtime)) == []
    post_events(opt("late", T1))
    (late,) = stored_deliveries(after_planning(runtime))
    assert (late["state"], late["superseded_by"]) == ("superseded", newer["id"])
    assert late["reason"] == "a newer event for this contact was received before (remembered after its purge)"
