"""OAUTH_LISTRAK: the form-encoded client-credentials request, one cached token shared by all
threads and refreshed early, the 401 refetch, and refused credentials pausing the key."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest

from connector.contract import InvalidCredentials, OutboundRequest
from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_attempts, stored_breakers, stored_deliveries
from plugins.extole.testing import referral_event
from plugins.listrak.oauth import LEEWAY, ListrakOAuth, TokenError
from plugins.listrak.testing import API, TOKEN_URL

CONTACT = f"{API}/List/12345/Contact"
SECRET = "prod-secret-value"
KEY = {
    "partner_key_id": "listrak-production",
    "name": "Listrak production",
    "type": "WEBHOOK",
    "algorithm": "OAUTH_LISTRAK",
    "client_id": "prod-client",
    "key": SECRET,
    "authorization_url": TOKEN_URL,
    "scope": "",
}


def token_answer(token: str, expires_in: int = 3599) -> dict:
    return {
        "status_code": 200,
        "json": {"access_token": token, "token_type": "bearer", "expires_in": expires_in},
    }


def authorize(credentials) -> str:
    request = OutboundRequest("POST", CONTACT)
    credentials.apply(request)
    return request.headers["Authorization"]


@pytest.fixture
def credentials():
    return ListrakOAuth(KEY, timeout=5)


@pytest.fixture
def contact_ok(requests_mock):
    return requests_mock.post(CONTACT, status_code=201, json={"status": 201})


# -- the token request ------------------------------------------------------------------------


def test_token_request_is_form_encoded_client_credentials(credentials, listrak_token):
    assert authorize(credentials) == "Bearer tok-1"
    request = listrak_token.last_request
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(request.text, keep_blank_values=True) == {
        "grant_type": ["client_credentials"],
        "client_id": ["prod-client"],
        "client_secret": [SECRET],
    }
    assert "Authorization" not in request.headers


def test_scope_is_sent_when_configured(requests_mock):
    token = requests_mock.post(TOKEN_URL, **token_answer("tok-s"))
    authorize(ListrakOAuth({**KEY, "scope": "contact list"}, timeout=5))
    assert parse_qs(token.last_request.text)["scope"] == ["contact list"]


# -- reuse, threads, expiry ---------------------------------------------------------------------


def test_token_is_reused_across_many_deliveries(post_events, runtime, listrak_token, contact_ok):
    events = [referral_event(f"e-{i}", email=f"p{i}@example.com") for i in range(25)]
    assert post_events(events).json["accepted"] == 25
    assert Worker(runtime).run_once() == 25
    assert listrak_token.call_count == 1
    assert contact_ok.call_count == 25
    assert {r.headers["Authorization"] for r in contact_ok.request_history} == {"Bearer tok-1"}


def test_one_fetch_when_many_threads_need_a_token_at_once(credentials, requests_mock):
    threads = 16
    asking = threading.Semaphore(0)

    def ask(_):
        asking.release()
        return authorize(credentials)

    def slow_token(request, context):
        # The token endpoint answers only once every thread has asked for a token.
        for _ in range(threads):
            assert asking.acquire(timeout=10), "not every thread asked for a token"
        return {"access_token": "tok-shared", "token_type": "bearer", "expires_in": 3599}

    token = requests_mock.post(TOKEN_URL, json=slow_token)
    with ThreadPoolExecutor(threads) as pool:
        headers = list(pool.map(ask, range(threads)))
    assert headers == ["Bearer tok-shared"] * threads
    assert token.call_count == 1


def test_runtime_shares_one_credentials_object_per_key(runtime):
    assert runtime.credentials("listrak-production") is runtime.credentials("listrak-production")
    assert runtime.credentials("listrak-production") is not runtime.credentials("listrak-staging")


def test_token_is_refreshed_before_expiry_by_the_margin(credentials, requests_mock, clock):
    token = requests_mock.post(TOKEN_URL, [token_answer("tok-1"), token_answer("tok-2")])
    assert authorize(credentials) == "Bearer tok-1"
    clock.advance(3599 - LEEWAY - 1)
    assert authorize(credentials) == "Bearer tok-1"
    assert token.call_count == 1
    clock.advance(2)
    assert authorize(credentials) == "Bearer tok-2"
    assert token.call_count == 2


def test_token_that_could_run_out_during_a_request_is_not_used(runtime, requests_mock, clock):
    """A request and its retry after a 401 take up to 2 × worker.http_timeout."""
    credentials = runtime.credentials("listrak-production")
    requests_mock.post(TOKEN_URL, [token_answer("tok-1"), token_answer("tok-2")])
    assert authorize(credentials) == "Bearer tok-1"
    clock.advance(3599 - 2 * runtime.config.settings["worker"]["http_timeout"])
    assert authorize(credentials) == "Bearer tok-2"


# -- 401 from the API ---------------------------------------------------------------------------


def test_401_refetches_the_token_once_and_retries_at_once(post_events, runtime, requests_mock):
    token = requests_mock.post(TOKEN_URL, [token_answer("tok-1"), token_answer("tok-2")])
    contact = requests_mock.post(
        CONTACT,
        [
            {
                "status_code": 401,
                "json": {
                    "status": 401,
                    "error": "ERROR_UNAUTHORIZED",
                    "message": "Authorization was denied for this request.",
                },
            },
            {"status_code": 201, "json": {"status": 201}},
        ],
    )
    post_events(referral_event())
    assert Worker(runtime).run_once() == 1
    assert token.call_count == 2
    assert [r.headers["Authorization"] for r in contact.request_history] == ["Bearer tok-1", "Bearer tok-2"]
    assert contact.request_history[0].json() == contact.request_history[1].json()
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 1)


def test_second_401_is_not_refetched_again(post_events, runtime, requests_mock):
    token = requests_mock.post(TOKEN_URL, [token_answer("tok-1"), token_answer("tok-2")])
    contact = requests_mock.post(
        CONTACT, status_code=401, json={"status": 401, "error": "ERROR_UNAUTHORIZED", "message": "denied"}
    )
    post_events(referral_event())
    Worker(runtime).run_once()
    assert token.call_count == 2
    assert contact.call_count == 2
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "retrying"
    assert delivery["last_error_code"] == "ERROR_UNAUTHORIZED"


def test_refresh_does_not_drop_a_token_another_thread_already_renewed(credentials, requests_mock):
    requests_mock.post(TOKEN_URL, [token_answer("tok-1"), token_answer("tok-2")])
    assert authorize(credentials) == "Bearer tok-1"
    credentials.refresh()
    assert authorize(credentials) == "Bearer tok-2"
    other = threading.Thread(target=credentials.refresh)  # this thread never used tok-2
    other.start()
    other.join()
    assert authorize(credentials) == "Bearer tok-2"


# -- refused credentials and unusable answers --------------------------------------------------


def test_invalid_credentials_raise(credentials, requests_mock):
    requests_mock.post(TOKEN_URL, status_code=400, json={"error": "Invalid Credentials"})
    with pytest.raises(InvalidCredentials, match="Invalid Credentials"):
        authorize(credentials)


def test_invalid_credentials_pause_deliveries_instead_of_killing_them(
    post_events, runtime, requests_mock, clock
):
    token = requests_mock.post(TOKEN_URL, status_code=400, json={"error": "Invalid Credentials"})
    contact = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_events([referral_event("a", email="a@example.com"), referral_event("b", email="b@example.com")])
    Worker(runtime).run_once()
    assert contact.call_count == 0
    assert token.call_count == 1  # the refusal is remembered, not asked again per delivery
    first, second = stored_deliveries(after_planning(runtime))
    assert (first["state"], first["attempts"], first["last_error_code"]) == (
        "paused",
        0,
        "INVALID_CREDENTIALS",
    )
    # the other one, claimed in the same round, is handed back untouched: it waits for the probe
    assert (second["state"], second["attempts"], second["lease_owner"]) == ("queued", 0, None)
    (breaker,) = stored_breakers(runtime)
    assert (breaker["scope"], breaker["state"], breaker["probe_at"]) == (
        "key:listrak-production",
        "paused",
        clock.at + runtime.config.settings["breaker"]["probe_interval"],
    )
    assert Worker(runtime).run_once() == 0  # the paused key is not claimed before its probe


def test_paused_key_resumes_when_the_probe_succeeds(post_events, runtime, requests_mock, monkeypatch):
    monkeypatch.setattr("plugins.listrak.oauth.REFUSAL_MEMORY", 0.0)
    token = requests_mock.post(
        TOKEN_URL, [{"status_code": 400, "json": {"error": "Invalid Credentials"}}, token_answer("tok-ok")]
    )
    contact = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_events(referral_event())
    Worker(runtime).run_once()
    make_probe_due(runtime)
    assert Worker(runtime).run_once() == 1
    assert token.call_count == 2
    assert contact.call_count == 1
    assert stored_deliveries(after_planning(runtime))[0]["state"] == "delivered"
    assert stored_breakers(runtime) == []


def make_probe_due(runtime):
    from sqlalchemy import update

    from connector.outbox.tables import breakers, deliveries

    with runtime.engine.begin() as conn:
        conn.execute(update(breakers).values(probe_at=0))
        conn.execute(update(deliveries).values(next_attempt_at=0))


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 200, "json": {"token_type": "bearer", "expires_in": 3599}},
        {"status_code": 200, "json": {"access_token": "", "token_type": "bearer"}},
    ],
)
def test_response_without_access_token_is_an_error(credentials, requests_mock, answer):
    requests_mock.post(TOKEN_URL, **answer)
    with pytest.raises(TokenError, match="no access_token"):
        authorize(credentials)


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 200, "json": {"token_type": "bearer", "expires_in": 3599}},
        {"status_code": 503, "text": "<html>maintenance</html>"},
    ],
)
def test_unusable_token_answer_retries_the_delivery(post_events, runtime, requests_mock, answer):
    requests_mock.post(TOKEN_URL, **answer)
    contact = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_events(referral_event())
    Worker(runtime).run_once()
    assert contact.call_count == 0
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "retrying"
    assert delivery["reason"].startswith("token endpoint: ")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"status_code": 400, "json": {"error": ["slow", "down"]}}, "token endpoint error: slow; down"),
        ({"status_code": 400, "json": {"error": 42}}, "token endpoint error: 42"),
        ({"status_code": 400, "json": {"error": None}}, "token endpoint error: oauth_error"),
        ({"status_code": 200, "json": {"access_token": {"a": 1}}}, "an access_token that is not a string"),
        ({"status_code": 200, "json": {"access_token": 7}}, "an access_token that is not a string"),
        ({"status_code": 200, "json": {"access_token": "t", "expires_in": "soon"}}, "answer is unreadable: "),
        ({"status_code": 200, "json": {"access_token": "t", "expires_in": [1]}}, "answer is unreadable: "),
        ({"status_code": 200, "json": [1, 2]}, "answer is unreadable: Token endpoint response is not a JSON"),
        ({"status_code": 200, "text": "<html>" + "x" * 300_000}, "answer is unreadable: Token endpoint"),
        ({"status_code": 200, "text": "[" * 5000 + "]" * 5000}, "answer is JSON nested too deep to read"),
    ],
)
def test_an_odd_token_answer_is_a_clear_bounded_failure(post_events, runtime, requests_mock, answer, reason):
    requests_mock.post(TOKEN_URL, **answer)
    contact = requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_events(referral_event())
    Worker(runtime).run_once()
    assert contact.call_count == 0
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "retrying"
    assert reason in delivery["reason"]
    assert len(delivery["reason"]) < 300


def test_an_error_object_naming_refused_credentials_pauses_the_key(credentials, requests_mock):
    requests_mock.post(TOKEN_URL, status_code=400, json={"error": {"code": "invalid_client"}})
    with pytest.raises(InvalidCredentials, match=r"refused the credentials \(invalid_client\)"):
        authorize(credentials)


# -- secrets stay secret ----------------------------------------------------------------------------


def test_secret_and_token_never_stored_or_logged(post_events, runtime, requests_mock, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("connector"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    requests_mock.post(TOKEN_URL, [token_answer("tok-first-value"), token_answer("tok-second-value")])
    requests_mock.post(
        CONTACT,
        [
            {
                "status_code": 401,
                "json": {
                    "status": 401,
                    "error": "ERROR_UNAUTHORIZED",
                    "message": "token tok-first-value was denied",
                },
            },
            {
                "status_code": 400,
                "json": {
                    "status": 400,
                    "error": "ERROR_INVALID_PARAMETER",
                    "message": "bad request for tok-second-value",
                },
            },
        ],
    )
    post_events(referral_event())
    Worker(runtime).run_once()
    (attempt,) = stored_attempts(runtime)
    (delivery,) = stored_deliveries(after_planning(runtime))
    stored = str(attempt) + str(delivery)
    assert "ERROR_INVALID_PARAMETER" in stored
    for secret in (SECRET, "tok-first-value", "tok-second-value"):
        assert secret not in stored
        assert secret not in caplog.text
    assert attempt["request"]["headers"]["Authorization"] == "Bearer ***"
    assert delivery["last_error_message"] == "bad request for ***"


def test_secret_not_logged_when_credentials_are_refused(
    post_events, runtime, requests_mock, caplog, monkeypatch
):
    monkeypatch.setattr(logging.getLogger("connector"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    requests_mock.post(
        TOKEN_URL,
        status_code=400,
        json={"error": "Invalid Credentials", "error_description": f"client_secret {SECRET} unknown"},
    )
    post_events(referral_event())
    Worker(runtime).run_once()
    assert "paused" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in str(stored_attempts(runtime)) + str(stored_breakers(runtime))
