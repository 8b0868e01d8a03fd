"""The consent-order rule (connector/outbox/consent.py) as tables of cases, its two store
statements, and each caller asking it.

How each caller applies the rule end to end is tested beside the caller:
intake in test_intake.py (`test_older_event_arriving_late_is_superseded`,
`test_newer_event_supersedes_a_queued_older_one`, `test_in_flight_older_delivery_is_left_to_finish`),
claims in test_claims.py (`test_due_older_delivery_is_superseded_when_a_newer_one_exists`,
`test_one_delivery_per_contact_per_claim`), replay in test_replay.py
(`test_replay_of_an_opt_in_older_than_a_delivered_opt_out_is_superseded`)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from connector.outbox import consent
from connector.outbox.claims import claim
from connector.outbox.consent import (
    Change,
    is_newest,
    live_changes,
    newer_than,
    older_pending,
    supersede,
)
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

IS_NEWEST = [
    # (case, others, is ME the newest?)
    ("no other change", [], True),
    ("an older one", [change(1, 50.0)], True),
    ("a newer one", [change(1, 150.0)], False),
    ("a newer delivered one", [change(1, 150.0, "delivered")], False),
    ("a newer one in flight", [change(9, 150.0, lease_expires_at=AT + 60)], False),
    ("equal time, earlier id", [change(4, 100.0)], True),
    ("equal time, later id", [change(6, 100.0)], False),
    ("equal time, a remembered mark still stored", [Change(4, "c", 100.0, "delivered", None, True)], True),
    ("equal time, a purged mark", [Change(4, "c", 100.0, "delivered", None, True, True)], False),
    ("older purged mark", [Change(4, "c", 99.0, "delivered", None, True, True)], True),
    ("itself among the others", [ME], True),
    ("older and newer", [change(1, 50.0), change(2, 150.0, "retrying")], False),
]


@pytest.mark.parametrize(("others", "expected"), [c[1:] for c in IS_NEWEST], ids=[c[0] for c in IS_NEWEST])
def test_is_newest(others, expected):
    assert is_newest(ME, others) is expected


OLDER_PENDING = [
    # (case, others, ids that lose to ME now)
    ("older queued", [change(1, 50.0)], [1]),
    ("older retrying and paused", [change(1, 50.0, "retrying"), change(2, 60.0, "paused")], [1, 2]),
    ("older delivered: never superseded", [change(1, 50.0, "delivered")], []),
    ("older delivered, lease left over", [change(1, 50.0, "delivered", lease_expires_at=AT + 9)], []),
    ("older in flight: left to finish", [change(1, 50.0, lease_expires_at=AT + 60)], []),
    ("older whose lease ends this instant is still in flight", [change(1, 50.0, lease_expires_at=AT)], []),
    ("older whose lease ran out", [change(1, 50.0, lease_expires_at=AT - 1)], [1]),
    ("newer queued", [change(1, 150.0)], []),
    ("equal time, earlier id", [change(4, 100.0)], [4]),
    ("equal time, later id", [change(6, 100.0)], []),
    ("itself", [ME], []),
    (
        "a mix",
        [
            change(1, 50.0),
            change(2, 60.0, "delivered"),
            change(3, 70.0, lease_expires_at=AT),
            change(7, 200.0),
        ],
        [1],
    ),
]


@pytest.mark.parametrize(
    ("others", "expected"), [c[1:] for c in OLDER_PENDING], ids=[c[0] for c in OLDER_PENDING]
)
def test_older_pending(others, expected):
    assert older_pending(ME, others, AT) == expected


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
    monkeypatch.setattr(consent, "_PAGE", 2)
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
    with engine.begin() as conn:
        changed = supersede(conn, [queued, expired, in_flight, delivered], clock.at, "lost")
    assert changed == 2
    states = {
        d["id"]: (d["state"], d["reason"], d["next_attempt_at"])
        for d in stored_deliveries(after_planning(runtime))
    }
    assert states == {
        queued: ("superseded", "lost", None),
        expired: ("superseded", "lost", None),
        in_flight: ("queued", None, clock.at - 1),
        delivered: ("delivered", None, None),
    }


# -- every caller asks the one rule ---------------------------------------------------------


@pytest.fixture
def asked(monkeypatch):
    """Records each (change id, other ids) the rule is asked about, answering as it would."""
    calls = []

    def spy(change, others):
        calls.append((change.id, sorted(o.id for o in others)))
        return newer_than(change, others)

    monkeypatch.setattr(consent, "newer_than", spy)
    return calls


def test_intake_asks_the_rule(post_events, runtime, asked):
    post_events(referral_event("new", type="opt_out", event_time="2026-11-22T06:00:00Z"))
    post_events(referral_event("old", event_time="2026-11-22T05:00:00Z"))
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["queued", "superseded"]
    (first, first_others), (second, second_others) = asked
    assert (first_others, second_others) == ([first], [1, second])  # stored delivery 1 is newer


def test_claim_asks_the_rule(engine, add, runtime, asked):
    older = add("a", 100.0, state="retrying")
    newer = add("a", 200.0)
    (claimed,) = claim(engine, "w1", 10, 60.0)
    assert claimed.id == newer
    assert stored_delivery(after_planning(runtime), older)["state"] == "superseded"
    assert asked == [(older, [newer]), (newer, [older])]


def test_replay_asks_the_rule(engine, add, runtime, asked):
    old = add("a", 100.0, state="dead", next_attempt_at=None)
    newer = add("a", 200.0, state="delivered", next_attempt_at=None)
    assert replay(engine, [old]) == {"queued": 0, "superseded": 1, "unchanged": 0}
    assert asked == [(old, [newer])]
    with engine.begin() as conn:  # once the newer change no longer counts, the old one goes
        conn.execute(update(deliveries).where(deliveries.c.id == newer).values(state="skipped"))
    assert replay(engine, [old]) == {"queued": 1, "superseded": 0, "unchanged": 0}
