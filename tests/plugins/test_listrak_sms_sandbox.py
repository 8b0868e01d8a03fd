"""The Listrak look-alike's SMS API: only an SMS integration's token opens it, each route is as
strict as Listrak's Swagger, contacts move between lists as Listrak moves them, and the Email
API's faults, latency and counts apply to it too."""

from __future__ import annotations

import pytest

from plugins.listrak.sandbox import create_sandbox_app

PHONE = "15555555555"
SUBSCRIBE = f"/sms/v1/ShortCode/123/Contact/{PHONE}/PhoneList/456"
CREATE = "/sms/v1/ShortCode/123/PhoneList/456/Contact"
UNSUBSCRIBE = f"/sms/v1/ShortCode/123/ContactUnsubscribe/{PHONE}/PhoneList/456"


@pytest.fixture
def app():
    return create_sandbox_app()


@pytest.fixture
def client(app):
    return app.test_client()


def token(client, client_id: str, secret: str) -> dict:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    answer = client.post("/OAuth2/Token", data=form)
    assert answer.status_code == 200
    return {"Authorization": f"Bearer {answer.json['access_token']}"}


@pytest.fixture
def sms(client) -> dict:
    return token(client, "sandbox-sms-client", "sandbox-sms-secret")


@pytest.fixture
def email(client) -> dict:
    return token(client, "sandbox-client", "sandbox-secret")


def state(client) -> dict:
    return client.get("/_sandbox/state").json["sms"]["123"]


def create(client, sms, **body):
    return client.post(CREATE, json={"phoneNumber": PHONE, **body}, headers=sms)


# -- who may call it ------------------------------------------------------------------------------
def test_only_an_sms_integration_opens_the_sms_api(client, sms, email):
    assert client.get("/sms/v1/ShortCode/123", headers=sms).status_code == 200
    refused = client.get("/sms/v1/ShortCode/123", headers=email)
    assert (refused.status_code, refused.json["error"]) == (401, "ERROR_UNAUTHORIZED")
    assert client.get("/email/v1/List/12345", headers=sms).status_code == 401
    assert client.get("/sms/v1/ShortCode/123").status_code == 401


# -- the routes, strictly -----------------------------------------------------------------------
def test_sender_code_and_phone_list_are_read_as_the_swagger_shows_them(client, sms):
    code = client.get("/sms/v1/ShortCode/123", headers=sms).json
    assert (code["status"], code["data"]["shortCodeId"], code["data"]["code"]) == (200, 123, "55555")
    phone_list = client.get("/sms/v1/ShortCode/123/PhoneList/456", headers=sms).json
    assert phone_list["data"][0]["phoneListId"] == 456
    assert phone_list["data"][0]["phoneListName"] == "Referral SMS"


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/sms/v1/ShortCode/999", "senderCodeId"),
        ("/sms/v1/ShortCode/123/PhoneList/999", "senderCodeId and phoneListId"),
        (f"/sms/v1/ShortCode/123/Contact/{PHONE}", "senderCodeId and phoneNumber"),
    ],
)
def test_unknown_resources_are_404_in_listrak_words(client, sms, path, what):
    answer = client.get(path, headers=sms)
    assert answer.status_code == 404
    assert answer.json == {
        "status": 404,
        "error": "ERROR_UNABLE_TO_LOCATE_RESOURCE",
        "message": f"Unable to locate a resource associated with the {what} supplied.",
    }


def test_subscribe_takes_only_numbers_the_sender_code_knows(client, sms):
    assert client.post(SUBSCRIBE, headers=sms).status_code == 404
    assert create(client, sms, firstName="Jane").status_code == 201
    assert (
        client.post("/sms/v1/ShortCode/123/Contact/15555555555/PhoneList/789", headers=sms).status_code == 201
    )
    lists = client.get(f"/sms/v1/ShortCode/123/Contact/{PHONE}/PhoneList", headers=sms).json["data"]
    assert [(row["phoneListId"], row["subscriptionState"]) for row in lists] == [
        (456, "Subscribed"),
        (789, "Subscribed"),
    ]


