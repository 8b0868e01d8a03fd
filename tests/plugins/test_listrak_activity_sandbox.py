"""The Listrak sandbox's reporting routes (messages, activity, links, clickers) with Listrak's
JSON shapes and paging, their seeding control route, faults by route and the demo activity."""

from __future__ import annotations

import pytest

from plugins.listrak.sandbox import create_sandbox_app

API = "/email/v1/List/12345"
SEED = {
    "list_id": 12345,
    "contacts": [{"emailAddress": "jane@example.com", "segmentationFieldValues": {"1006": "u-1"}}],
    "messages": [
        {
            "messageId": 501,
            "subject": "Hello",
            "fromEmail": "news@example.com",
            "sendDate": "2026-11-20T12:00:00Z",
        },
        {
            "messageId": 502,
            "subject": "Again",
            "fromEmail": "news@example.com",
            "sendDate": "2026-11-21T12:00:00Z",
        },
    ],
    "rows": [
        {
            "messageId": 501,
            "emailAddress": "Jane@Example.com",
            "open": True,
            "activityDate": "2026-11-20T13:00:00Z",
        },
        {
            "messageId": 501,
            "emailAddress": "ana@example.com",
            "bounce": True,
            "bounceReason": "550 no such user",
        },
    ],
    "links": [{"messageId": 501, "linkId": 7, "linkUrl": "https://example.com/a", "linkDescription": "A"}],
    "clicks": [
        {
            "messageId": 501,
            "linkId": 7,
            "emailAddress": "jane@example.com",
            "clickDate": "2026-11-20T13:05:00Z",
        }
    ],
}


class Clock:
    now = 1_795_348_800.0  # 2026-11-22T12:00:00Z

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client():
    return create_sandbox_app(clock=Clock()).test_client()


@pytest.fixture
def auth(client):
    response = client.post(
        "/OAuth2/Token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
    )
    return {"Authorization": f"Bearer {response.json['access_token']}"}


@pytest.fixture
def seeded(client):
    response = client.post("/_sandbox/activity", json=SEED)
    assert response.status_code == 201
    assert response.json == {"added": {"contacts": 1, "messages": 2, "rows": 2, "links": 1, "clicks": 1}}
    return client


def test_messages_of_a_list_within_a_window(seeded, auth):
    everything = seeded.get(f"{API}/Message", headers=auth).json
    assert everything == {
        "status": 200,
        "nextPageCursor": None,
        "data": [
            {
                "messageId": 501,
                "sendDate": "2026-11-20T12:00:00.000Z",
                "messageStatus": "Sent",
                "campaignId": None,
                "externalCampaignId": "",
                "subject": "Hello",
            },
            {
                "messageId": 502,
                "sendDate": "2026-11-21T12:00:00.000Z",
                "messageStatus": "Sent",
                "campaignId": None,
                "externalCampaignId": "",
                "subject": "Again",
            },
        ],
    }
    window = {"startDate": "2026-11-21T00:00:00Z", "endDate": "2026-11-22T00:00:00Z"}
    assert [
        m["messageId"] for m in seeded.get(f"{API}/Message", query_string=window, headers=auth).json["data"]
    ] == [502]


def test_one_message_has_its_sender(seeded, auth):
    message = seeded.get(f"{API}/Message/501", headers=auth).json["data"]
    assert (message["subject"], message["fromEmail"], message["fromName"]) == (
        "Hello",
        "news@example.com",
        "Sandbox",
    )
    assert seeded.get(f"{API}/Message/999", headers=auth).json["error"] == "ERROR_UNABLE_TO_LOCATE_RESOURCE"


