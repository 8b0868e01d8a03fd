"""Every Live View page and admin API route needs CONNECTOR_ADMIN_TOKEN (bearer or the login
session); browser state changes also need the session's CSRF token."""

from __future__ import annotations

import re

import pytest

from connector.app import create_app
from plugins.extole.testing import referral_event

TOKEN = "test-admin-token"
PUBLIC = {"live.login", "live.login_post", "live.static"}


#: The address of a consent story (a number: an email would show in a redirect's body).
ADDRESS = "15555555555"


def guarded_routes(app) -> list[tuple[str, str]]:
    """(method, url) of every route under /live and /admin, ids filled with 1, addresses with
    ADDRESS."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/live", "/admin")) or rule.endpoint in PUBLIC:
            continue
        url = re.sub(r"<(?:int:)?\w+>", "1", rule.rule.replace("<address>", ADDRESS))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, url))
    return routes


def login(client, token=TOKEN):
    return client.post("/live/login", data={"token": token, "next": "/live"})


def csrf_of(client) -> str:
    page = client.get("/live/events/1").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def delivered(post_events):
    """One event with one (queued) delivery, so id 1 exists for every route."""
    assert post_events(referral_event()).status_code == 202


def test_routes_cover_live_view_and_admin_api(app):
    urls = {url for _, url in guarded_routes(app)}
    assert {
        "/live",
        "/live/events/1",
        "/live/logout",
        "/live/deliveries/1/replay",
        "/admin/api/events",
        "/admin/api/events/1",
        "/admin/api/deliveries/1",
        "/admin/api/summary",
        "/admin/api/replay",
        f"/admin/api/contacts/{ADDRESS}",
        f"/live/contacts/{ADDRESS}",
    } <= urls


def test_every_route_refuses_a_missing_token(app, client, delivered):
    for method, url in guarded_routes(app):
        response = client.open(url, method=method)
        if method == "GET" and url.startswith("/live"):
            assert response.status_code == 302, url
            assert response.headers["Location"].startswith("/live/login?next="), url
        else:
            assert response.status_code == 401, (method, url)
        assert b"jane.doe" not in response.data


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token", f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN]
)
def test_every_route_refuses_a_wrong_token(app, client, delivered, header):
    for n, (method, url) in enumerate(guarded_routes(app)):
        # each from its own address: the 11th failure from one address would be a 429
        address = {"REMOTE_ADDR": f"198.51.100.{n}"}
        response = client.open(url, method=method, headers={"Authorization": header}, environ_base=address)
        assert response.status_code == 401, (method, url)
        assert b"jane.doe" not in response.data


def test_a_wrong_bearer_is_refused_even_with_a_valid_session(client, delivered):
    login(client)
    response = client.get("/admin/api/events", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_the_right_bearer_opens_every_read_route(app, client, delivered, requests_mock):
    # requests_mock: a consent story reads the partner live; here nothing answers it.
    for method, url in guarded_routes(app):
        if method != "GET":
            continue
        response = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, url


def test_without_an_admin_token_configured_everything_is_refused(runtime, monkeypatch):
    monkeypatch.delenv("CONNECTOR_ADMIN_TOKEN")
    app = create_app({"TESTING": True}, runtime=runtime)
    client = app.test_client()
    for method, url in guarded_routes(app):
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            assert client.open(url, method=method, headers=headers).status_code == 403, url
    assert login(client, "").status_code == 401
    assert b"CONNECTOR_ADMIN_TOKEN" in client.get("/live/login").data


def test_login_with_a_wrong_token_sets_no_session(client):
    response = login(client, "guess")
    assert response.status_code == 401
    assert b"not the admin token" in response.data
    assert client.get("/admin/api/summary").status_code == 401


def test_login_sets_a_session_cookie_that_opens_pages_and_api(client, delivered):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/live"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("connector_session=")
    assert "; HttpOnly" in cookie
    assert TOKEN not in cookie
    assert client.get("/live").status_code == 200
    assert client.get("/admin/api/events").json["events"][0]["email"] == "jane.doe@example.com"


def test_session_cookie_is_secure_http_only_and_same_site_strict(client):
    cookie = login(client).headers["Set-Cookie"]
    attributes = {
        part.strip().split("=")[0]: part.strip().partition("=")[2] for part in cookie.split(";")[1:]
    }
    assert (attributes.get("Secure"), attributes.get("HttpOnly"), attributes.get("SameSite")) == (
        "",
        "",
        "Strict",
    )


def test_login_only_redirects_inside_the_live_view(client):
    for target in (
        "https://evil.example/live",
        "//evil.example/live",
        "/admin/api/events",
        "/live\\@evil.example",
        "/live/../admin",
        "/live\r\nSet-Cookie: x=1",
        "/live/\u4e2d",
        "/live/" + "a" * 3000,
    ):
        response = client.post("/live/login", data={"token": TOKEN, "next": target})
        assert response.headers["Location"] == "/live", target
    response = client.post("/live/login", data={"token": TOKEN, "next": "/live/events/7?x=1"})
    assert response.headers["Location"] == "/live/events/7?x=1"


def test_replay_without_the_csrf_token_is_refused(client, delivered, runtime):
    login(client)
    assert client.post("/live/deliveries/1/replay").status_code == 403
    assert client.post("/live/deliveries/1/replay", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/admin/api/replay", json={"delivery_ids": [1]}).status_code == 403
    assert (
        client.post(
            "/admin/api/replay", json={"delivery_ids": [1]}, headers={"X-CSRF-Token": "forged"}
        ).status_code
        == 403
    )
    assert client.post("/live/logout").status_code == 403


def test_replay_with_the_csrf_token_goes_through(client, delivered):
    login(client)
    token = csrf_of(client)
    response = client.post("/admin/api/replay", json={"delivery_ids": [1]}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    response = client.post("/live/deliveries/1/replay", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/live/events/1"


def test_bearer_calls_need_no_csrf_token(client, delivered):
    response = client.post(
        "/admin/api/replay", json={"delivery_ids": [1]}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200


def test_logout_ends_the_session(client):
    login(client)
    token = csrf_of(client)
    assert client.post("/live/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/api/summary").status_code == 401


def test_rotating_the_admin_token_ends_the_sessions_it_opened(runtime, monkeypatch):
    first = create_app({"TESTING": True}, runtime=runtime).test_client()
    login(first)
    cookie = first.get_cookie("connector_session").value
    monkeypatch.setenv("CONNECTOR_ADMIN_TOKEN", "rotated-admin-token")
    rotated = create_app({"TESTING": True}, runtime=runtime).test_client()
    rotated.set_cookie("connector_session", cookie)
    assert rotated.get("/admin/api/summary").status_code == 401


def test_pages_forbid_framing_and_caching(client):
    login(client)
    response = client.get("/live")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
