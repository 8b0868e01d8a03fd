"""List membership (`membership: true`): the first poll's backfill, each later poll's window of
subscribes and unsubscribes (its overlap and its edges), the identify of each change, resuming a
poll cut short, and what reaches the store — with the Listrak sandbox behind requests_mock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.delivery.scheduler import Scheduler
from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_deliveries
from plugins.listrak_activity.testing import bulk_seed, message_seed
from plugins.segment.testing import TRACKING_API
from tests.config_files import update_yaml
from tests.plugins.conftest import POLLED_AT as NOW

CONTACTS = "GET /List/<listId>/Contact"
LATER = NOW + timedelta(minutes=10)  # the second poll


def changes(pages) -> list[tuple]:
    """(email, trait, userId, timestamp) of each membership identify, in order."""
    return [
        (e.email, e.payload["traits"]["Listrak_list_12345"], e.payload.get("userId"), e.payload["timestamp"])
        for page in pages
        for e in page.events
        if e.type == "membership"
    ]


def contact_reads(requests_mock) -> list[dict]:
    """The query of each Contact collection read, its values unlisted."""
    return [
        {k: v[0] for k, v in r.qs.items()}
        for r in requests_mock.request_history
        if r.path.endswith("/contact")
    ]


@pytest.fixture
def members(listrak):
    """a subscribed 30 days ago (u-1), b 2 days ago; c unsubscribed 3 days ago, d 10 days ago
    (before the 7-day lookback)."""
    listrak.change("a@example.com", "Subscribed", NOW - timedelta(days=30), user_id="u-1")
    listrak.change("b@example.com", "Subscribed", NOW - timedelta(days=2))
    listrak.change("c@example.com", "Subscribed", NOW - timedelta(days=40))
    listrak.change("c@example.com", "Unsubscribed", NOW - timedelta(days=3))
    listrak.change("d@example.com", "Subscribed", NOW - timedelta(days=40))
    listrak.change("d@example.com", "Unsubscribed", NOW - timedelta(days=10))
    return listrak


# -- the first poll ------------------------------------------------------------------------------
def test_the_first_poll_sends_every_subscriber_and_the_unsubscribes_within_lookback(members, poll):
    assert changes(poll(membership=True)) == [
        ("a@example.com", True, "u-1", "2026-10-23T12:00:00.000Z"),
        ("b@example.com", True, None, "2026-11-20T12:00:00.000Z"),
        ("c@example.com", False, None, "2026-11-19T12:00:00.000Z"),
    ]


def test_a_change_is_an_identify_with_the_list_trait_and_a_message_id_from_list_email_state_date(
    members, poll
):
    first = next(e for p in poll(membership=True) for e in p.events)
    assert (first.type, first.event_time, first.environment) == (
        "membership",
        NOW - timedelta(days=30),
        "production",
    )
    assert first.payload == {
        "type": "identify",
        # uuid5 over (list, email, state, date): changing it would send every change again
        "messageId": "77cd184e-296a-5620-ae02-0f0ea7188ed7",
        "timestamp": "2026-10-23T12:00:00.000Z",
        "anonymousId": "a@example.com",
        "userId": "u-1",
        "traits": {"email": "a@example.com", "Listrak_list_12345": True},
    }


def test_the_first_poll_reads_subscribers_in_pages_of_5000_then_unsubscribes_by_date(
    listrak, poll, requests_mock
):
    listrak.seed(**{**bulk_seed(501, 12_000, NOW, with_user_id=0), "messages": [], "rows": []})
    pages = poll(membership=True)
    assert [p.rows_read for p in pages if p.events] == [5000, 5000, 2000]
    first, *_, unsubscribes = contact_reads(requests_mock)
    assert first == {
        "subscriptionstate": "subscribed",
        "segmentationfieldids": "1006",
        "cursor": "start",
        "count": "5000",
    }
    assert {k: unsubscribes[k] for k in ("subscriptionstate", "startdate", "enddate")} == {
        "subscriptionstate": "unsubscribed",
        "startdate": "2026-11-15t12:00:00z",
        "enddate": "2026-11-22t12:00:00z",
    }
    assert listrak.routes()[CONTACTS] == 4


# -- later polls: windows ------------------------------------------------------------------------
def test_a_later_poll_reads_from_five_minutes_before_the_last_windows_end(members, poll, requests_mock):
    cursor = poll(membership=True)[-1].cursor
    requests_mock.reset_mock()
    poll(cursor, at=LATER, membership=True)
    subscribed, unsubscribed = contact_reads(requests_mock)
    window = {"startdate": "2026-11-22t11:55:00z", "enddate": "2026-11-22t12:10:00z"}
    assert {k: subscribed.get(k) for k in (*window, "useoriginalsubscribedate")} == {
        **window,
        "useoriginalsubscribedate": "false",  # a resubscribe's date counts
    }
    assert {k: unsubscribed.get(k) for k in (*window, "useoriginalsubscribedate")} == {
        **window,
        "useoriginalsubscribedate": None,
    }


def test_subscribes_unsubscribes_and_resubscribes_between_polls_are_one_identify_each(members, poll):
    cursor = poll(membership=True)[-1].cursor
    members.change("e@example.com", "Subscribed", NOW + timedelta(minutes=3), user_id="u-5")
    members.change("a@example.com", "Unsubscribed", NOW + timedelta(minutes=4))
    members.change("c@example.com", "Subscribed", NOW + timedelta(minutes=5))  # comes back
    assert changes(poll(cursor, at=LATER, membership=True)) == [
        ("c@example.com", True, None, "2026-11-22T12:05:00.000Z"),
        ("e@example.com", True, "u-5", "2026-11-22T12:03:00.000Z"),
        ("a@example.com", False, "u-1", "2026-11-22T12:04:00.000Z"),
    ]


def test_a_change_read_again_in_the_overlap_has_the_same_message_id(members, poll):
    cursor = poll(membership=True)[-1].cursor
    members.change("e@example.com", "Subscribed", NOW + timedelta(minutes=8))
    second = poll(cursor, at=LATER, membership=True)
    third = poll(second[-1].cursor, at=LATER + timedelta(minutes=1), membership=True)
    assert [e.event_id for p in third for e in p.events] == [e.event_id for p in second for e in p.events]


def test_changes_at_a_windows_end_are_read_once_it_is_behind(members, poll):
    cursor = poll(membership=True)[-1].cursor
    members.change("e@example.com", "Subscribed", LATER)  # endDate is exclusive for subscribes
    members.change("b@example.com", "Unsubscribed", LATER)  # and inclusive for unsubscribes
    second = poll(cursor, at=LATER, membership=True)
    assert changes(second) == [("b@example.com", False, None, "2026-11-22T12:10:00.000Z")]
    third = poll(second[-1].cursor, at=LATER + timedelta(minutes=1), membership=True)
    assert changes(third) == [
        ("e@example.com", True, None, "2026-11-22T12:10:00.000Z"),
        ("b@example.com", False, None, "2026-11-22T12:10:00.000Z"),  # the same messageId again
    ]


def test_a_change_listrak_dates_before_the_last_window_end_is_read_by_the_overlap(members, poll):
    """Listrak's clock behind ours, or a change committed while the last window was read."""
    second = poll(poll(membership=True)[-1].cursor, at=LATER, membership=True)
    members.change("late@example.com", "Subscribed", LATER - timedelta(minutes=4))
    third = poll(second[-1].cursor, at=LATER + timedelta(seconds=30), membership=True)
    assert changes(third) == [("late@example.com", True, None, "2026-11-22T12:06:00.000Z")]