def test_activity_rows_as_listrak_shapes_them(seeded, auth):
    rows = seeded.get(f"{API}/Message/501/Activity", headers=auth).json["data"]
    assert rows == [
        {
            "abuse": False,
            "activityDate": "2026-11-20T13:00:00.000Z",
            "bounce": False,
            "bounceReason": None,
            "click": True,
            "clickCount": 1,
            "emailAddress": "jane@example.com",
            "externalContactID": None,
            "open": True,
            "orderTotal": 0.0,
            "read": False,
            "sendDate": "2026-11-20T12:00:00.000Z",
            "unsubscribe": False,
            "visitDate": None,
        },
        {
            "abuse": False,
            "activityDate": "2026-11-22T12:00:00.000Z",  # its first activity, stamped when seeded
            "bounce": True,
            "bounceReason": "550 no such user",
            "click": False,
            "clickCount": 0,
            "emailAddress": "ana@example.com",
            "externalContactID": None,
            "open": False,
            "orderTotal": 0.0,
            "read": False,
            "sendDate": "2026-11-20T12:00:00.000Z",
            "unsubscribe": False,
            "visitDate": None,
        },
    ]


def test_a_later_activity_keeps_the_rows_first_activity_date(seeded, auth):
    later = {
        "list_id": 12345,
        "rows": [{"messageId": 501, "emailAddress": "jane@example.com", "unsubscribe": True}],
    }
    assert seeded.post("/_sandbox/activity", json=later).status_code == 201
    jane = seeded.get(
        f"{API}/Message/501/Activity", query_string={"emailAddress": "jane@example.com"}, headers=auth
    )
    assert [(r["open"], r["unsubscribe"], r["activityDate"]) for r in jane.json["data"]] == [
        (True, True, "2026-11-20T13:00:00.000Z")
    ]


def test_activity_filters_by_type_and_dates(seeded, auth):
    bounced = seeded.get(f"{API}/Message/501/Activity", query_string={"activityType": "Bounce"}, headers=auth)
    assert [r["emailAddress"] for r in bounced.json["data"]] == ["ana@example.com"]
    since = {"dateType": "Activity", "startDate": "2026-11-21T00:00:00Z"}
    assert [
        r["emailAddress"]
        for r in seeded.get(f"{API}/Message/501/Activity", query_string=since, headers=auth).json["data"]
    ] == ["ana@example.com"]
    refused = seeded.get(f"{API}/Message/501/Activity", query_string={"dateType": "Open"}, headers=auth)
    assert (refused.status_code, refused.json["error"]) == (400, "ERROR_INVALID_PARAMETER")


def test_activity_pages_follow_next_page_cursor_up_to_5000(client, auth):
    rows = [{"messageId": 501, "emailAddress": f"p{n}@example.com"} for n in range(5)]
    client.post("/_sandbox/activity", json={**SEED, "rows": rows, "clicks": [], "contacts": []})
    first = client.get(f"{API}/Message/501/Activity", query_string={"count": "2"}, headers=auth).json
    second = client.get(
        f"{API}/Message/501/Activity",
        query_string={"count": "2", "cursor": first["nextPageCursor"]},
        headers=auth,
    ).json
    third = client.get(
        f"{API}/Message/501/Activity",
        query_string={"count": "2", "cursor": second["nextPageCursor"]},
        headers=auth,
    ).json
    assert [[r["emailAddress"] for r in page["data"]] for page in (first, second, third)] == [
        ["p0@example.com", "p1@example.com"],
        ["p2@example.com", "p3@example.com"],
        ["p4@example.com"],
    ]
    assert third["nextPageCursor"] is None
    too_many = client.get(f"{API}/Message/501/Activity", query_string={"count": "5001"}, headers=auth)
    assert too_many.status_code == 400


def test_links_count_their_clickers(seeded, auth):
    links = seeded.get(f"{API}/Message/501/Link", headers=auth).json["data"]
    assert links == [
        {"linkId": 7, "linkDescription": "A", "linkUrl": "https://example.com/a", "clickCount": 1}
    ]
    clickers = seeded.get(f"{API}/Message/501/Link/7/Clicker", headers=auth).json
    assert clickers == {
        "status": 200,
        "nextPageCursor": None,
        "data": [{"emailAddress": "jane@example.com", "clickDate": "2026-11-20T13:05:00.000Z"}],
    }
    assert seeded.get(f"{API}/Message/501/Link/8/Clicker", headers=auth).status_code == 404


