"""Listrak lists → Segment audiences end to end (`membership: true`): the Listrak sandbox with a
list of subscribers, `connector worker` processes polling it every second (the first SIGKILLed
mid-backfill), contacts subscribing and unsubscribing in Listrak between polls and during one,
and the Segment look-alike recording every identify call — separate processes over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.testing import StoreReader, example_stack, wait_until
from plugins.listrak.testing import ACTIVITY_FLOW
from plugins.listrak_activity.events import parse_time
from plugins.listrak_activity.testing import (
    contact_change,
    membership_message_ids,
    seed,
    source_file,
    subscribers_seed,
)

pytestmark = pytest.mark.e2e

CONTACTS, MESSAGES = "GET /List/<listId>/Contact", "GET /List/<listId>/Message"
TRAIT = "Listrak_list_12345"
SUBSCRIBERS = 12_000  # three pages of Listrak's 5,000


@pytest.fixture
def stack(tmp_path):
    stack = example_stack(
        tmp_path / "stack",
        settings={
            "worker": {"batch_window": "200ms", "lease": "12s", "http_timeout": "4s"},
            "retry_schedule": ["200ms", "500ms", "1s"],
        },
        extra_files=source_file(poll_interval="1s", membership=True),
        keep=ACTIVITY_FLOW,
    )
    try:
        yield stack.start(workers=0)
    finally:
        stack.stop()


def change(stack, email: str, state: str, at: datetime, user_id: str | None = None) -> None:
    stack.part("listrak").request(
        "POST", "/_sandbox/contacts", json=contact_change(email, state, at, user_id)
    ).raise_for_status()


def latency(stack, ms: int) -> None:
    stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": ms}).raise_for_status()


def reads(stack, route: str = CONTACTS) -> int:
    return stack.part("listrak").request_counts()["per_route"].get(route, 0)


def identified(stack) -> int:
    """Identify calls the look-alike received so far."""
    return stack.part("segment").state()["calls"]["by_type"].get("identify", 0)


def changes_of(calls: list[dict]) -> list[tuple]:
    return [(c["anonymousId"], c["traits"][TRAIT], c["timestamp"]) for c in calls]


def between_pages(store: StoreReader, stack) -> bool:
    """Mid-backfill with nothing on its way to Segment: every stored change delivered, and the
    next page of contacts asked for (the sandbox holds it back)."""
    stored = store.event_count()
    if stored not in (5000, 10_000) or store.delivery_states() != {"delivered": stored}:
        return False
    return reads(stack) > stored // 5000


def test_list_membership_reaches_segment_once_per_change_and_ends_as_listrak_stands(stack):
    now = datetime.now(UTC).replace(microsecond=0)
    members = subscribers_seed(SUBSCRIBERS, now - timedelta(days=1), with_user_id=9000)
    seed(stack, members)
    change(stack, "gone@example.com", "Subscribed", now - timedelta(days=40))
    change(stack, "gone@example.com", "Unsubscribed", now - timedelta(days=2))  # within lookback
    change(stack, "long.gone@example.com", "Subscribed", now - timedelta(days=40))
    change(stack, "long.gone@example.com", "Unsubscribed", now - timedelta(days=10))  # before it

    # The first worker dies between two pages of the backfill; the second resumes the poll.
    latency(stack, 1500)
    first = stack.add_worker()
    store = StoreReader(stack.database_url)
    try:
        wait_until(lambda: between_pages(store, stack), timeout=90, interval=0.05, message="mid-backfill")
        stack.kill_worker(first)
    finally:
        store.close()
    latency(stack, 0)
    stack.add_worker()
    backfill = membership_message_ids(members)
    wait_until(
        lambda: backfill <= set(stack.part("segment").state()["message_ids"]),
        timeout=120,
        interval=0.5,
        message="every subscriber at the look-alike",
    )

    # Between polls: a new subscriber, an unsubscribe, a contact coming back.
    moment = datetime.now(UTC)
    change(stack, "new@example.com", "Subscribed", moment, user_id="u-new")
    change(stack, "member5@example.com", "Unsubscribed", moment)
    change(stack, "gone@example.com", "Subscribed", moment)
    wait_until(lambda: identified(stack) >= SUBSCRIBERS + 4, timeout=30, message="the changes between polls")

    # During a poll, once it read the subscribes of its window and while it reads the
    # unsubscribes: a subscribe Listrak dates before the poll began (its clock behind ours, or
    # a change committed late), which only the next window's overlap reads, and an unsubscribe.
    latency(stack, 1500)
    polled = reads(stack, MESSAGES)  # each poll reads subscribes, unsubscribes, then messages
    wait_until(lambda: reads(stack, MESSAGES) > polled, timeout=30, message="a poll's messages read")
    asked = reads(stack)
    wait_until(lambda: reads(stack) >= asked + 2, timeout=30, message="the next poll reading unsubscribes")
    during = datetime.now(UTC)
    change(stack, "late@example.com", "Subscribed", during - timedelta(seconds=3))
    change(stack, "member6@example.com", "Unsubscribed", during)
    latency(stack, 0)
    wait_until(lambda: identified(stack) >= SUBSCRIBERS + 6, timeout=30, message="the changes during a poll")
    asked = reads(stack)
    wait_until(lambda: reads(stack) >= asked + 4, timeout=30, message="two more polls")

    calls = stack.part("segment").calls(type="identify")
    assert stack.part("segment").state()["duplicates"] == 0
    assert sorted(changes_of(calls)) == sorted(
        [(m["emailAddress"], True, m["subscribeDate"]) for m in members["contacts"]]
        + [
            ("gone@example.com", False, iso(now - timedelta(days=2))),
            ("new@example.com", True, iso(moment)),
            ("member5@example.com", False, iso(moment)),
            ("gone@example.com", True, iso(moment)),
            ("late@example.com", True, iso(during - timedelta(seconds=3))),
            ("member6@example.com", False, iso(during)),
        ]
    )
    assert next(c for c in calls if c["anonymousId"] == "new@example.com")["userId"] == "u-new"

    # Each contact's last identify says where it stands in Listrak, from the date it did.
    last = {c["anonymousId"]: c for c in calls}
    book = stack.part("listrak").state()["lists"]["12345"]["contacts"]
    assert set(last) == set(book) - {"long.gone@example.com"}
    for email, call in last.items():
        contact = book[email]
        subscribed = contact["subscriptionState"] == "Subscribed"
        if subscribed:
            latest = contact.get("resubscribeDate") or contact["subscribeDate"]
        else:
            latest = contact["unsubscribeDate"]
        assert (call["traits"][TRAIT], parse_time(call["timestamp"])) == (subscribed, parse_time(latest)), (
            email
        )
    assert stack.delivery_states() == {"delivered": len(calls)}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