def test_a_subscribe_and_unsubscribe_between_two_polls_read_as_the_unsubscribe(members, poll):
    cursor = poll(membership=True)[-1].cursor
    members.change("f@example.com", "Subscribed", NOW + timedelta(minutes=1))
    members.change("f@example.com", "Unsubscribed", NOW + timedelta(minutes=2))
    assert changes(poll(cursor, at=LATER, membership=True)) == [
        ("f@example.com", False, None, "2026-11-22T12:02:00.000Z")
    ]


# -- resuming, the cursor, the summary -----------------------------------------------------------
def test_a_backfill_cut_short_resumes_after_its_last_stored_page(listrak, poll, requests_mock):
    listrak.seed(**{**bulk_seed(501, 12_000, NOW, with_user_id=0), "messages": [], "rows": []})
    first_page = next(poll.iterate(membership=True))
    assert first_page.cursor["membership"]["12345"]["window"]["page"] is not None
    poll.restart()  # another worker takes over: nothing remembered
    requests_mock.reset_mock()
    resumed = poll(first_page.cursor, membership=True)
    assert [p.rows_read for p in resumed if p.events] == [5000, 2000]
    emails = {e.email for p in [first_page, *resumed] for e in p.events}
    assert len(emails) == 12_000
    assert contact_reads(requests_mock)[0]["cursor"] != "start"