def test_contacts_carry_the_seeded_user_id_field(seeded, auth):
    jane = seeded.get(
        f"{API}/Contact/jane@example.com", query_string={"segmentationFieldIds": "1006"}, headers=auth
    )
    assert jane.json["data"]["segmentationFieldValues"] == [
        {"segmentationFieldGroupId": 10, "segmentationFieldId": 1006, "value": "u-1"}
    ]
    listed = seeded.get(
        f"{API}/Contact",
        query_string={"segmentationFieldIds": "1006", "subscriptionState": "Subscribed"},
        headers=auth,
    )
    assert [c["emailAddress"] for c in listed.json["data"]] == ["jane@example.com"]


def test_reporting_routes_need_a_token_and_are_counted_by_route(seeded, auth):
    assert seeded.get(f"{API}/Message").status_code == 401
    seeded.get(f"{API}/Message/501/Activity", headers=auth)
    seeded.get(f"{API}/Message/501/Link/7/Clicker", headers=auth)
    routes = seeded.get("/_sandbox/state").json["requests"]["per_route"]
    assert routes["GET /List/<listId>/Message"] == 1
    assert routes["GET /List/<listId>/Message/<messageId>/Activity"] == 1
    assert routes["GET /List/<listId>/Message/<messageId>/Link/<messageLinkId>/Clicker"] == 1


def test_a_fault_can_target_one_route(seeded, auth):
    fault = {
        "mode": "429",
        "retry_after": 5,
        "count": 1,
        "route": "GET /List/<listId>/Message/<messageId>/Activity",
    }
    assert seeded.post("/_sandbox/faults", json=fault).status_code == 201
    assert seeded.get(f"{API}/Message", headers=auth).status_code == 200
    limited = seeded.get(f"{API}/Message/501/Activity", headers=auth)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "5")
    assert seeded.get(f"{API}/Message/501/Activity", headers=auth).status_code == 200


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"list_id": 12345, "rows": [{"messageId": 9, "emailAddress": "a@example.com"}]}, {"body"}),
        ({"list_id": 99}, {"list_id"}),
        (
            {
                "list_id": 12345,
                "messages": [{"messageId": 1, "subject": "s", "fromEmail": "f@x.com", "sendDate": "soon"}],
            },
            {"messages"},
        ),
        (
            {
                "list_id": 12345,
                "contacts": [{"emailAddress": "a@example.com", "segmentationFieldValues": {"4242": "x"}}],
            },
            {"contacts.0.segmentationFieldValues"},
        ),
        ({"list_id": 12345, "rows": [{"messageId": 501, "emailAddress": "not an email"}]}, {"rows"}),
    ],
)
def test_seeding_refuses_bad_bodies_naming_the_field_and_applies_nothing(client, body, fields):
    response = client.post("/_sandbox/activity", json=body)
    assert response.status_code == 400
    assert set(response.json["fields"]) == fields
    assert client.get("/_sandbox/state").json["activity"] == {}


def test_reset_forgets_the_activity(seeded):
    assert seeded.get("/_sandbox/state").json["activity"] == {
        "12345": {"501": {"rows": 2, "links": 1, "clicks": 1}, "502": {"rows": 0, "links": 0, "clicks": 0}}
    }
    seeded.post("/_sandbox/reset")
    assert seeded.get("/_sandbox/state").json["activity"] == {}


def test_the_demo_has_every_kind_of_activity_on_the_example_list():
    state = create_sandbox_app(demo=True).test_client().get("/_sandbox/state").json
    assert state["activity"] == {
        "12345": {"9001": {"rows": 5, "links": 2, "clicks": 3}, "9002": {"rows": 2, "links": 1, "clicks": 1}}
    }
    contacts = state["lists"]["12345"]["contacts"]
    assert {
        email: (c["segmentationFieldValues"].get("1006"), c["subscriptionState"])
        for email, c in contacts.items()
    } == {
        "jane.doe@example.com": ("u-829", "Subscribed"),
        "john.smith@example.com": ("u-830", "Unsubscribed"),
        "ana.garcia@example.com": ("u-831", "Subscribed"),
        "lee.wong@example.com": (None, "Unsubscribed"),
    }
