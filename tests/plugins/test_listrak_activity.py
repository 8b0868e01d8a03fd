"""The Listrak activity pull source: what it reads (routes, pages, contacts) and the exact Segment
messages it makes, with the Listrak sandbox answering requests_mock's URLs in-process."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from plugins.listrak_activity.events import NAMESPACE, message_id
from plugins.listrak_activity.testing import FROM_EMAIL, message_seed, when
from tests.plugins.conftest import POLLED_AT as NOW

SENT = NOW - timedelta(days=2)
CLAIM = "https://refer.example.com/claim?c=jdoe"
ACTIVITY = "GET /List/<listId>/Message/<messageId>/Activity"
CONTACT = "GET /List/<listId>/Contact/<contactIdentifier>"
CONTACTS = "GET /List/<listId>/Contact"


def events_of(pages) -> list[dict]:
    return [event.payload for page in pages for event in page.events]


def seed_story(listrak):
    """Jane opens and clicks, Ana bounces, Bob (not on the list) unsubscribes after a click,
    Lee (on the list, no user id) reports abuse."""
    listrak.seed(
        contacts=[
            {"emailAddress": "jane.doe@example.com", "segmentationFieldValues": {"1006": "u-829"}},
            {"emailAddress": "ana@example.com", "segmentationFieldValues": {"1006": "u-831"}},
            {"emailAddress": "lee@example.com"},
        ],
        messages=[message_seed(501, SENT)],
        rows=[
            {
                "messageId": 501,
                "emailAddress": "Jane.Doe@Example.com",
                "open": True,
                "activityDate": when(SENT + timedelta(hours=1)),
            },
            {
                "messageId": 501,
                "emailAddress": "ana@example.com",
                "bounce": True,
                "bounceReason": "550 5.1.1 mailbox unavailable",
                "activityDate": when(SENT + timedelta(minutes=1)),
            },
            {
                "messageId": 501,
                "emailAddress": "bob@example.com",
                "unsubscribe": True,
                "activityDate": when(NOW - timedelta(days=1)),
            },
            {
                "messageId": 501,
                "emailAddress": "lee@example.com",
                "abuse": True,
                "activityDate": when(NOW - timedelta(hours=20)),
            },
        ],
        links=[{"messageId": 501, "linkId": 7, "linkUrl": CLAIM}],
        clicks=[
            {
                "messageId": 501,
                "linkId": 7,
                "emailAddress": "jane.doe@example.com",
                "clickDate": when(SENT + timedelta(hours=1, minutes=2)),
            },
            {
                "messageId": 501,
                "linkId": 7,
                "emailAddress": "bob@example.com",
                "clickDate": when(NOW - timedelta(days=1, hours=1)),
            },
        ],
    )


def test_activity_rows_and_clicks_become_track_and_identify_calls(listrak, poll):
    seed_story(listrak)
    sent = [
        (e["type"], e.get("event"), e["anonymousId"], e.get("userId"), e["timestamp"])
        for e in events_of(poll())
    ]
    assert sent == [
        ("identify", None, "jane.doe@example.com", "u-829", "2026-11-20T12:00:00.000Z"),
        ("track", "Email Sent", "jane.doe@example.com", "u-829", "2026-11-20T12:00:00.000Z"),
        ("track", "Email Opened", "jane.doe@example.com", "u-829", "2026-11-20T13:00:00.000Z"),
        ("identify", None, "ana@example.com", "u-831", "2026-11-20T12:00:00.000Z"),
        ("track", "Email Sent", "ana@example.com", "u-831", "2026-11-20T12:00:00.000Z"),
        ("track", "Email Bounced", "ana@example.com", "u-831", "2026-11-20T12:01:00.000Z"),
        ("identify", None, "bob@example.com", None, "2026-11-20T12:00:00.000Z"),
        ("track", "Email Sent", "bob@example.com", None, "2026-11-20T12:00:00.000Z"),
        ("track", "Email Unsubscribed", "bob@example.com", None, "2026-11-21T12:00:00.000Z"),
        ("identify", None, "lee@example.com", None, "2026-11-20T12:00:00.000Z"),
        ("track", "Email Sent", "lee@example.com", None, "2026-11-20T12:00:00.000Z"),
        ("track", "Email Marked as Spam", "lee@example.com", None, "2026-11-21T16:00:00.000Z"),
        ("track", "Link Clicked", "jane.doe@example.com", "u-829", "2026-11-20T13:02:00.000Z"),
        ("track", "Link Clicked", "bob@example.com", None, "2026-11-21T11:00:00.000Z"),
    ]


def test_a_track_call_carries_the_message_and_the_contact(listrak, poll):
    seed_story(listrak)
    events = events_of(poll())
    bounced = next(e for e in events if e.get("event") == "Email Bounced")
    assert bounced == {
        "type": "track",
        "event": "Email Bounced",
        "messageId": bounced["messageId"],
        "timestamp": "2026-11-20T12:01:00.000Z",
        "anonymousId": "ana@example.com",
        "context": {"traits": {"email": "ana@example.com"}},
        "userId": "u-831",
        "properties": {
            "event": "Email Bounced",
            "email_id": 501,
            "fromId": FROM_EMAIL,
            "email_subject": "Jane sent you $20",
            "bounce_reason": "550 5.1.1 mailbox unavailable",
            "userId": "u-831",
        },
    }
    click = next(
        e for e in events if e.get("event") == "Link Clicked" and e["anonymousId"] == "bob@example.com"
    )
    assert "userId" not in click
    assert click["context"] == {"traits": {"email": "bob@example.com"}}
    assert click["properties"] == {
        "event": "Link Clicked",
        "email_id": 501,
        "fromId": FROM_EMAIL,
        "email_subject": "Jane sent you $20",
        "link": CLAIM,
    }


def test_identify_carries_email_and_the_list_trait(listrak, poll):
    seed_story(listrak)
    jane = events_of(poll())[0]
    assert jane == {
        "type": "identify",
        "messageId": jane["messageId"],
        "timestamp": "2026-11-20T12:00:00.000Z",
        "anonymousId": "jane.doe@example.com",
        "userId": "u-829",
        "traits": {"email": "jane.doe@example.com", "Listrak_list_12345": True},
    }


def test_message_ids_are_derived_from_the_activity_and_stable_across_processes(
    listrak, poll, activity_source
):
    seed_story(listrak)
    first = poll()
    poll.restart()  # another process: nothing remembered
    again = poll()
    assert [e.event_id for p in first for e in p.events] == [e.event_id for p in again for e in p.events]
    sent = next(e for p in first for e in p.events if e.payload.get("event") == "Email Sent")
    # uuid5 over (list, message, email, event, link, time): changing it would resend everything
    assert sent.event_id == sent.payload["messageId"] == "2ea76a03-0bd6-51ab-a196-bafc5ba4936b"
    assert (sent.type, sent.email, sent.environment, sent.event_time) == (
        "track",
        "jane.doe@example.com",
        "production",
        SENT,
    )
    assert len({e.event_id for p in first for e in p.events}) == 14


def test_identify_message_id_changes_only_with_the_user_id(listrak, poll):
    seed_story(listrak)
    before = events_of(poll())[0]["messageId"]
    listrak.seed(
        contacts=[{"emailAddress": "jane.doe@example.com", "segmentationFieldValues": {"1006": "u-900"}}]
    )
    after = events_of(poll())
    assert after[0]["userId"] == "u-900"
    assert after[0]["messageId"] != before
    assert [e["messageId"] for e in after[1:3]] == [e["messageId"] for e in events_of(poll())[1:3]]


def test_without_user_id_field_no_contact_is_read_and_no_user_id_sent(listrak, poll):
    seed_story(listrak)
    events = events_of(poll(user_id_field=None))
    assert all("userId" not in e and "userId" not in e.get("properties", {}) for e in events)
    assert CONTACT not in listrak.routes()
    assert CONTACTS not in listrak.routes()


def test_a_contact_listrak_answers_404_for_has_no_user_id(listrak, poll):
    listrak.seed(
        messages=[message_seed(501, SENT)], rows=[{"messageId": 501, "emailAddress": "nobody@example.com"}]
    )
    identify, sent = events_of(poll())
    assert "userId" not in identify
    assert "userId" not in sent
    assert "userId" not in sent["properties"]
    assert listrak.sandbox.counts.per_status["404"] == 1


@given(st.lists(st.none() | st.integers() | st.text(), min_size=1, max_size=6))
def test_message_ids_are_uuid5_of_their_parts(parts):
    name = "|".join("" if p is None else str(p) for p in parts)
    assert message_id(*parts) == str(uuid.uuid5(NAMESPACE, name))
