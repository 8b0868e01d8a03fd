"""A partner's redirect is never followed: the delivery is dead with the redirect named (the
change did not reach the partner), nothing reaches the redirect's target, and a token
endpoint's redirect never carries the client secret anywhere."""

from __future__ import annotations

import pytest

from connector.delivery.worker import Worker
from connector.testing.store import after_planning, stored_attempts, stored_deliveries
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API, TOKEN_URL
from tests.http_servers import Server, json_answer

CONTACT = f"{API}/List/12345/Contact"
TOKEN = b'{"access_token": "tok-1", "token_type": "bearer", "expires_in": 3599}'


def test_a_redirect_from_the_contact_route_is_dead_and_not_followed(
    post_events, runtime, requests_mock, listrak_token
):
    elsewhere = requests_mock.post("https://elsewhere.test/Contact", status_code=200, json={})
    requests_mock.post(CONTACT, status_code=302, headers={"Location": "https://elsewhere.test/Contact"})
    assert post_events(referral_event()).status_code == 202
    assert Worker(runtime).run_once() == 1
    (delivery,) = stored_deliveries(after_planning(runtime))
    reason = "partner answered a redirect (HTTP 302 to elsewhere.test); not followed"
    assert (delivery["state"], delivery["reason"], delivery["last_status"]) == ("dead", reason, 302)
    assert stored_attempts(runtime)[0]["error_message"] == reason
    assert elsewhere.call_count == 0


def test_a_redirect_from_the_token_endpoint_sends_nothing_on(post_events, runtime, requests_mock):
    elsewhere = requests_mock.post("https://elsewhere.test/Token", json={"access_token": "stolen"})
    requests_mock.post(TOKEN_URL, status_code=307, headers={"Location": "https://elsewhere.test/Token"})
    contact = requests_mock.post(CONTACT, status_code=201, json={})
    assert post_events(referral_event()).status_code == 202
    assert Worker(runtime).run_once() == 1
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["reason"]) == (
        "retrying",
        "token endpoint: answered a redirect (HTTP 307 to elsewhere.test); not followed",
    )
    assert (elsewhere.call_count, contact.call_count) == (0, 0)


class TestOnRealServers:
    """The partner, its token endpoint and the redirect's target as real HTTP servers."""

    @pytest.fixture
    def servers(self):
        started = {
            "token": Server(json_answer(200, TOKEN)),
            "target": Server(json_answer(200)),
        }
        started["partner"] = Server(
            json_answer(307, headers={"Location": f"{started['target'].url}/email/v1/List/12345/Contact"})
        )
        yield started
        for server in started.values():
            server.close()

    @pytest.fixture
    def runtime(self, env, servers, monkeypatch, make_runtime):
        monkeypatch.setenv("LISTRAK_API_URL", f"{servers['partner'].url}/email/v1")
        monkeypatch.setenv("LISTRAK_AUTH_URL", f"{servers['token'].url}/OAuth2/Token")
        return make_runtime()

    def test_a_real_partner_redirect_reaches_no_other_server(self, post_events, runtime, servers):
        assert post_events(referral_event()).status_code == 202
        assert Worker(runtime).run_once() == 1
        (delivery,) = stored_deliveries(after_planning(runtime))
        assert (delivery["state"], delivery["reason"]) == (
            "dead",
            f"partner answered a redirect (HTTP 307 to {servers['target'].host}); not followed",
        )
        contact_calls = [r for r in servers["partner"].requests if r.path.endswith("/Contact")]
        assert (len(contact_calls), servers["target"].requests) == (1, [])
