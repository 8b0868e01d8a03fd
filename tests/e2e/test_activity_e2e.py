"""Listrak email activity → Segment end to end: the Listrak sandbox (`connector sandbox`) seeded
with activity, `connector worker` polling it every second as the example config's
`listrak-activity` source, gunicorn, and the Segment look-alike (`connector segment-sandbox`)
recording every call it receives — all separate processes over real HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connector.outbox import pollers
from connector.testing import ROOT, StoreReader, example_stack, wait_until
from plugins.listrak.testing import ACTIVITY_FLOW
from plugins.listrak_activity.testing import (
    LIST_ID,
    bulk_seed,
    expected_message_ids,
    message_seed,
    seed,
    source_file,
    when,
)

pytestmark = pytest.mark.e2e

MESSAGE_LIST = "GET /List/<listId>/Message"
ACTIVITY = "GET /List/<listId>/Message/<messageId>/Activity"
CLAIM = "https://refer.example.com/claim?c=jdoe"


@pytest.fixture
def stack(tmp_path):
    """The stack with no worker yet (start one with `stack.add_worker()` once seeded)."""
    stack = example_stack(
        tmp_path / "stack",
        settings={
            "worker": {"batch_window": "200ms", "lease": "6s", "http_timeout": "2s"},
            "retry_schedule": ["200ms", "500ms", "1s"],
        },
        extra_files=source_file(poll_interval="1s"),
        keep=ACTIVITY_FLOW,
    )
    try:
        yield stack.start(workers=0)
    finally:
        stack.stop()


def polls(stack) -> int:
    """Polls so far, as the Listrak sandbox saw them (one message listing each)."""
    return stack.part("listrak").state()["requests"]["per_route"].get(MESSAGE_LIST, 0)


def received(stack) -> list[dict]:
    return stack.part("segment").calls()


def summary(call: dict) -> tuple:
    return (
        call["type"],
        call.get("event"),
        call["anonymousId"],
        call.get("userId"),
        call["timestamp"],
        call.get("properties", {}).get("bounce_reason"),
        call.get("properties", {}).get("link"),
    )


def test_seeded_activity_reaches_segment_once_and_quiet_polls_send_nothing(stack):
    sent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    seed(
        stack,
        {
            "list_id": LIST_ID,
            "contacts": [
                {"emailAddress": "jane.doe@example.com", "segmentationFieldValues": {"1006": "u-829"}},
                {"emailAddress": "ana@example.com", "segmentationFieldValues": {"1006": "u-831"}},
            ],
            "messages": [message_seed(501, sent)],
            "rows": [
                {
                    "messageId": 501,
                    "emailAddress": "jane.doe@example.com",
                    "open": True,
                    "activityDate": when(sent + timedelta(hours=1)),
                },
                {
                    "messageId": 501,
                    "emailAddress": "ana@example.com",
                    "bounce": True,
                    "bounceReason": "550 5.1.1 mailbox unavailable",
                    "activityDate": when(sent),
                },
                {
                    "messageId": 501,
                    "emailAddress": "bob@example.com",
                    "unsubscribe": True,
                    "activityDate": when(sent + timedelta(hours=2)),
                },
                {
                    "messageId": 501,
                    "emailAddress": "lee@example.com",
                    "abuse": True,
                    "activityDate": when(sent + timedelta(hours=3)),
                },
            ],
            "links": [{"messageId": 501, "linkId": 7, "linkUrl": CLAIM}],
            "clicks": [
                {
                    "messageId": 501,
                    "linkId": 7,
                    "emailAddress": "jane.doe@example.com",
                    "clickDate": when(sent + timedelta(hours=1, minutes=2)),
                }
            ],
        },
    )
    stack.add_worker()
    wait_until(lambda: len(received(stack)) >= 13, timeout=30, message="the activity at the look-alike")
    at = polls(stack)
    wait_until(lambda: polls(stack) >= at + 2, timeout=30, message="two quiet polls")
    wait_until(lambda: stack.delivery_states() == {"delivered": 13}, timeout=30, message="all delivered")
    calls = received(stack)
    t = lambda delta: when(sent + delta)  # noqa: E731
    assert sorted(map(summary, calls), key=str) == sorted(
        [
            ("identify", None, "jane.doe@example.com", "u-829", t(timedelta()), None, None),
            ("track", "Email Sent", "jane.doe@example.com", "u-829", t(timedelta()), None, None),
            ("track", "Email Opened", "jane.doe@example.com", "u-829", t(timedelta(hours=1)), None, None),
            ("identify", None, "ana@example.com", "u-831", t(timedelta()), None, None),
            ("track", "Email Sent", "ana@example.com", "u-831", t(timedelta()), None, None),
            (
                "track",
                "Email Bounced",
                "ana@example.com",
                "u-831",
                t(timedelta()),
                "550 5.1.1 mailbox unavailable",
                None,
            ),
            ("identify", None, "bob@example.com", None, t(timedelta()), None, None),  # Listrak: 404
            ("track", "Email Sent", "bob@example.com", None, t(timedelta()), None, None),
            ("track", "Email Unsubscribed", "bob@example.com", None, t(timedelta(hours=2)), None, None),
            ("identify", None, "lee@example.com", None, t(timedelta()), None, None),
            ("track", "Email Sent", "lee@example.com", None, t(timedelta()), None, None),
            ("track", "Email Marked as Spam", "lee@example.com", None, t(timedelta(hours=3)), None, None),
            (
                "track",
                "Link Clicked",
                "jane.doe@example.com",
                "u-829",
                t(timedelta(hours=1, minutes=2)),
                None,
                CLAIM,
            ),
        ],
        key=str,
    )
    jane_open = next(c for c in calls if c.get("event") == "Email Opened")
    assert {k: jane_open[k] for k in ("anonymousId", "userId", "properties")} == {
        "anonymousId": "jane.doe@example.com",
        "userId": "u-829",
        "properties": {
            "event": "Email Opened",
            "email_id": 501,
            "fromId": "rewards@example.com",
            "email_subject": "Jane sent you $20",
            "userId": "u-829",
        },
    }
    assert stack.part("segment").state()["duplicates"] == 0


def test_new_activity_on_an_older_message_and_a_first_open_are_sent_nothing_old_again(stack):
    now = datetime.now(UTC).replace(microsecond=0)
    older, newer = now - timedelta(days=5), now - timedelta(hours=1)
    seed(
        stack,
        {
            "list_id": LIST_ID,
            "messages": [message_seed(501, older), message_seed(502, newer, subject="Again")],
            "rows": [
                {"messageId": 501, "emailAddress": "quiet@example.com"},
                {
                    "messageId": 501,
                    "emailAddress": "opened@example.com",
                    "open": True,
                    "activityDate": when(older),
                },
                {"messageId": 502, "emailAddress": "quiet@example.com"},
            ],
            "links": [{"messageId": 501, "linkId": 7, "linkUrl": CLAIM}],
        },
    )
    stack.add_worker()
    wait_until(lambda: len(received(stack)) == 6, timeout=30, message="the first activity")
    before = {c["messageId"] for c in received(stack)}
    seed(
        stack,
        {
            "list_id": LIST_ID,
            "rows": [
                {
                    "messageId": 501,
                    "emailAddress": "quiet@example.com",
                    "open": True,
                    "activityDate": when(now),
                },
                {"messageId": 501, "emailAddress": "opened@example.com", "unsubscribe": True},
            ],
            "clicks": [
                {"messageId": 501, "linkId": 7, "emailAddress": "opened@example.com", "clickDate": when(now)}
            ],
        },
    )
    wait_until(lambda: len(received(stack)) >= 9, timeout=30, message="the new activity")
    at = polls(stack)
    wait_until(lambda: polls(stack) >= at + 2, timeout=30, message="two more polls")
    calls = received(stack)
    assert [
        (c.get("event"), c["anonymousId"], c["timestamp"]) for c in calls if c["messageId"] not in before
    ] == [
        ("Email Opened", "quiet@example.com", when(now)),
        ("Email Unsubscribed", "opened@example.com", when(older)),  # Listrak keeps the first activity's date
        ("Link Clicked", "opened@example.com", when(now)),
    ]
    assert len(calls) == 9
    assert stack.part("segment").state()["duplicates"] == 0


def test_6000_rows_over_several_activity_pages_arrive_complete_and_once(stack):
    body = bulk_seed(501, 6000, datetime.now(UTC) - timedelta(hours=3), with_user_id=5400)
    seed(stack, body)
    stack.add_worker()
    expected = expected_message_ids(body)
    assert len(expected) == 14000
    wait_until(
        lambda: stack.part("segment").state()["calls"]["total"] >= 14000,
        timeout=90,
        interval=0.5,
        message="14,000 calls",
    )
    state = stack.part("segment").state()
    assert set(state["message_ids"]) == expected
    assert state["duplicates"] == 0
    by_route = stack.part("listrak").state()["requests"]["per_route"]
    assert "GET /List/<listId>/Contact/<contactIdentifier>" not in by_route  # userIds read in pages


def test_a_worker_killed_mid_poll_loses_and_repeats_nothing(stack):
    body = bulk_seed(501, 12000, datetime.now(UTC) - timedelta(hours=3), with_user_id=9000)
    seed(stack, body)
    expected = expected_message_ids(body)
    stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": 400}).raise_for_status()
    worker = stack.add_worker()
    store = StoreReader(stack.database_url)
    try:
        wait_until(lambda: store.event_count() > 0, timeout=60, interval=0.05, message="a first page stored")
        stored_before_kill = store.event_count()
        stack.kill_worker(worker)
    finally:
        store.close()
    assert 0 < stored_before_kill < len(expected)  # killed mid-poll
    stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": 0}).raise_for_status()
    stack.add_worker()  # takes the poll over once the dead worker's lease runs out
    wait_until(
        lambda: expected <= set(stack.part("segment").state()["message_ids"]),
        timeout=120,
        interval=0.5,
        message="every expected call at the look-alike",
    )
    assert set(stack.part("segment").state()["message_ids"]) == expected  # nothing lost, nothing unexpected
    # each event stored once and delivered once (a batch in flight at the kill may reach Segment twice)
    wait_until(
        lambda: stack.delivery_states() == {"delivered": len(expected)}, timeout=30, message="all delivered"
    )


def test_a_429_from_listrak_is_waited_out_and_a_long_one_ends_the_poll_without_hammering(stack):
    body = bulk_seed(501, 3, datetime.now(UTC) - timedelta(hours=1), with_user_id=3)
    seed(stack, body)
    fault = {"mode": "429", "retry_after": 2, "count": 1, "route": ACTIVITY}
    stack.part("listrak").request("POST", "/_sandbox/faults", json=fault).raise_for_status()
    stack.add_worker()
    wait_until(lambda: len(received(stack)) == 7, timeout=30, message="the activity, after the short 429")
    assert stack.part("listrak").state()["faults_applied"] == {"429": 1}

    asked = stack.part("listrak").state()["requests"]["per_route"][ACTIVITY]
    long_fault = {"mode": "429", "retry_after": 120, "route": ACTIVITY}
    stack.part("listrak").request("POST", "/_sandbox/faults", json=long_fault).raise_for_status()
    store = StoreReader(stack.database_url)
    try:
        state = wait_until(lambda: failed_poll(store), timeout=30, message="the poll ended by the long 429")
    finally:
        store.close()
    assert state["last_error"].startswith("GET /List/12345/Message/501/Activity: Listrak asked to slow down")
    assert state["next_poll_at"] >= time.time() + 100  # not before Listrak's Retry-After, not every second
    assert (
        stack.part("listrak").state()["requests"]["per_route"][ACTIVITY] == asked + 1
    )  # asked once, not again


def failed_poll(store: StoreReader) -> dict | None:
    (state,) = [p for p in pollers.states(store.engine) if p["source_id"] == "listrak-activity"]
    return state if state["last_error"] else None


def poll_now(stack) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "poll", "listrak-activity"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_polls_that_stop_at_their_page_budget_go_on_where_they_stopped(tmp_path):
    # 12,000 rows: three Activity pages, each needing pages of contacts for its userIds; seven
    # requests per poll store a page or two, so the round takes a few polls.
    stack = example_stack(
        tmp_path / "stack",
        settings={"worker": {"batch_window": "200ms"}},
        extra_files={
            "sources/listrak-activity.yaml": {
                **source_file()["sources/listrak-activity.yaml"],
                "max_pages_per_poll": 7,
            }
        },
        keep=ACTIVITY_FLOW,
    )
    try:
        stack.start(workers=0)
        body = bulk_seed(501, 12000, datetime.now(UTC) - timedelta(hours=3), with_user_id=9000)
        seed(stack, body)
        early = "stopped early: read 7 pages, the most one poll may (max_pages_per_poll)"
        outputs = [poll_now(stack)]
        assert early in outputs[0]
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        summary = requests.get(f"{stack.base_url}/admin/api/summary", headers=admin, timeout=10).json()
        (source,) = summary["pull_sources"]
        assert source["stopped_early"].startswith(early)
        assert source["last_error"] is None
        metrics = requests.get(f"{stack.base_url}/metrics", timeout=10).text
        assert 'connector_polls_total{result="stopped_early",source="listrak-activity"} 1.0' in metrics
        while early in outputs[-1] and len(outputs) < 6:
            outputs.append(poll_now(stack))
        assert early not in outputs[-1]
        assert len(outputs) > 1
        rows = [int(re.match(r"polled listrak-activity: (\d+) rows", out).group(1)) for out in outputs]
        assert sum(rows) == 12000
        assert all(rows[:-1])
        stack.add_worker()
        expected = expected_message_ids(body)
        wait_until(
            lambda: expected <= set(stack.part("segment").state()["message_ids"]),
            timeout=120,
            interval=0.5,
            message="every expected call at the look-alike",
        )
        state = stack.part("segment").state()
        assert set(state["message_ids"]) == expected
        assert state["duplicates"] == 0
    finally:
        stack.stop()


def test_connector_poll_polls_now_and_the_worker_delivers(stack):
    seed(stack, bulk_seed(501, 2, datetime.now(UTC) - timedelta(hours=1), with_user_id=1))
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", "poll", "listrak-activity"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "polled listrak-activity: 2 rows, 5 events, 5 new\n")
    assert stack.delivery_states() == {"queued": 5}
    stack.add_worker()
    wait_until(lambda: len(received(stack)) == 5, timeout=30, message="the polled activity at the look-alike")
