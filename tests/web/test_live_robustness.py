"""Odd stored data never makes a Live View page or the admin API fail (connector/web/readmodel.py):
a lone surrogate stored before input refused it, nesting deeper than any page renders, a time
no calendar holds, a recorded exchange of an unexpected shape."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from connector.outbox.tables import attempts, deliveries, events
from connector.web.readmodel import MAX_SHOWN_DEPTH

BEARER = {"Authorization": "Bearer test-admin-token"}
DEEP = "[" * 900 + "]" * 900
TOO_DEEP = f"(nested deeper than {MAX_SHOWN_DEPTH} levels: not shown)"


@pytest.fixture
def odd_event(runtime) -> int:
    with runtime.engine.begin() as conn:
        event_pk = conn.execute(
            insert(events).values(
                source_id="extole",
                event_id="odd",
                type="opt_in",
                environment="production",
                email="jane@example.com",
                event_time=1e20,  # past the year 9999
                received_at=1e300,
                payload=json.dumps(
                    {"name": "Ja\ud800ne", "deep": json.loads(DEEP), "huge": [float("inf"), -float("inf")]}
                ),
            )
        ).inserted_primary_key[0]
        delivery_id = conn.execute(
            insert(deliveries).values(
                event_pk=event_pk,
                partner_id="listrak",
                action="contact_subscription",
                environment="production",
                contact_key="k",
                event_time=1.0,
                spec='{"not json',
                state="retrying",
                attempts=1,
                next_attempt_at=-1e300,
                created_at=0.0,
                updated_at=0.0,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(attempts),
            [
                {
                    "delivery_id": delivery_id,
                    "started_at": 0.0,
                    "outcome": "retrying",
                    "request": "[1, 2]",
                    "response": json.dumps({"status": 500, "body": "[" * 4096}),
                },
                {
                    "delivery_id": delivery_id,
                    "started_at": 0.0,
                    "outcome": "retrying",
                    "request": json.dumps({"method": "POST", "headers": ["x"], "params": "y", "body": DEEP}),
                    "response": json.dumps({"status": "\udc00", "headers": 7, "body": '{"a": "\\ud800"}'}),
                },
            ],
        )
    return event_pk


@pytest.mark.parametrize(
    "page", ["/live", "/live?partial=1", "/live/events/{pk}", "/live/events/{pk}?partial=1"]
)
def test_live_view_pages_show_odd_stored_data(client, odd_event, page):
    assert client.get(page.format(pk=odd_event), headers=BEARER).status_code == 200


def test_the_event_page_shows_a_stored_lone_surrogate_as_a_replacement_character(client, odd_event):
    page = client.get(f"/live/events/{odd_event}", headers=BEARER).get_data(as_text=True)
    assert "Ja\ufffdne" in page


@pytest.mark.parametrize("path", ["/admin/api/events", "/admin/api/events/{pk}", "/admin/api/summary"])
def test_admin_api_answers_odd_stored_data(client, odd_event, path):
    assert client.get(path.format(pk=odd_event), headers=BEARER).status_code == 200


def test_a_stored_infinity_is_served_as_text_in_valid_json(client, odd_event):
    """Stored before input refused 1e400: JSON has no Infinity, so the answer says it in text."""
    answer = client.get(f"/admin/api/events/{odd_event}", headers=BEARER).get_data(as_text=True)
    shown = json.loads(answer, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))
    assert shown["payload"]["huge"] == ["Infinity", "-Infinity"]


def test_the_read_model_shows_odd_values_as_text(client, odd_event):
    shown = client.get(f"/admin/api/events/{odd_event}", headers=BEARER).json
    assert shown["event_time"] == "1e+20"
    assert shown["payload"]["name"] == "Ja\ufffdne"
    deep = shown["payload"]["deep"]
    for _ in range(MAX_SHOWN_DEPTH - 1):
        (deep,) = deep
    assert deep == TOO_DEEP
    (delivery,) = shown["deliveries"]
    assert delivery["spec"] == '{"not json'
    first, second = delivery["attempt_log"]
    assert first["request"] == {"body": [1, 2]}
    assert first["response"] == {"status": 500, "body": TOO_DEEP}
    assert (second["request"]["headers"], second["request"]["params"]) == ({}, {})
    assert second["request"]["body"] == "[" * MAX_SHOWN_DEPTH + json.dumps(TOO_DEEP) + "]" * MAX_SHOWN_DEPTH
    assert second["response"] == {"status": "\ufffd", "headers": {}, "body": '{"a": "\\ufffd"}'}
