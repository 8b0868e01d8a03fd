"""What the admin API and the Live View accept: query arguments → filters and a page, replay
bodies → replay() arguments, and for anything else one message naming each bad field."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from connector.web.arguments import FILTERS, LISTING, REPLAY, ArgumentError, Listing, load
from connector.web.readmodel import Filters

BEARER = {"Authorization": "Bearer test-admin-token"}
OUTCOMES = "queued, retrying, paused, delivered, skipped, superseded, dead"
NOT_AN_OBJECT = 'send a JSON object: {"delivery_ids": [...]} or {"dead": true}'
NOTHING_NAMED = "name delivery_ids, or set dead: true (optionally with partner/since)"
BAD_IDS = "delivery_ids: a list of at most 1000 delivery ids"


@pytest.mark.parametrize(
    ("args", "listing"),
    [
        ({}, Listing(Filters(), None, 50)),
        (
            {"source": " referrals ", "partner": "", "email": " Jane@Example.COM", "limit": "3"},
            Listing(Filters(source="referrals", email="jane@example.com"), None, 3),
        ),
        (
            {"outcome": "dead, retrying,,dead", "before": "17", "partial": "1"},
            Listing(Filters(outcome=("dead", "retrying")), 17, 50),
        ),
        ({"outcome": ",,,", "limit": " ", "before": ""}, Listing(Filters(), None, 50)),
        ({"limit": "200", "before": str(2**63 - 1)}, Listing(Filters(), 2**63 - 1, 200)),
    ],
)
def test_query_arguments_become_filters_and_a_page(args, listing):
    assert load(LISTING, MultiDict(args)) == listing


def test_the_first_of_repeated_arguments_counts():
    assert load(LISTING, MultiDict([("limit", "5"), ("limit", "x")])).limit == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"limit": "0"}, "limit: between 1 and 200"),
        ({"limit": "201"}, "limit: between 1 and 200"),
        ({"limit": "1e9"}, "limit: a whole number between 1 and 200"),
        ({"limit": "5_0"}, "limit: a whole number between 1 and 200"),
        ({"limit": "9" * 5000}, "limit: a whole number between 1 and 200"),
        ({"before": "-1"}, "before: an event id"),
        ({"before": "0"}, "before: an event id"),
        ({"before": "x"}, "before: an event id"),
        ({"before": "9" * 20}, "before: an event id"),
        ({"outcome": "lost"}, f"outcome: unknown lost (one of {OUTCOMES})"),
        ({"outcome": "dead,lost,gone"}, f"outcome: unknown lost, gone (one of {OUTCOMES})"),
        ({"outcome": "dead," * 100}, "outcome: at most 320 characters"),
        ({"email": "a" * 400}, "email: at most 320 characters"),
        ({"source": "a\x00b"}, "source: no control characters"),
        ({"limit": "0", "type": "x" * 321}, "type: at most 320 characters; limit: between 1 and 200"),
    ],
)
def test_bad_query_arguments_name_the_field(args, message):
    with pytest.raises(ArgumentError) as refused:
        load(LISTING, MultiDict(args))
    assert str(refused.value) == message


def test_filters_alone_ignore_paging_arguments():
    assert load(FILTERS, MultiDict({"partner": "p", "limit": "x"})) == Filters(partner="p")


@pytest.mark.parametrize(
    ("body", "arguments"),
    [
        ({"delivery_ids": [3, 1]}, {"delivery_ids": [3, 1], "dead": False, "partner": None, "since": None}),
        (
            {"dead": True, "partner": "crm", "since": "2026-11-22T05:00:00Z"},
            {"delivery_ids": None, "dead": True, "partner": "crm", "since": 1795323600.0},
        ),
        (
            {"dead": True, "since": "2026-11-22T06:00:00+01:00", "delivery_ids": None, "partner": ""},
            {"delivery_ids": None, "dead": True, "partner": None, "since": 1795323600.0},
        ),
    ],
)
def test_replay_bodies_become_replay_arguments(body, arguments):
    assert load(REPLAY, body) == arguments


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, NOT_AN_OBJECT),
        ([], NOT_AN_OBJECT),
        ("x", NOT_AN_OBJECT),
        ({}, NOTHING_NAMED),
        ({"delivery_ids": [], "dead": False}, NOTHING_NAMED),
        ({"delivery_ids": "1"}, BAD_IDS),
        ({"delivery_ids": [0]}, BAD_IDS),
        ({"delivery_ids": [True]}, BAD_IDS),
        ({"delivery_ids": [1.0]}, BAD_IDS),
        ({"delivery_ids": [2**63]}, BAD_IDS),
        ({"delivery_ids": list(range(1, 1002))}, BAD_IDS),
        ({"dead": "yes"}, "dead: true or false"),
        ({"dead": 1}, "dead: true or false"),
        ({"dead": None}, "dead: true or false"),
        ({"dead": True, "partner": 3}, "partner: a partner id"),
        ({"dead": True, "partner": "\x00"}, "partner: no control characters"),
        ({"dead": True, "since": "yesterday"}, "since: an ISO-8601 time with offset"),
        ({"dead": True, "since": 5}, "since: an ISO-8601 time with offset"),
        (
            {"dead": True, "since": "2026-11-22T05:00:00"},
            "since: needs a UTC offset, e.g. 2026-11-22T05:00:00Z",
        ),
        ({"what": 1}, "what: unknown field"),
        ({"delivery_ids": "x", "what": 1}, f"{BAD_IDS}; what: unknown field"),
    ],
)
def test_bad_replay_bodies_name_the_field(body, message):
    with pytest.raises(ArgumentError) as refused:
        load(REPLAY, body)
    assert str(refused.value) == message


def test_admin_api_refuses_with_json_naming_the_field(client):
    response = client.get("/admin/api/events?limit=1e9&outcome=lost", headers=BEARER)
    assert (response.status_code, response.json) == (
        400,
        {
            "error": "bad request",
            "message": f"outcome: unknown lost (one of {OUTCOMES}); limit: a whole number between 1 and 200",
        },
    )


def test_live_view_refuses_with_the_400_page(client):
    response = client.get("/live?before=-1", headers=BEARER)
    assert response.status_code == 400
    assert '<p class="error">before: an event id</p>' in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"{", b"1e999"])
def test_replay_bodies_that_are_not_json_are_a_400(client, body):
    response = client.post("/admin/api/replay", data=body, content_type="application/json", headers=BEARER)
    assert (response.status_code, response.json["message"]) == (400, NOT_AN_OBJECT)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("email=%ff%fe", 200, None),
        ("email=\xff", 400, "the query string is not UTF-8"),
        ("limit=%D9%A3", 400, "limit: a whole number between 1 and 200"),
        ("source=" + "x" * 100_000, 400, "source: at most 320 characters"),
        ("email=%00", 400, "email: no control characters"),
    ],
)
def test_odd_query_strings_get_an_answer_not_an_error(client, query, status, message):
    response = client.get("/admin/api/events", headers=BEARER, environ_overrides={"QUERY_STRING": query})
    assert (response.status_code, response.json.get("message")) == (status, message)
