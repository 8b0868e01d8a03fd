"""How the Listrak activity source reads: Activity pages of 5,000 stored one by one with the
cursor, contacts' userIds one by one or in pages, Listrak's 429 waited out or handed back,
failures, resuming a round, and what a poll adds to the store (nothing old, all that is new)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connector.cli import main as cli
from connector.contract import HttpResult, PollFailed
from connector.delivery.scheduler import Scheduler
from connector.testing.store import after_planning, stored_deliveries, stored_events
from plugins.listrak_activity.reading import Reader
from plugins.listrak_activity.testing import bulk_seed, message_seed, when
from tests.plugins.conftest import POLLED_AT as NOW

SENT = NOW - timedelta(days=1)
ACTIVITY = "GET /List/<listId>/Message/<messageId>/Activity"
CONTACT = "GET /List/<listId>/Contact/<contactIdentifier>"
CONTACTS = "GET /List/<listId>/Contact"
CLICKERS = "GET /List/<listId>/Message/<messageId>/Link/<messageLinkId>/Clicker"


def seed_rows(listrak, rows: int, with_user_id: int | None = None, message_id: int = 501, first: int = 0):
    listrak.seed(
        **bulk_seed(message_id, rows, SENT, rows if with_user_id is None else with_user_id, first=first)
    )


def contact_queries(requests_mock) -> list[str]:
    return [
        r.qs.get("subscriptionstate", ["-"])[0]
        for r in requests_mock.request_history
        if r.path.endswith("/contact")
    ]


# -- pages and cursor -----------------------------------------------------------------------------
def test_6000_rows_are_read_in_two_activity_pages_each_stored_with_its_cursor(listrak, poll):
    seed_rows(listrak, 6000)
    pages = poll()
    assert [(p.rows_read, len(p.events)) for p in pages] == [(5000, 11667), (1000, 2333), (0, 0), (0, 0)]
    assert listrak.routes()[ACTIVITY] == 2
    middle, last = pages[0].cursor["round"], pages[-1].cursor
    assert middle["at"]["message"] == 501
    assert middle["at"]["activity"] is not None
    assert middle["done"] == {}
    assert pages[-2].cursor["round"]["done"] == {"12345": [501]}
    assert last == {"completed": "2026-11-22T12:00:00.000Z"}
    assert len({e.event_id for p in pages for e in p.events}) == 14000


def test_a_round_cut_short_resumes_at_the_activity_page_after_its_last_stored_page(listrak, poll):
    seed_rows(listrak, 6000)
    first_page = next(poll.iterate())
    listrak.reset_counts()
    poll.restart()  # another worker takes over: nothing remembered
    resumed = poll(first_page.cursor)
    assert [p.rows_read for p in resumed] == [1000, 0, 0]
    assert listrak.routes()[ACTIVITY] == 1


def test_messages_a_resumed_round_finished_are_not_read_again(listrak, poll, requests_mock):
    listrak.seed(messages=[message_seed(501, SENT), message_seed(502, SENT + timedelta(hours=1))])
    cursor = {"round": {"started": "2026-11-22T12:00:00.000Z", "done": {"12345": [501]}}}
    poll(cursor)
    read = [r.path for r in requests_mock.request_history if r.path.endswith("/activity")]
    assert read == ["/email/v1/list/12345/message/502/activity"]


def test_an_expired_page_cursor_reads_the_message_from_the_start(listrak, poll):
    seed_rows(listrak, 10)
    cursor = {
        "round": {
            "started": "2026-11-22T12:00:00.000Z",
            "done": {},
            "at": {"list": 12345, "message": 501, "activity": "bm9wZQ"},
        }
    }
    pages = poll(cursor)
    assert pages[0].rows_read == 10
    assert listrak.routes()[ACTIVITY] == 2


# -- userIds --------------------------------------------------------------------------------------
def test_few_unknown_contacts_are_read_one_by_one(listrak, poll):
    seed_rows(listrak, 3, with_user_id=2)
    identifies = [e for e in poll()[0].events if e.type == "identify"]
    assert [e.payload.get("userId") for e in identifies] == ["u-0", "u-1", None]
    assert listrak.routes()[CONTACT] == 3
    assert CONTACTS not in listrak.routes()


def test_many_unknown_contacts_are_read_in_pages_subscribed_then_unsubscribed(listrak, poll, requests_mock):
    seed_rows(listrak, 120, with_user_id=60)
    identifies = [e for e in poll()[0].events if e.type == "identify"]
    assert [e.payload.get("userId") for e in identifies] == [f"u-{n}" for n in range(60)] + [None] * 60
    assert contact_queries(requests_mock) == ["subscribed", "unsubscribed"]
    assert CONTACT not in listrak.routes()


def test_unsubscribed_contacts_are_not_listed_when_none_is_unknown(listrak, poll, requests_mock):
    seed_rows(listrak, 120)
    poll()
    assert contact_queries(requests_mock) == ["subscribed"]


# -- clicks ---------------------------------------------------------------------------------------
def test_clickers_are_read_again_only_when_a_links_click_count_moves(listrak, poll):
    listrak.seed(
        messages=[message_seed(501, SENT)],
        links=[{"messageId": 501, "linkId": 7, "linkUrl": "https://example.com/a"}],
        clicks=[{"messageId": 501, "linkId": 7, "emailAddress": "a@example.com", "clickDate": when(SENT)}],
    )
    assert [e.payload["event"] for e in poll()[1].events] == ["Link Clicked"]
    listrak.reset_counts()
    quiet = poll()
    assert CLICKERS not in listrak.routes()
    assert [e.payload.get("event") for p in quiet for e in p.events] == [None, "Email Sent"]  # the row again
    listrak.seed(
        clicks=[{"messageId": 501, "linkId": 7, "emailAddress": "b@example.com", "clickDate": when(NOW)}]
    )
    clicked = [
        e.payload["anonymousId"] for p in poll() for e in p.events if e.payload.get("event") == "Link Clicked"
    ]
    assert clicked == ["a@example.com", "b@example.com"]


# -- Listrak asking to slow down, and failures ----------------------------------------------------
def test_a_short_429_is_waited_out_as_retry_after_says(listrak, poll, waits):
    seed_rows(listrak, 3)
    listrak.fault(mode="429", retry_after=3, count=1, route=ACTIVITY)
    pages = poll()
    assert waits == [3.0]
    assert pages[0].rows_read == 3
    assert listrak.routes()[ACTIVITY] == 2


def test_a_429_without_retry_after_backs_off_doubling(listrak, poll, waits):
    seed_rows(listrak, 3)
    listrak.fault(mode="429", count=3, route=ACTIVITY)
    assert poll()[0].rows_read == 3
    assert waits == [2.0, 4.0, 8.0]


def test_a_long_429_ends_the_poll_with_listraks_retry_after(listrak, poll, waits):
    seed_rows(listrak, 3)
    listrak.fault(mode="429", retry_after=120, route=ACTIVITY)
    with pytest.raises(PollFailed) as failed:
        poll()
    assert failed.value.retry_after == 120.0
    assert waits == []
    assert str(failed.value).startswith(
        "GET /List/12345/Message/501/Activity: Listrak asked to slow down (HTTP 429"
    )
    assert listrak.routes()[ACTIVITY] == 1


def test_429s_are_waited_out_for_a_bounded_time_then_end_the_poll(listrak, poll, waits):
    seed_rows(listrak, 3)
    listrak.fault(mode="429", retry_after=25, route=ACTIVITY)
    with pytest.raises(PollFailed) as failed:
        poll()
    assert waits == [25.0, 25.0]
    assert failed.value.retry_after == 25.0
    assert listrak.routes()[ACTIVITY] == 3


def test_a_5xx_ends_the_poll_after_the_pages_already_read(listrak, poll):
    listrak.seed(messages=[message_seed(501, SENT), message_seed(502, SENT + timedelta(hours=1))])
    pages = poll.iterate()
    read = [next(pages) for _ in range(2)]  # message 501: its (no) rows, done
    assert read[-1].cursor["round"]["done"] == {"12345": [501]}
    listrak.fault(mode="503", route=ACTIVITY)
    with pytest.raises(PollFailed, match="GET /List/12345/Message/502/Activity: HTTP 503"):
        next(pages)


def test_a_token_refused_again_after_its_refresh_ends_the_poll(listrak, poll):
    listrak.fault(mode="expire_token", count=2)
    with pytest.raises(
        PollFailed,
        match=r"GET /List/12345/Message: Listrak refused a fresh token \(HTTP 401 ERROR_UNAUTHORIZED",
    ):
        poll()


def test_an_unknown_list_ends_the_poll_naming_it(listrak, poll):
    with pytest.raises(PollFailed) as failed:
        poll(lists=[999])
    assert str(failed.value) == (
        "GET /List/999/Message: HTTP 404 ERROR_UNABLE_TO_LOCATE_RESOURCE: "
        "Unable to locate a resource associated with the listId supplied."
    )


def test_a_missing_permission_is_named(requests_mock, listrak_token, poll):
    forbidden = {"status": 403, "error": "ERROR_INSUFFICIENT_PERMISSIONS", "message": "Access denied."}
    requests_mock.get("https://api.listrak.test/email/v1/List/12345/Message", status_code=403, json=forbidden)
    with pytest.raises(PollFailed) as failed:
        poll()
    assert str(failed.value) == (
        "GET /List/12345/Message: HTTP 403 ERROR_INSUFFICIENT_PERMISSIONS: Access denied. "
        "(the integration may lack the Message or Reporting permission)"
    )


class Pages:
    """An HTTP client whose answers are over the core's size limit above `limit` rows."""

    def __init__(self, limit: int):
        self.limit, self.counts = limit, []

    def send(self, request, credentials):
        count = int(request.params["count"])
        self.counts.append(count)
        if count > self.limit:
            return HttpResult(None, 1.0, error="response body over 1 MiB")
        return HttpResult(200, 1.0, body={"data": [{}] * 3, "nextPageCursor": None})


