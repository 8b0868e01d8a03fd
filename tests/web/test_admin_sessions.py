"""Browser sessions kept in the store: logging out ends a session everywhere (a copied cookie
opens nothing afterwards), sessions end after 30 minutes idle or 8 hours, the store holds only
a hash of each id; the cookie's key is CONNECTOR_SECRET_KEY or one generated once and shared
through the store; an admin token under 16 characters refuses to boot."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from connector.app import create_app
from connector.config import ConfigError
from connector.outbox.tables import admin_keys, admin_sessions
from connector.testing import ROOT, free_port
from connector.web.sessions import ABSOLUTE, IDLE
from plugins.extole.testing import referral_event, sign
from tests.conftest import TEST_ENV
from tests.web.test_admin_access import csrf_of, login


def session_ids(runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return list(conn.execute(select(admin_sessions.c.id_hash)).scalars())


def cookie_session(app, client) -> dict:
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.loads(client.get_cookie("connector_session").value)


def copy_of(app, client):
    thief = app.test_client()
    thief.set_cookie("connector_session", client.get_cookie("connector_session").value)
    return thief


def test_a_copied_cookie_stops_working_after_logout(app, client):
    login(client)
    thief = copy_of(app, client)
    assert thief.get("/admin/api/summary").status_code == 200
    assert client.post("/live/logout", data={"csrf_token": csrf_of(client)}).status_code == 302
    assert thief.get("/admin/api/summary").status_code == 401
    assert thief.get("/live").status_code == 302


def test_logout_in_one_web_process_ends_the_session_in_another(app, runtime, client):
    login(client)
    other = create_app({"TESTING": True}, runtime=runtime)
    thief = copy_of(other, client)
    client.post("/live/logout", data={"csrf_token": csrf_of(client)})
    assert thief.get("/admin/api/summary").status_code == 401


def test_the_store_keeps_only_a_hash_of_the_session_id(app, runtime, client):
    login(client)
    session_id = cookie_session(app, client)["sid"]
    assert session_ids(runtime) == [hashlib.sha256(session_id.encode()).hexdigest()]


def test_logging_in_again_replaces_the_session(app, runtime, client):
    login(client)
    first = copy_of(app, client)
    login(client)
    assert len(session_ids(runtime)) == 1
    assert first.get("/admin/api/summary").status_code == 401
    assert client.get("/admin/api/summary").status_code == 200


def test_a_session_ends_after_30_minutes_without_a_request(client, clock):
    login(client)
    clock.advance(IDLE - 1)
    assert client.get("/admin/api/summary").status_code == 200
    clock.advance(IDLE - 1)
    assert client.get("/admin/api/summary").status_code == 200
    clock.advance(IDLE)
    assert client.get("/admin/api/summary").status_code == 401


def test_a_session_ends_8_hours_after_login_however_busy(client, clock):
    login(client)
    for _ in range(int(ABSOLUTE // (25 * 60))):  # 19 × 25 minutes: 7 h 55 min
        clock.advance(25 * 60)
        assert client.get("/admin/api/summary").status_code == 200
    clock.advance(5 * 60)
    assert client.get("/admin/api/summary").status_code == 401


def test_ended_sessions_leave_the_store_at_the_next_login(app, runtime, client, clock):
    login(client)
    clock.advance(ABSOLUTE)
    login(app.test_client())
    assert len(session_ids(runtime)) == 1


# -- the cookie's key -------------------------------------------------------------------------
def stored_keys(runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return list(conn.execute(select(admin_keys.c.value)).scalars())


def test_without_a_configured_key_one_is_generated_once_and_shared(runtime, monkeypatch):
    first = create_app({"TESTING": True}, runtime=runtime)
    monkeypatch.setenv("CONNECTOR_ADMIN_TOKEN", "another-admin-token-value")
    second = create_app({"TESTING": True}, runtime=runtime)
    (stored,) = stored_keys(runtime)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == bytes.fromhex(stored)
    assert len(first.config["SECRET_KEY"]) == 32


def test_a_cookie_signed_in_one_web_process_opens_another(app, runtime, client):
    login(client)
    other = create_app({"TESTING": True}, runtime=runtime)
    assert copy_of(other, client).get("/admin/api/summary").status_code == 200


def test_the_configured_secret_key_signs_the_cookie(runtime, monkeypatch):
    key = "k" * 40
    monkeypatch.setenv("CONNECTOR_SECRET_KEY", key)
    app = create_app({"TESTING": True}, runtime=runtime)
    assert app.config["SECRET_KEY"] == key.encode()
    assert stored_keys(runtime) == []
    assert runtime.redactor.text(f"key={key}") == "key=***"


def test_a_short_secret_key_refuses_to_boot(runtime, monkeypatch):
    monkeypatch.setenv("CONNECTOR_SECRET_KEY", "k" * 31)
    with pytest.raises(ConfigError, match="CONNECTOR_SECRET_KEY is 31 characters long: it needs at least 32"):
        create_app({"TESTING": True}, runtime=runtime)


def test_an_admin_token_under_16_characters_refuses_to_boot(runtime, monkeypatch):
    monkeypatch.setenv("CONNECTOR_ADMIN_TOKEN", "fifteen-chars!!")
    with pytest.raises(
        ConfigError, match="CONNECTOR_ADMIN_TOKEN is 15 characters long: it needs at least 16"
    ):
        create_app({"TESTING": True}, runtime=runtime)
    monkeypatch.setenv("CONNECTOR_ADMIN_TOKEN", "sixteen-chars!!!")
    assert create_app({"TESTING": True}, runtime=runtime).config["ADMIN_TOKEN"] == "sixteen-chars!!!"


@pytest.mark.e2e
def test_gunicorn_refuses_to_boot_with_a_short_admin_token(tmp_path):
    env = {
        **os.environ,
        **TEST_ENV,
        "CONNECTOR_ADMIN_TOKEN": "short",
        "CONNECTOR_CONFIG_DIR": str(ROOT / "config"),
        "CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path}/connector.db",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "CONNECTOR_ADMIN_TOKEN is 5 characters long: it needs at least 16" in done.stderr


def test_a_webhook_request_neither_reads_nor_renews_the_admin_session(app, client):
    login(client)
    body = json.dumps(referral_event("session-1")).encode()
    answer = client.post(
        "/webhooks/extole",
        data=body,
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
    )
    assert answer.status_code == 202
    assert "Set-Cookie" not in answer.headers
    renewed = client.get("/admin/api/summary")  # the same permanent session, renewed where it is used
    assert renewed.status_code == 200
    assert "connector_session=" in renewed.headers["Set-Cookie"]