def test_an_expired_page_cursor_reads_that_state_again(members, poll):
    window = {"start": None, "end": "2026-11-22T12:00:00Z", "state": "Subscribed", "page": "bm9wZQ"}
    cursor = {"membership": {"12345": {"window": window}}}
    assert [email for email, *_ in changes(poll(cursor, membership=True))] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


def test_each_page_says_what_the_poll_read_and_ends_with_the_lists_watermark(members, poll):
    pages = poll(membership=True)
    assert pages[-1].summary == (
        "list 12345: 2 subscribed now, 1 unsubscribed since 2026-11-15T12:00:00Z (first poll);"
        " activity: 0 message(s) read"
    )
    assert pages[-1].cursor["membership"] == {"12345": {"until": "2026-11-22T12:00:00Z"}}
    later = poll(pages[-1].cursor, at=LATER, membership=True)
    assert later[-1].summary.startswith(
        "list 12345: 0 subscribed, 0 unsubscribed from 2026-11-22T11:55:00Z to 2026-11-22T12:10:00Z;"
    )


def test_membership_turned_off_forgets_its_place_so_turned_on_it_reads_the_lists_anew(members, poll):
    cursor = poll(membership=True)[-1].cursor
    off = poll(cursor, at=LATER)
    assert "membership" not in off[-1].cursor
    assert changes(off) == []
    assert len(changes(poll(off[-1].cursor, at=LATER, membership=True))) == 3


# -- activity beside membership ------------------------------------------------------------------
def test_with_membership_the_activity_identify_carries_no_list_trait(members, poll):
    members.seed(
        messages=[message_seed(501, NOW - timedelta(days=1))],
        rows=[{"messageId": 501, "emailAddress": "a@example.com"}],
    )
    identify, sent = [e.payload for p in poll(membership=True) for e in p.events if e.type != "membership"]
    assert identify["traits"] == {"email": "a@example.com"}
    assert identify["userId"] == "u-1"
    assert sent["context"] == {"traits": {"email": "a@example.com"}}


# -- through the scheduler, the store and the segment destination --------------------------------
@pytest.fixture
def scheduler(membership_config, make_runtime, clock, listrak):
    update_yaml(membership_config / "connector.yaml", set={"worker.batch_window": "0s"})
    runtime = make_runtime()
    return Scheduler(runtime, "w1")


def test_each_change_is_stored_once_and_ordered_per_contact_and_list(scheduler, listrak, clock):
    at = NOW.fromtimestamp(clock.at, NOW.tzinfo)
    listrak.change("a@example.com", "Subscribed", at - timedelta(days=1))
    assert scheduler.poll("listrak-activity").accepted == 1
    clock.advance(60)
    listrak.change("b@example.com", "Subscribed", at + timedelta(seconds=30))
    again = scheduler.poll("listrak-activity")
    assert (again.ok, again.accepted) == (True, 1)  # b; a was not read again
    clock.advance(60)
    assert scheduler.poll("listrak-activity").accepted == 0  # b read again in the overlap: dropped
    assert [d["contact_key"] for d in stored_deliveries(after_planning(scheduler.runtime))] == [
        "segment|production|a@example.com|Listrak_list_12345",
        "segment|production|b@example.com|Listrak_list_12345",
    ]


def test_an_unsubscribe_read_while_the_subscribe_still_waits_to_be_sent_wins(
    scheduler, listrak, clock, requests_mock
):
    at = NOW.fromtimestamp(clock.at, NOW.tzinfo)
    batch = requests_mock.post(f"{TRACKING_API}/v1/batch", status_code=503)
    listrak.change("a@example.com", "Subscribed", at - timedelta(days=1))
    scheduler.poll("listrak-activity")
    Worker(scheduler.runtime).run_once()  # Segment is down: the `true` waits to be retried
    clock.advance(60)
    listrak.change("a@example.com", "Unsubscribed", at + timedelta(seconds=30))
    scheduler.poll("listrak-activity")
    batch = requests_mock.post(f"{TRACKING_API}/v1/batch", json={"success": True})
    clock.advance(3600)
    Worker(scheduler.runtime).run_once()
    assert [
        [e["traits"]["Listrak_list_12345"] for e in r.json()["batch"]] for r in batch.request_history
    ] == [[False]]
    stored = stored_deliveries(after_planning(scheduler.runtime))
    assert [d["state"] for d in stored] == ["superseded", "delivered"]