def test_create_subscribes_a_new_number_and_refuses_one_it_knows(client, sms):
    answer = create(client, sms, emailAddress="Jane@Example.com", firstName="Jane", lastName="Doe")
    assert answer.status_code == 201
    assert answer.json == {"status": 201, "resourceId": PHONE}
    contact = state(client)["contacts"][PHONE]
    assert (contact["emailAddress"], contact["firstName"], contact["optedOut"]) == (
        "jane@example.com",
        "Jane",
        False,
    )
    assert state(client)["phoneLists"]["456"]["contacts"][PHONE]["subscriptionState"] == "Subscribed"
    again = create(client, sms)
    assert (again.status_code, again.json["error"]) == (400, "ERROR_INVALID_PARAMETER")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"phoneNumber": "+15555555555"}, 400, "ERROR_INVALID_PARAMETER"),
        ({"phoneNumber": "5555"}, 400, "ERROR_INVALID_PARAMETER"),
        ({"phoneNumber": 15555555555}, 400, "ERROR_INVALID_PARAMETER"),
        ({}, 400, "ERROR_INVALID_PARAMETER"),
        ({"phoneNumber": PHONE, "emailAddress": "nope"}, 400, "ERROR_INVALID_PARAMETER"),
        ({"phoneNumber": PHONE, "phone": PHONE}, 400, "ERROR_MALFORMED_REQUEST_BODY"),
        ({"phoneNumber": PHONE, "firstName": 7}, 400, "ERROR_INVALID_PARAMETER"),
        ([{"phoneNumber": PHONE}], 400, "ERROR_MALFORMED_REQUEST_BODY"),
    ],
)
def test_create_checks_its_body(client, sms, body, status, error):
    answer = client.post(CREATE, json=body, headers=sms)
    assert (answer.status_code, answer.json["error"]) == (status, error)
    assert state(client)["contacts"] == {}


def test_create_wants_json(client, sms):
    answer = client.post(CREATE, data=f'{{"phoneNumber": "{PHONE}"}}', headers=sms)
    assert (answer.status_code, answer.json["error"]) == (415, "ERROR_UNSUPPORTED_CONTENT_TYPE")


def test_unknown_query_parameters_and_malformed_numbers_are_refused(client, sms):
    assert client.get("/sms/v1/ShortCode/123?verbose=true", headers=sms).status_code == 400
    bad = client.post("/sms/v1/ShortCode/123/Contact/+15555555555/PhoneList/456", headers=sms)
    assert (bad.status_code, bad.json["message"]) == (400, "An invalid value was supplied for phoneNumber.")


def test_unsubscribe_takes_only_a_number_on_the_list_and_is_idempotent(client, sms):
    assert client.delete(UNSUBSCRIBE, headers=sms).status_code == 404  # unknown number
    create(client, sms)
    assert (
        client.delete(
            f"/sms/v1/ShortCode/123/ContactUnsubscribe/{PHONE}/PhoneList/789", headers=sms
        ).status_code
        == 404
    )
    first = client.delete(UNSUBSCRIBE, headers=sms)
    assert (first.status_code, first.json) == (200, {"status": 200})
    assert client.delete(UNSUBSCRIBE, headers=sms).status_code == 200
    membership = state(client)["phoneLists"]["456"]["contacts"][PHONE]
    assert membership["subscriptionState"] == "Unsubscribed"
    assert membership["unsubscribeDate"]
    assert state(client)["contacts"][PHONE]["unsubscribeDate"] is None  # not an opt-out of the sender code
    assert client.post(SUBSCRIBE, headers=sms).status_code == 201
    assert state(client)["phoneLists"]["456"]["contacts"][PHONE]["subscriptionState"] == "Subscribed"


def test_get_contact_names_no_list_and_its_lists_page(client, sms):
    create(client, sms)
    contact = client.get(f"/sms/v1/ShortCode/123/Contact/{PHONE}", headers=sms).json["data"]
    assert contact["phoneNumber"] == PHONE
    assert "lists" not in contact
    assert contact["optedOut"] is False
    page = client.get(f"/sms/v1/ShortCode/123/Contact/{PHONE}/PhoneList?count=0", headers=sms)
    assert page.status_code == 400


# -- the same gate as the Email API -------------------------------------------------------------
def test_faults_latency_and_counts_apply_to_the_sms_routes(client, sms):
    route = "POST /sms/v1/ShortCode/<senderCodeId>/Contact/<phoneNumber>/PhoneList/<phoneListId>"
    assert (
        client.post("/_sandbox/faults", json={"mode": "503", "count": 1, "route": route}).status_code == 201
    )
    assert client.post(SUBSCRIBE, headers=sms).status_code == 503
    assert client.post(SUBSCRIBE, headers=sms).status_code == 404  # the fault is spent
    counts = client.get("/_sandbox/state").json["requests"]
    assert counts["per_route"][route] == 2
    assert counts["total"] == 2


def test_reset_forgets_sms_contacts(client, sms):
    create(client, sms)
    client.post("/_sandbox/reset")
    assert state(client)["contacts"] == {}


def test_a_fault_for_one_number_hits_only_its_requests(client, sms):
    other = "15550000000"
    assert client.post("/_sandbox/faults", json={"mode": "500", "email": PHONE}).status_code == 201
    assert create(client, sms).status_code == 500
    assert client.post(CREATE, json={"phoneNumber": other}, headers=sms).status_code == 201
    assert client.delete(UNSUBSCRIBE, headers=sms).status_code == 500
    assert client.get("/_sandbox/state").json["requests"]["per_contact"] == {PHONE: 2, other: 1}
