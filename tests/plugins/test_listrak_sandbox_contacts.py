"""The Listrak sandbox's Contact collection filtered by date as the Swagger says (subscribe date
for Subscribed, original or most recent; unsubscribe date for Unsubscribed; which bounds are
inclusive), its pages keyed on the email, and `POST /_sandbox/contacts` changing a contact at a
given time."""

from __future__ import annotations

import pytest

from plugins.listrak.sandbox import create_sandbox_app

CONTACTS = "/email/v1/List/12345/Contact"
NOON = "2026-11-22T12:00:00"


@pytest.fixture
def client():
    return create_sandbox_app(clock=lambda: 1_795_348_800.0).test_client()  # 2026-11-22T12:00:00Z


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


def change(client, email: str, state: str = "Subscribed", at: str | None = None, **extra):
    body = {"list_id": 12345, "emailAddress": email, "subscriptionState": state, **extra}
    if at is not None:
        body["subscribeDate" if state == "Subscribed" else "unsubscribeDate"] = at
    response = client.post("/_sandbox/contacts", json=body)
    assert response.status_code == 201, response.json
    return response.json["contact"]


def listed(client, auth, **query) -> list[str]:
    response = client.get(CONTACTS, query_string=query, headers=auth)
    assert response.status_code == 200, response.json
    return [c["emailAddress"] for c in response.json["data"]]


@pytest.fixture
def changes(client):
    """a subscribed at 11:00, b at 12:00 (unsubscribed at 12:30, back at 13:00), c at 13:00;
    d unsubscribed at 12:00, e at 13:00."""
    change(client, "a@example.com", at="2026-11-22T11:00:00Z")
    change(client, "b@example.com", at=f"{NOON}Z")
    change(client, "b@example.com", "Unsubscribed", at="2026-11-22T12:30:00Z")
    change(client, "b@example.com", at="2026-11-22T13:00:00Z")
    change(client, "c@example.com", at="2026-11-22T13:00:00Z")
    change(client, "d@example.com", "Unsubscribed", at=f"{NOON}Z")
    change(client, "e@example.com", "Unsubscribed", at="2026-11-22T13:00:00Z")
    return client


def test_subscribed_contacts_by_original_subscribe_date_both_bounds_inclusive(changes, auth):
    window = {"startDate": f"{NOON}Z", "endDate": "2026-11-22T13:00:00Z"}
    assert listed(changes, auth, **window) == ["b@example.com", "c@example.com"]


def test_subscribed_contacts_by_latest_subscribe_date_end_exclusive(changes, auth):
    window = {"startDate": f"{NOON}Z", "endDate": "2026-11-22T13:00:00Z", "useOriginalSubscribeDate": "false"}
    assert listed(changes, auth, **window) == []
    later = {"startDate": "2026-11-22T12:00:01Z", "endDate": "2026-11-22T13:00:01Z"}
    assert listed(changes, auth, **later, useOriginalSubscribeDate="false") == [
        "b@example.com",
        "c@example.com",
    ]
    assert listed(changes, auth, **later) == ["c@example.com"]  # b's original date is 12:00


def test_unsubscribed_contacts_by_unsubscribe_date_both_bounds_inclusive(changes, auth):
    window = {"subscriptionState": "Unsubscribed", "startDate": f"{NOON}Z", "endDate": "2026-11-22T13:00:00Z"}
    assert listed(changes, auth, **window) == ["d@example.com", "e@example.com"]
    assert listed(changes, auth, **{**window, "startDate": "2026-11-22T12:00:00.001Z"}) == ["e@example.com"]


def test_dates_without_an_offset_are_utc_and_offsets_are_converted(changes, auth):
    assert listed(changes, auth, startDate=NOON, endDate=NOON) == ["b@example.com"]
    assert listed(
        changes, auth, startDate="2026-11-22T13:00:00+01:00", endDate="2026-11-22T07:00:00-05:00"
    ) == ["b@example.com"]


def test_contact_dates_are_written_as_listrak_does_utc_without_an_offset(changes, auth):
    (b,) = [
        c for c in changes.get(CONTACTS, headers=auth).json["data"] if c["emailAddress"] == "b@example.com"
    ]
    assert (b["subscribeDate"], b["resubscribeDate"], b["unsubscribeDate"]) == (
        "2026-11-22T12:00:00.000",
        "2026-11-22T13:00:00.000",
        None,
    )


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"startDate": "yesterday"}, "startDate"),
        ({"endDate": "2026-13-01"}, "endDate"),
        ({"useOriginalSubscribeDate": "maybe"}, "useOriginalSubscribeDate"),
        ({"cursor": "%%%"}, "cursor"),
        ({"subscriptionState": "Pending"}, "subscriptionState"),
    ],
)
def test_bad_parameters_are_refused_naming_them(client, auth, query, parameter):
    response = client.get(CONTACTS, query_string=query, headers=auth)
    assert response.status_code == 400
    assert response.json["message"] == f"An invalid value was supplied for {parameter}."


def test_a_contact_leaving_between_two_pages_pushes_no_other_out_of_its_page(client, auth):
    for n in range(6):
        change(client, f"p{n}@example.com")
    first = client.get(CONTACTS, query_string={"count": 3}, headers=auth).json
    change(client, "p0@example.com", "Unsubscribed")
    rest = client.get(
        CONTACTS, query_string={"count": 3, "cursor": first["nextPageCursor"]}, headers=auth
    ).json
    assert [c["emailAddress"] for c in first["data"] + rest["data"]] == [
        f"p{n}@example.com" for n in range(6)
    ]
    assert rest["nextPageCursor"] is None


def test_seeding_a_contact_change_keeps_its_profile_fields_and_names_bad_fields(client):
    jane = change(client, "Jane@Example.com", segmentationFieldValues={"1006": "u-1"})
    assert (jane["emailAddress"], jane["subscribeDate"], jane["segmentationFieldValues"]) == (
        "jane@example.com",
        "2026-11-22T12:00:00.000",
        {"1006": "u-1"},
    )
    for body, field in [
        ({"subscriptionState": "Subscribed", "unsubscribeDate": NOON}, "unsubscribeDate"),
        ({"subscriptionState": "Unsubscribed", "subscribeDate": NOON}, "subscribeDate"),
        ({"subscriptionState": "Subscribed", "subscribeDate": "noon"}, "subscribeDate"),
        (
            {"subscriptionState": "Subscribed", "segmentationFieldValues": {"9": "x"}},
            "segmentationFieldValues",
        ),
    ]:
        response = client.post(
            "/_sandbox/contacts", json={"list_id": 12345, "emailAddress": "a@example.com", **body}
        )
        assert response.status_code == 400, response.json
        assert list(response.json["fields"]) == [field], response.json
