"""The admin sign-in limit: more than 10 failed sign-ins (login form or Bearer) from one address
within a minute are answered 429 with Retry-After, counted in the store so that separate app
instances (separate web processes) share one count; successful ones never count."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from connector.app import create_app
from connector.runtime import Runtime
from tests.web.test_admin_access import TOKEN, login

WRONG = {"Authorization": "Bearer wrong-token-wrong-token"}
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


def fail(client, times: int) -> list[int]:
    return [client.get("/admin/api/summary", headers=WRONG).status_code for _ in range(times)]


def test_the_eleventh_wrong_bearer_within_a_minute_is_429_with_retry_after(client, clock):
    assert fail(client, 10) == [401] * 10
    response = client.get("/admin/api/summary", headers=WRONG)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert response.json == {
        "error": "too many requests",
        "message": "too many failed sign-ins from your address: try again in 60 s",
    }


def test_a_full_window_refuses_the_right_token_too_until_it_moves_on(client, clock):
    fail(client, 10)
    clock.advance(30)
    assert client.get("/admin/api/summary", headers=RIGHT).status_code == 429
    clock.advance(29)
    assert client.get("/admin/api/summary", headers=RIGHT).headers["Retry-After"] == "1"
    clock.advance(1)
    assert client.get("/admin/api/summary", headers=RIGHT).status_code == 200
    assert fail(client, 10) == [401] * 10


def writes_during(engine, action) -> list[str]:
    """The statements that write (or take the writer) while `action` runs."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_attempts_over_the_limit_write_nothing_to_the_store(client, runtime, clock):
    assert writes_during(runtime.engine, lambda: fail(client, 10))  # each failure is one entry
    refused = []
    assert writes_during(runtime.engine, lambda: refused.extend(fail(client, 20))) == []
    assert refused == [429] * 20
    assert writes_during(runtime.engine, lambda: login(client, "guess-guess-guess")) == []


def test_failures_are_counted_in_a_moving_window(client, clock):
    assert fail(client, 6) == [401] * 6
    clock.advance(40)
    assert fail(client, 4) == [401] * 4
    clock.advance(20)  # the first six left the window; the last four are 20 s old
    assert fail(client, 6) == [401] * 6
    response = client.get("/admin/api/summary", headers=WRONG)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "40")


def test_right_tokens_never_count(client, clock):
    assert [client.get("/admin/api/summary", headers=RIGHT).status_code for _ in range(30)] == [200] * 30
    assert fail(client, 9) == [401] * 9
    assert client.post("/live/login", data={"token": TOKEN}).status_code == 302
    assert fail(client, 1) == [401]
    assert fail(client, 1) == [429]


def test_login_form_and_bearer_failures_share_one_count(client, clock):
    assert [login(client, "guess-guess-guess").status_code for _ in range(5)] == [401] * 5
    assert fail(client, 5) == [401] * 5
    response = login(client, TOKEN)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "60")
    assert b"too many failed sign-ins from your address: try again in 60 s" in response.data
    assert response.headers["Content-Type"].startswith("text/html")
    assert client.get_cookie("connector_session") is None


def test_a_signed_in_browser_is_not_limited(client, clock):
    login(client)
    fail(client, 11)
    assert client.get("/live").status_code == 200
    assert client.get("/admin/api/summary").status_code == 200


def test_other_addresses_are_counted_apart(client, clock):
    fail(client, 11)
    other = {"REMOTE_ADDR": "198.51.100.7"}
    assert client.get("/admin/api/summary", headers=WRONG, environ_base=other).status_code == 401
    assert client.get("/admin/api/summary", headers=RIGHT, environ_base=other).status_code == 200


def test_forwarded_addresses_are_ignored_unless_proxies_are_trusted(client, clock):
    for n in range(11):
        status = client.get(
            "/admin/api/summary", headers={**WRONG, "X-Forwarded-For": f"203.0.113.{n}"}
        ).status_code
    assert status == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(runtime, monkeypatch, clock):
    monkeypatch.setenv("CONNECTOR_TRUSTED_PROXIES", "1")
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    attacker = {**WRONG, "X-Forwarded-For": "203.0.113.5"}
    assert [client.get("/admin/api/summary", headers=attacker).status_code for _ in range(11)] == [
        401
    ] * 10 + [429]
    admin = {**RIGHT, "X-Forwarded-For": "203.0.113.6"}
    assert client.get("/admin/api/summary", headers=admin).status_code == 200


@pytest.mark.parametrize("value", ["-1", "one", "11", "²"])
def test_a_trusted_proxies_setting_that_is_not_a_small_number_refuses_to_boot(runtime, monkeypatch, value):
    monkeypatch.setenv("CONNECTOR_TRUSTED_PROXIES", value)
    with pytest.raises(Exception, match="CONNECTOR_TRUSTED_PROXIES must be a number of proxies from 0 to 10"):
        create_app({"TESTING": True}, runtime=runtime)


def test_wrong_webhook_signatures_are_not_admin_sign_ins(post_events, client, clock):
    assert [post_events({"bad": 1}, secret="not-the-secret").status_code for _ in range(12)] == [401] * 12
    assert client.get("/admin/api/summary", headers=RIGHT).status_code == 200


def test_webhooks_and_health_checks_never_run_the_limiter(post_events, client, monkeypatch):
    from flask_limiter import Limiter

    checked = []
    monkeypatch.setattr(Limiter, "identify_request", lambda self: checked.append(1) or "endpoint")
    post_events({"bad": 1}, secret="not-the-secret")
    client.get("/healthz")
    client.get("/admin/api/summary")  # no credential: nothing to count
    assert checked == []
    client.get("/admin/api/summary", headers=WRONG)
    assert checked == [1]


def two_web_processes(config_dir, database_url):
    """Two apps, each with its own runtime and engine on one database: two web processes."""
    return [
        create_app({"TESTING": True}, runtime=Runtime.build(str(config_dir), database_url)).test_client()
        for _ in range(2)
    ]


def test_separate_web_processes_share_one_count(config_dir, database_url, clock):
    first, second = two_web_processes(config_dir, database_url)
    assert fail(first, 5) + fail(second, 5) == [401] * 10
    assert fail(first, 1) == [429]
    assert fail(second, 1) == [429]


def test_separate_web_processes_share_one_count_on_postgres(config_dir, postgres_url, clock):
    first, second = two_web_processes(config_dir, postgres_url)
    assert fail(first, 4) + fail(second, 6) == [401] * 10
    assert fail(second, 1) + fail(first, 1) == [429, 429]