def test_pages_over_the_cores_size_limit_are_asked_for_smaller():
    http = Pages(limit=1500)
    assert [
        len(rows) for rows, _ in Reader(http, None, "https://api.listrak.test").pages("/List/1/Contact")
    ] == [3]
    assert http.counts == [5000, 2500, 1250]


# -- through the scheduler and the store ----------------------------------------------------------
@pytest.fixture
def scheduler(activity_config, runtime, clock, listrak):
    return Scheduler(runtime, "w1")


def test_each_event_is_stored_once_and_quiet_polls_add_nothing(scheduler, runtime, clock, listrak):
    sent = datetime.fromtimestamp(clock.at) - timedelta(days=1)
    listrak.seed(**bulk_seed(501, 4, sent, with_user_id=2))
    first = scheduler.poll("listrak-activity")
    assert (first.ok, first.rows_read, first.events, first.accepted) == (True, 4, 10, 10)
    assert {(d["partner_id"], d["action"]) for d in stored_deliveries(after_planning(runtime))} == {
        ("segment", "track_batch")
    }
    quiet = scheduler.poll("listrak-activity")
    assert (quiet.ok, quiet.rows_read, quiet.accepted) == (True, 4, 0)
    assert len(stored_events(after_planning(runtime))) == 10


def test_new_activity_on_an_older_message_and_a_first_open_are_stored_nothing_old(
    scheduler, runtime, clock, listrak
):
    now = datetime.fromtimestamp(clock.at)
    older, newer = now - timedelta(days=5), now - timedelta(hours=2)
    listrak.seed(
        messages=[message_seed(501, older), message_seed(502, newer)],
        rows=[
            {"messageId": 501, "emailAddress": "quiet@example.com"},
            {
                "messageId": 501,
                "emailAddress": "opened@example.com",
                "open": True,
                "activityDate": when(older),
            },
            {"messageId": 502, "emailAddress": "quiet@example.com"},
        ],
        links=[{"messageId": 501, "linkId": 7, "linkUrl": "https://example.com/a"}],
    )
    assert scheduler.poll("listrak-activity").accepted == 6
    listrak.seed(
        rows=[
            {"messageId": 501, "emailAddress": "quiet@example.com", "open": True, "activityDate": when(now)},
            {"messageId": 501, "emailAddress": "opened@example.com", "unsubscribe": True},
        ],
        clicks=[
            {"messageId": 501, "linkId": 7, "emailAddress": "opened@example.com", "clickDate": when(now)}
        ],
    )
    later = scheduler.poll("listrak-activity")
    assert later.accepted == 3
    new = [(e["email"], e["payload"]) for e in stored_events(after_planning(runtime))[6:]]
    assert [(email, '"event":"' + payload.split('"event":"')[1].split('"')[0]) for email, payload in new] == [
        ("quiet@example.com", '"event":"Email Opened'),
        ("opened@example.com", '"event":"Email Unsubscribed'),
        ("opened@example.com", '"event":"Link Clicked'),
    ]


def test_connector_poll_polls_now(activity_config, runtime, listrak, monkeypatch, capsys, clock):
    listrak.seed(**bulk_seed(501, 2, datetime.fromtimestamp(clock.at) - timedelta(hours=1), with_user_id=2))
    monkeypatch.setattr("connector.cli.runtimes.Runtime.build", lambda *a, **k: runtime)
    assert cli(["poll", "listrak-activity"]) == 0
    assert capsys.readouterr().out == "polled listrak-activity: 2 rows, 5 events, 5 new\n"
    assert cli(["poll", "listrak-activity"]) == 0  # not due, but `poll` polls now
    assert capsys.readouterr().out == "polled listrak-activity: 2 rows, 5 events, 0 new\n"
