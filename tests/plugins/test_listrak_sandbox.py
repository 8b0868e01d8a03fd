"""The local Listrak look-alike: auth, contacts, profile fields, bulk route, faults, latency."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from connector.testing import wait_until
from plugins.listrak.sandbox import create_sandbox_app, faults, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
CONTACT = "/email/v1/List/12345/Contact"
BULK = "/email/v1/List/12345/Contact/SegmentationField"
CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
}


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(clock):
    return create_sandbox_app(clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


def token(client, **overrides) -> str:
    response = client.post("/OAuth2/Token", data={**CREDENTIALS, **overrides})
    assert response.status_code == 200, response.json
    return response.json["access_token"]


@pytest.fixture
def auth(client):
    return {"Authorization": f"Bearer {token(client)}"}


def post_contact(client, auth, body, query=""):
    return client.post(f"{CONTACT}{query}", json=body, headers=auth)


def subscribe(client, auth, email="jane@example.com", **extra):
    return post_contact(client, auth, {"emailAddress": email, **extra})


def unsubscribe(client, auth, email="jane@example.com", **extra):
    return post_contact(client, auth, {"emailAddress": email, "subscriptionState": "Unsubscribed", **extra})


def state(client) -> dict:
    return client.get("/_sandbox/state").json


def fault(client, **spec):
    response = client.post("/_sandbox/faults", json=spec)
    assert response.status_code == 201, response.json


# -- auth ---------------------------------------------------------------------------------------


def test_token_is_issued_for_form_encoded_client_credentials(client):
    response = client.post("/OAuth2/Token", data=CREDENTIALS)
    assert response.status_code == 200
    assert response.json["token_type"] == "bearer"
    assert response.json["expires_in"] == 3599
    assert state(client)["requests"]["token_fetches"] == {"sandbox-client": 1}


def test_token_endpoint_takes_form_encoding_only(client):
    response = client.post("/OAuth2/Token", json=CREDENTIALS)
    assert response.status_code == 400
    assert response.json == {"error": "invalid_request"}


def test_token_refused_for_bad_secret_or_unknown_client(client):
    for overrides in ({"client_secret": "wrong"}, {"client_id": "nobody"}, {"client_secret": ""}):
        response = client.post("/OAuth2/Token", data={**CREDENTIALS, **overrides})
        assert response.status_code == 400
        assert response.json == {"error": "Invalid Credentials"}


def test_api_refuses_missing_bad_or_expired_token(client, clock):
    unauthorized = {
        "status": 401,
        "error": "ERROR_UNAUTHORIZED",
        "message": "Authorization was denied for this request.",
    }
    assert client.get("/email/v1/List/12345").json == unauthorized
    bad = client.get("/email/v1/List/12345", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    headers = {"Authorization": f"Bearer {token(client)}"}
    assert client.get("/email/v1/List/12345", headers=headers).status_code == 200
    clock.now += 3600
    response = client.get("/email/v1/List/12345", headers=headers)
    assert response.status_code == 401
    assert response.json == unauthorized


# -- contacts -----------------------------------------------------------------------------------


def test_body_without_json_content_type_is_415(client, auth):
    response = client.post(
        CONTACT, data='{"emailAddress": "a@example.com"}', headers=auth, content_type="text/plain"
    )
    assert response.status_code == 415
    assert response.json["error"] == "ERROR_UNSUPPORTED_CONTENT_TYPE"
    charset = client.post(
        CONTACT,
        data='{"emailAddress": "a@example.com"}',
        headers=auth,
        content_type="application/json; charset=utf-8",
    )
    assert charset.status_code == 201


def test_invalid_json_is_malformed(client, auth):
    response = client.post(CONTACT, data="{nope", headers=auth, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "ERROR_MALFORMED_REQUEST_BODY"


def test_subscribe_creates_201_then_updates_200(client, auth):
    values = [{"segmentationFieldId": 1001, "value": "+15555555555"}]
    first = subscribe(client, auth, "Jane@Example.com", segmentationFieldValues=values)
    assert first.status_code == 201
    assert first.json == {"status": 201, "resourceId": "jane@example.com"}
    second = subscribe(
        client,
        auth,
        segmentationFieldValues=[{"segmentationFieldId": 1003, "value": "Jane"}],
        externalContactID="u-1",
    )
    assert second.status_code == 200
    assert second.json["status"] == 200
    got = client.get(f"{CONTACT}/JANE@example.com", headers=auth).json["data"]
    assert got["subscriptionState"] == "Subscribed"
    assert got["externalContactID"] == "u-1"
    assert {v["segmentationFieldId"]: v["value"] for v in got["segmentationFieldValues"]} == {
        1001: "+15555555555",
        1003: "Jane",
    }
    stored = state(client)["lists"]["12345"]["contacts"]["jane@example.com"]
    assert stored["segmentationFieldValues"] == {"1001": "+15555555555", "1003": "Jane"}


def test_overwrite_replaces_profile_values(client, auth):
    subscribe(client, auth, segmentationFieldValues=[{"segmentationFieldId": 1001, "value": "1"}])
    post_contact(
        client,
        auth,
        {
            "emailAddress": "jane@example.com",
            "segmentationFieldValues": [{"segmentationFieldId": 1003, "value": "Jane"}],
        },
        "?updateType=Overwrite",
    )
    stored = state(client)["lists"]["12345"]["contacts"]["jane@example.com"]
    assert stored["segmentationFieldValues"] == {"1003": "Jane"}


def test_contact_body_and_query_are_checked_strictly(client, auth):
    cases = [
        ({"emailAddress": "not-an-email"}, "", "ERROR_INVALID_PARAMETER"),
        ({"emailAddress": "a@example.com", "subscriptionState": "Pending"}, "", "ERROR_INVALID_PARAMETER"),
        (
            {
                "emailAddress": "a@example.com",
                "segmentationFieldValues": [{"segmentationFieldId": 999, "value": "x"}],
            },
            "",
            "ERROR_INVALID_PARAMETER",
        ),
        (
            {
                "emailAddress": "a@example.com",
                "segmentationFieldValues": [{"segmentationFieldId": "1001", "value": "x"}],
            },
            "",
            "ERROR_INVALID_PARAMETER",
        ),
        (
            {
                "emailAddress": "a@example.com",
                "segmentationFieldValues": [{"segmentationFieldId": 6789, "value": "true"}],
            },
            "",
            "ERROR_INVALID_PARAMETER",
        ),
        (
            {
                "emailAddress": "a@example.com",
                "segmentationFieldValues": [
                    {"segmentationFieldId": 1001, "value": "1"},
                    {"segmentationFieldId": 1001, "value": "2"},
                ],
            },
            "",
            "ERROR_SEGMENTATION_FIELD_DEFINED_TWICE",
        ),
        ({"emailAddress": "a@example.com", "email": "x"}, "", "ERROR_MALFORMED_REQUEST_BODY"),
        (["a@example.com"], "", "ERROR_MALFORMED_REQUEST_BODY"),
        ({"emailAddress": "a@example.com"}, "?overideUnsubscribe=true", "ERROR_INVALID_PARAMETER"),
        ({"emailAddress": "a@example.com"}, "?updateType=Merge", "ERROR_INVALID_PARAMETER"),
        ({"emailAddress": "a@example.com"}, "?overrideUnsubscribe=yes", "ERROR_INVALID_PARAMETER"),
    ]
    for body, query, error in cases:
        response = post_contact(client, auth, body, query)
        assert (response.status_code, response.json["error"]) == (400, error), (body, query)
    assert state(client)["lists"]["12345"]["contacts"] == {}


def test_unknown_list_is_404(client, auth):
    response = client.post("/email/v1/List/999/Contact", json={"emailAddress": "a@example.com"}, headers=auth)
    assert response.status_code == 404
    assert response.json["error"] == "ERROR_UNABLE_TO_LOCATE_RESOURCE"
    assert client.get(f"{CONTACT}/nobody@example.com", headers=auth).status_code == 404


def test_unsubscribe_with_profile_data_or_events_is_refused(client, auth):
    subscribe(client, auth)
    with_fields = unsubscribe(
        client, auth, segmentationFieldValues=[{"segmentationFieldId": 1003, "value": "Jane"}]
    )
    assert with_fields.status_code == 400
    assert with_fields.json["error"] == "ERROR_UNSUBSCRIBE_WITH_SEGMENTATION_DATA"
    with_events = post_contact(
        client, auth, {"emailAddress": "jane@example.com", "subscriptionState": "Unsubscribed"}, "?eventIds=7"
    )
    assert with_events.json["error"] == "ERROR_UNSUBSCRIBE_WITH_EVENTS"
    stored = state(client)["lists"]["12345"]["contacts"]["jane@example.com"]
    assert stored["subscriptionState"] == "Subscribed"


def test_resubscribe_refused_without_override_and_accepted_with_it(client, auth):
    subscribe(client, auth)
    assert unsubscribe(client, auth).status_code == 200
    refused = subscribe(client, auth)
    assert refused.status_code == 400
    assert refused.json == {
        "status": 400,
        "error": "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS",
        "message": "The emailAddress has already been unsubscribed from the list.",
    }
    accepted = post_contact(client, auth, {"emailAddress": "jane@example.com"}, "?overrideUnsubscribe=true")
    assert accepted.status_code == 200
    stored = state(client)["lists"]["12345"]["contacts"]["jane@example.com"]
    assert stored["subscriptionState"] == "Subscribed"
    assert stored["unsubscribeDate"] is None


def test_opt_out_of_unknown_contact_is_not_subscribed(client, auth):
    response = unsubscribe(client, auth, "ghost@example.com")
    assert response.status_code == 400
    assert response.json["error"] == "ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS"


def test_unsubscribe_twice_is_idempotent(client, auth):
    subscribe(client, auth)
    assert unsubscribe(client, auth).status_code == 200
    first = state(client)["lists"]["12345"]["contacts"]["jane@example.com"]
    assert unsubscribe(client, auth).json == {"status": 200, "resourceId": "jane@example.com"}
    assert state(client)["lists"]["12345"]["contacts"]["jane@example.com"] == first


def test_contacts_page_with_cursor(client, auth):
    for i in range(5):
        subscribe(client, auth, f"p{i}@example.com")
    seen, cursor = [], "Start"
    while cursor:
        page = client.get(f"{CONTACT}?count=2&cursor={cursor}", headers=auth).json
        seen += [c["emailAddress"] for c in page["data"]]
        cursor = page["nextPageCursor"]
    assert seen == [f"p{i}@example.com" for i in range(5)]
    assert client.get(f"{CONTACT}?count=5001", headers=auth).status_code == 400


# -- bulk profile fields, lists, field groups ---------------------------------------------------


def test_bulk_route_creates_and_merges_and_is_recorded(client, auth):
    subscribe(client, auth, segmentationFieldValues=[{"segmentationFieldId": 1003, "value": "J"}])
    body = [
        {
            "emailAddress": "jane@example.com",
            "segmentationFieldValues": [{"segmentationFieldId": 6789, "value": "on"}],
        },
        {
            "emailAddress": "new@example.com",
            "segmentationFieldValues": [{"segmentationFieldId": 6790, "value": "off"}],
        },
    ]
    response = client.post(BULK, json=body, headers=auth)
    assert response.status_code == 201
    assert response.json["status"] == 201
    assert response.json["resourceId"]
    now = state(client)
    contacts = now["lists"]["12345"]["contacts"]
    assert contacts["jane@example.com"]["segmentationFieldValues"] == {"1003": "J", "6789": "on"}
    assert contacts["new@example.com"]["subscriptionState"] == "Subscribed"
    assert now["requests"]["bulk_calls"] == [{"list_id": 12345, "items": 2}]
    assert now["requests"]["per_route"]["POST /List/<listId>/Contact/SegmentationField"] == 1


def test_bulk_route_validates_shape_and_names_the_index(client, auth):
    not_array = client.post(BULK, json={"emailAddress": "a@example.com"}, headers=auth)
    assert not_array.json["error"] == "ERROR_MALFORMED_REQUEST_BODY"
    good = {
        "emailAddress": "a@example.com",
        "segmentationFieldValues": [{"segmentationFieldId": 6789, "value": "on"}],
    }
    bad = {
        "emailAddress": "b@example.com",
        "segmentationFieldValues": [{"segmentationFieldId": 1234, "value": "on"}],
    }
    response = client.post(BULK, json=[good, bad], headers=auth)
    assert response.status_code == 400
    assert response.json["error"] == "ERROR_INVALID_PARAMETER"
    assert "[1]" in response.json["message"]
    too_many = client.post(BULK, json=[good] * 10_001, headers=auth)
    assert too_many.status_code == 400
    assert state(client)["requests"]["bulk_calls"] == []


def test_list_and_field_groups_describe_profile_fields(client, auth):
    listed = client.get("/email/v1/List/12345", headers=auth).json["data"]
    assert listed["listId"] == 12345
    assert listed["listName"] == "Referral opt-ins"
    groups = client.get("/email/v1/List/12345/SegmentationFieldGroup", headers=auth).json["data"]
    assert [(g["segmentationFieldGroupId"], g["segmentationFieldGroupName"]) for g in groups] == [
        (10, "Referral profile"),
        (20, "Audiences"),
    ]
    fields = client.get(
        "/email/v1/List/12345/SegmentationFieldGroup/10/SegmentationField", headers=auth
    ).json["data"]
    assert [(f["segmentationFieldId"], f["segmentationFieldName"], f["dataType"]) for f in fields][:2] == [
        (1001, "phone_number", "Text"),
        (1002, "share_link", "Text"),
    ]
    second = client.get("/email/v1/List/456/SegmentationFieldGroup/30/SegmentationField", headers=auth).json[
        "data"
    ]
    assert [(f["segmentationFieldId"], f["dataType"]) for f in second] == [(6789, "CheckBox")]
    missing = client.get("/email/v1/List/12345/SegmentationFieldGroup/99/SegmentationField", headers=auth)
    assert missing.status_code == 404
    assert client.get("/email/v1/List/1/SegmentationFieldGroup", headers=auth).status_code == 404


def test_custom_lists_and_clients(clock):
    app = create_sandbox_app(
        clients={"c": "s"},
        lists={
            "7": {
                "listName": "Mine",
                "segmentationFieldGroups": {"1": {"name": "G", "fields": {"5": {"name": "f"}}}},
            }
        },
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token(client, client_id='c', client_secret='s')}"}
    response = client.post(
        "/email/v1/List/7/Contact",
        headers=headers,
        json={
            "emailAddress": "a@example.com",
            "segmentationFieldValues": [{"segmentationFieldId": 5, "value": "x"}],
        },
    )
    assert response.status_code == 201


# -- faults -------------------------------------------------------------------------------------


def test_500_fault_applies_to_the_next_n_requests(client, auth):
    fault(client, mode="500", count=2)
    assert [subscribe(client, auth).status_code for _ in range(3)] == [500, 500, 201]
    assert state(client)["faults"] == []


def test_503_and_429_faults_carry_retry_after(client, auth):
    fault(client, mode="503", count=1, retry_after=3)
    fault(client, mode="429", count=1, retry_after=1.5)
    unavailable = subscribe(client, auth)
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "3"
    limited = subscribe(client, auth)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json["status"] == 429
    assert subscribe(client, auth).status_code == 201


def test_fault_ratio_picks_that_share_and_delete_clears(client, auth):
    fault(client, mode="500", ratio=0)
    assert subscribe(client, auth).status_code == 201
    fault(client, mode="500", ratio=1)
    assert subscribe(client, auth).status_code == 500
    assert client.delete("/_sandbox/faults").status_code == 200
    assert subscribe(client, auth).status_code == 200


def test_answer_fault_answers_anything_for_one_contact(client, auth):
    body = {"error": {"code": "ERROR_X"}, "message": ["bad"]}
    fault(client, mode="answer", email="Odd@Example.com", answer={"status": 400, "json": body})
    assert subscribe(client, auth, email="jane@example.com").status_code == 201
    for _ in range(2):  # until cleared: every request naming the contact
        odd = subscribe(client, auth, email="odd@example.com")
        assert (odd.status_code, odd.json, odd.mimetype) == (400, body, "application/json")
    assert state(client)["requests"]["per_contact"] == {"jane@example.com": 1, "odd@example.com": 2}


def test_answer_fault_sends_bytes_repeated_with_its_type_and_headers(client, auth):
    answer = {
        "status": 200,
        "body_base64": "/wA=",
        "repeat": 3,
        "content_type": "text/html",
        "headers": {"X-A": "1"},
    }
    fault(client, mode="answer", count=1, answer=answer)
    odd = subscribe(client, auth)
    assert (odd.status_code, odd.data, odd.headers["Content-Type"], odd.headers["X-A"]) == (
        200,
        b"\xff\x00" * 3,
        "text/html",
        "1",
    )
    assert subscribe(client, auth).status_code == 201


def test_fault_spec_is_validated(client):
    for spec in (
        {"mode": "boom"},
        {"mode": "500", "count": 0},
        {"mode": "500", "ratio": 2},
        {"mode": "500", "extra": 1},
        {"mode": "answer"},
        {"mode": "500", "answer": {"status": 400}},
        {"mode": "answer", "answer": {"status": 400, "body": "a", "json": 1}},
        {"mode": "answer", "answer": {"status": 400, "body_base64": "!"}},
        {"mode": "answer", "answer": {"status": 400, "body": "a", "repeat": 10**9}},
    ):
        assert client.post("/_sandbox/faults", json=spec).status_code == 400


def test_control_errors_name_the_field(client):
    response = client.post("/_sandbox/faults", json={"mode": "500", "count": 0})
    assert response.json == {
        "error": "count: Must be greater than or equal to 1.",
        "fields": {"count": ["Must be greater than or equal to 1."]},
    }
    assert client.post("/_sandbox/latency", json={"ms": "5"}).json["fields"] == {
        "ms": ["Not a valid number."]
    }


def test_expire_token_fault_invalidates_issued_tokens_once(client, auth):
    fault(client, mode="expire_token")
    assert subscribe(client, auth).status_code == 401
    assert subscribe(client, auth).status_code == 401
    fresh = {"Authorization": f"Bearer {token(client)}"}
    assert subscribe(client, fresh).status_code == 201


def test_refuse_credentials_fault_refuses_tokens_until_used_up_or_cleared(client):
    fault(client, mode="refuse_credentials", count=1)
    refused = client.post("/OAuth2/Token", data=CREDENTIALS)
    assert refused.status_code == 400
    assert refused.json == {"error": "Invalid Credentials"}
    assert client.post("/OAuth2/Token", data=CREDENTIALS).status_code == 200
    fault(client, mode="refuse_credentials")
    assert client.post("/OAuth2/Token", data=CREDENTIALS).status_code == 400
    assert client.post("/OAuth2/Token", data=CREDENTIALS).status_code == 400
    client.delete("/_sandbox/faults")
    assert client.post("/OAuth2/Token", data=CREDENTIALS).status_code == 200


def hang(client, auth) -> tuple[threading.Thread, dict]:
    """A subscribe request sent from another thread, once the sandbox has taken it into a hang."""
    answer = {}
    request = threading.Thread(target=lambda: answer.update(r=subscribe(client, auth)))
    request.start()
    wait_until(
        lambda: state(client)["faults_applied"].get("hang") == 1, timeout=10, message="the request hanging"
    )
    return request, answer


def test_hang_fault_holds_the_request_until_the_faults_are_cleared(client, auth):
    fault(client, mode="hang", count=1, hang_seconds=30)
    request, answer = hang(client, auth)
    assert request.is_alive()
    client.delete("/_sandbox/faults")
    request.join(10)
    assert answer["r"].status_code == 201


def test_hang_fault_ends_by_itself_after_its_time(client, auth):
    fault(client, mode="hang", count=1, hang_seconds=0.2)
    request, answer = hang(client, auth)
    request.join(10)
    assert answer["r"].status_code == 201
    assert state(client)["faults"] == []


def test_latency_is_added_to_api_and_token_requests(client, auth, monkeypatch):
    slept = []
    # The sandbox's own sleep only: other threads of the test process (a store's checkpoint,
    # an app's intake log) sleep too, and would land in the list now and then.
    monkeypatch.setattr(faults, "time", SimpleNamespace(sleep=slept.append))
    assert client.post("/_sandbox/latency", json={"ms": 50}).json == {"ms": 50.0}
    assert subscribe(client, auth).status_code == 201
    assert client.post("/OAuth2/Token", data=CREDENTIALS).status_code == 200
    assert slept == [0.05, 0.05]
    assert client.post("/_sandbox/latency", json={"ms": -1}).status_code == 400


def test_state_counts_and_reset(client, auth):
    subscribe(client, auth)
    client.get("/email/v1/List/12345", headers=auth)
    now = state(client)
    assert now["requests"]["total"] == 2
    assert now["requests"]["per_route"]["POST /List/<listId>/Contact"] == 1
    assert now["requests"]["per_route"]["POST /OAuth2/Token"] == 1
    assert now["requests"]["per_status"] == {"200": 2, "201": 1}
    assert now["requests"]["per_client"] == {"sandbox-client": 2}
    assert client.get("/_sandbox/requests").json == now["requests"]  # the counts alone
    assert client.post("/_sandbox/reset").status_code == 200
    after = state(client)
    assert after["lists"]["12345"]["contacts"] == {}
    assert after["requests"]["total"] == 0
    assert after["requests"]["per_route"] == {}
    assert after["faults"] == []


# -- served for real ----------------------------------------------------------------------------


@pytest.fixture
def served():
    server, base = serve_in_thread()
    session = requests.Session()
    response = session.post(f"{base}/OAuth2/Token", data=CREDENTIALS, timeout=5)
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    yield base, session
    session.close()
    server.shutdown()
    server.server_close()


def test_drop_fault_closes_the_connection_without_a_response(served):
    base, session = served
    requests.post(f"{base}/_sandbox/faults", json={"mode": "drop", "count": 1}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        session.post(f"{base}{CONTACT}", json={"emailAddress": "a@example.com"}, timeout=5)
    response = session.post(f"{base}{CONTACT}", json={"emailAddress": "a@example.com"}, timeout=5)
    assert response.status_code == 201
    assert requests.get(f"{base}/_sandbox/state", timeout=5).json()["faults_applied"] == {"drop": 1}


def test_hang_fault_makes_a_real_client_time_out(served):
    base, session = served
    requests.post(f"{base}/_sandbox/faults", json={"mode": "hang", "count": 1, "hang_seconds": 5}, timeout=5)
    with pytest.raises(requests.Timeout):
        session.get(f"{base}/email/v1/List/12345", timeout=0.3)
    requests.delete(f"{base}/_sandbox/faults", timeout=5)


def test_module_entry_point_prints_its_address():
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugins.listrak.sandbox", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Listrak sandbox on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/_sandbox/state", timeout=5).ok
    finally:
        proc.terminate()
        proc.wait(10)
