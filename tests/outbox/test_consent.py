"""The consent-order rule (connector/outbox/consent.py): `decide` as tables of cases, the store
statements it is read and applied through (contacts.py), and each caller asking it.

How each caller applies the rule end to end is tested beside the caller:
intake in test_intake.py (`test_older_event_arriving_late_is_superseded`,
`test_newer_event_supersedes_a_queued_older_one`, `test_in_flight_older_delivery_is_left_to_finish`),
claims in test_claims.py (`test_due_older_delivery_is_superseded_when_a_newer_one_exists`,
`test_one_delivery_per_contact_per_claim`), replay in test_replay.py
(`test_replay_of_an_opt_in_older_than_a_delivered_opt_out_is_superseded`)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from connector.outbox import consent, contacts
from connector.outbox.claims import claim
from connector.outbox.consent import Change, Decision, Reason, Superseded, decide
from connector.outbox.contacts import live_changes, supersede
from connector.outbox.replay import replay
from connector.outbox.tables import deliveries
from connector.testing.store import after_planning, stored_deliveries, stored_delivery
from plugins.extole.testing import referral_event

AT = 1000.0  # "now" for in-flight checks


def change(
    id: int, event_time: float, state: str = "queued", lease_expires_at: float | None = None
) -> Change:
    return Change(id, "c", event_time, state, lease_expires_at)


ME = change(5, 100.0)
MARK = Change(4, "c", 100.0, "delivered", None, remembered=True)
PURGED_MARK = Change(4, "c", 100.0, "delivered", None, remembered=True, purged=True)

GOES_OR_NOT = [
    # (case, stored changes, the change ME loses to, or None when ME goes)
    ("no other change", [], None),
    ("an older one", [change(1, 50.0)], None),
    ("a newer one", [change(1, 150.0)], 1),
    ("a newer delivered one", [change(1, 150.0, "delivered")], 1),
    ("a newer one in flight", [change(9, 150.0, lease_expires_at=AT + 60)], 9),
    ("equal time, earlier id", [change(4, 100.0)], None),
    ("equal time, later id", [change(6, 100.0)], 6),
    ("equal time, a remembered mark still stored", [MARK], None),
    ("equal time, a purged mark", [PURGED_MARK], 4),  # with NEWER_REMEMBERED, below
    ("older purged mark", [Change(4, "c", 99.0, "delivered", None, True, True)], None),
    ("itself among the stored", [ME], None),
    ("older and newer", [change(1, 50.0), change(2, 150.0, "retrying")], 2),
]


@pytest.mark.parametrize(("stored", "winner"), [c[1:] for c in GOES_OR_NOT], ids=[c[0] for c in GOES_OR_NOT])
def test_a_change_goes_unless_a_live_change_is_newer(stored, winner):
    decision = decide(stored, [ME], AT)
    if winner is None:
        assert decision.goes == ME
        assert ME.id not in [lost.id for lost in decision.superseded]
    else:
        reason = Reason.NEWER_REMEMBERED if winner == PURGED_MARK.id else Reason.NEWER_LIVE
        assert decision.goes is None
        assert decision.superseded == (Superseded(ME.id, winner, reason),)


def test_a_change_that_loses_to_the_contacts_mark_says_so():
    assert decide([PURGED_MARK], [ME], AT).superseded == (Superseded(ME.id, 4, Reason.NEWER_REMEMBERED),)


LOSE_TO_IT = [
    # (case, stored changes, ids that lose to ME now)
    ("older queued", [change(1, 50.0)], [1]),
    ("older retrying and paused", [change(1, 50.0, "retrying"), change(2, 60.0, "paused")], [1, 2]),
    ("older delivered: never superseded", [change(1, 50.0, "delivered")], []),
    ("older delivered, lease left over", [change(1, 50.0, "delivered", lease_expires_at=AT + 9)], []),
    ("older in flight: left to finish", [change(1, 50.0, lease_expires_at=AT + 60)], []),
    ("older whose lease ends this instant is still in flight", [change(1, 50.0, lease_expires_at=AT)], []),
    ("older whose lease ran out", [change(1, 50.0, lease_expires_at=AT - 1)], [1]),
    ("equal time, earlier id", [change(4, 100.0)], [4]),
    ("itself", [ME], []),
    (
        "a mix",
        [change(1, 50.0), change(2, 60.0, "delivered"), change(3, 70.0, lease_expires_at=AT)],
        [1],
    ),
]


@pytest.mark.parametrize(("stored", "expected"), [c[1:] for c in LOSE_TO_IT], ids=[c[0] for c in LOSE_TO_IT])
def test_older_pending_changes_lose_to_the_one_that_goes(stored, expected):
    decision = decide(stored, [ME], AT)
    assert decision.goes == ME
    assert decision.superseded == tuple(Superseded(id, ME.id, Reason.NEWER_ARRIVED) for id in expected)


def test_a_change_in_flight_makes_the_one_that_goes_wait():
    assert decide([change(1, 50.0, lease_expires_at=AT + 60)], [ME], AT).waits
    assert not decide([change(1, 50.0, lease_expires_at=AT - 1)], [ME], AT).waits
    assert not decide([change(1, 150.0, lease_expires_at=AT + 60)], [ME], AT).waits  # ME loses anyway


def test_of_several_arriving_changes_the_newest_goes_and_beats_the_others():
    early, late = change(50, 90.0), change(51, 110.0)
    assert decide([change(1, 50.0)], [early, ME, late], AT) == Decision(
        goes=late,
        superseded=(
            Superseded(early.id, late.id, Reason.NEWER_LIVE),
            Superseded(ME.id, late.id, Reason.NEWER_LIVE),
            Superseded(1, late.id, Reason.NEWER_ARRIVED),
        ),
    )


# -- the store side ------------------------------------------------------------------------


def test_live_changes_are_pending_and_delivered_ones_of_the_asked_contacts(engine, add):
    live = {add("a", 1.0, state=state): state for state in ("queued", "retrying", "paused", "delivered")}
    for state in ("skipped", "superseded", "dead"):
        add("a", 2.0, state=state)
    add(None, 3.0)
    other = add("b", 4.0)
    with engine.connect() as conn:
        found = live_changes(conn, ["a", "b", "a"])
    assert {c.id: c.state for c in found["a"]} == live
    assert [c.id for c in found["b"]] == [other]


def test_live_changes_are_read_in_pages(engine, add, monkeypatch):
    monkeypatch.setattr(contacts, "_PAGE", 2)
    made = {f"k{i}": add(f"k{i}") for i in range(5)}
    with engine.connect() as conn:
        found = live_changes(conn, list(made))
    assert {key: [c.id for c in changes] for key, changes in found.items()} == {
        key: [delivery] for key, delivery in made.items()
    }


def test_supersede_leaves_in_flight_and_finished_deliveries_alone(engine, add, runtime, clock):
    queued = add("a")
    expired = add("a", lease_owner="w", lease_expires_at=clock.at - 1)
    in_flight = add("a", lease_owner="w", lease_expires_at=clock.at + 60)
    delivered = add("a", state="delivered", next_attempt_at=None)
    winner = add("a", event_time=200.0)
    lost = [Superseded(id, winner, Reason.NEWER_ARRIVED) for id in (queued, expired, in_flight, delivered)]
    with engine.begin() as conn:
        changed = supersede(conn, lost, clock.at)
    assert changed == 2
    states = {
        d["id"]: (d["state"], d["reason"], d["superseded_by"], d["next_attempt_at"])
        for d in stored_deliveries(after_planning(runtime))
        if d["id"] != winner
    }
    assert states == {
        queued: ("superseded", Reason.NEWER_ARRIVED, winner, None),
        expired: ("superseded", Reason.NEWER_ARRIVED, winner, None),
        in_flight: ("queued", None, None, clock.at - 1),
        delivered: ("delivered", None, None, None),
    }


# -- every caller asks the one rule ---------------------------------------------------------


@pytest.fixture
def asked(monkeypatch):
    """Records each (arriving ids, stored ids) the rule is asked about, answering as it would."""
    calls = []

    def spy(stored, arriving, at):
        calls.append((sorted(c.id for c in arriving), sorted(c.id for c in stored)))
        return decide(stored, arriving, at)

    monkeypatch.setattr(consent, "decide", spy)
    return calls


def test_intake_asks_the_rule(post_events, runtime, asked):
    post_events(referral_event("new", type="opt_out", event_time="2026-11-22T06:00:00Z"))
    post_events(referral_event("old", event_time="2026-11-22T05:00:00Z"))
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["queued", "superseded"]
    assert [stored for _, stored in asked] == [[], [1]]  # stored delivery 1 is newer


def test_claim_asks_the_rule(engine, add, runtime, asked):
    older = add("a", 100.0, state="retrying")
    newer = add("a", 200.0)
    (claimed,) = claim(engine, "w1", 10, 60.0)
    assert claimed.id == newer
    assert stored_delivery(after_planning(runtime), older)["state"] == "superseded"
    # both read in one go; the older one's loss is written once the claim has decided
    assert asked == [([older], [older, newer]), ([newer], [older, newer])]


def test_replay_asks_the_rule(engine, add, runtime, asked):
    old = add("a", 100.0, state="dead", next_attempt_at=None)
    newer = add("a", 200.0, state="delivered", next_attempt_at=None)
    assert replay(engine, [old]) == {"queued": 0, "superseded": 1, "unchanged": 0}
    assert asked == [([old], [newer])]
    with engine.begin() as conn:  # once the newer change no longer counts, the old one goes
        conn.execute(update(deliveries).where(deliveries.c.id == newer).values(state="skipped"))
    assert replay(engine, [old]) == {"queued": 1, "superseded": 0, "unchanged": 0}
