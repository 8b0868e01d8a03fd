"""Admin access, shared by the Live View and the admin API.

Every route needs CONNECTOR_ADMIN_TOKEN (at least 16 characters: a shorter one refuses to
boot), either as `Authorization: Bearer <token>` (scripts) or through the session the
/live/login form starts (browsers). With the token unset, everything is refused.

The session cookie is Secure, HttpOnly and SameSite=Strict, signed with CONNECTOR_SECRET_KEY (or
a key generated once and kept in the store), and names a session kept in the store
(`sessions.py`): logging out ends it in every web process, and it ends by itself after 30
minutes idle or 8 hours. A session opened with one admin token stops working once the token
changes. Failed sign-ins are rate limited (`ratelimit.py`). A state change made through the
session also needs its CSRF token (form field `csrf_token` or header `X-CSRF-Token`); bearer
calls carry no ambient credentials, so they do not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface

from connector.config import ConfigError
from connector.web import ratelimit, sessions

ADMIN_TOKEN_ENV = "CONNECTOR_ADMIN_TOKEN"
MIN_ADMIN_TOKEN = 16
MAX_ID = 2**63 - 1
log = logging.getLogger("connector.admin")


def admin_token() -> str | None:
    return current_app.config.get("ADMIN_TOKEN") or None


def authenticate() -> str | None:
    """How this request proves it is the admin: "bearer", "session", or None. An
    Authorization header that is present but wrong is refused even beside a valid cookie."""
    token = admin_token()
    if token is None:
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return "bearer"
        return None
    mark = session.get("mark")
    if (
        isinstance(mark, str)
        and hmac.compare_digest(mark, current_app.config["ADMIN_TOKEN_MARK"])
        and sessions.alive(current_app.extensions["connector"].engine, session.get("sid"))
    ):
        return "session"
    return None


def sign_in() -> None:
    """Start a session for this browser (a new id, and a new CSRF token)."""
    engine = current_app.extensions["connector"].engine
    session_id = sessions.start(engine, previous=session.get("sid"))
    session.clear()
    session.permanent = True
    session["sid"] = session_id
    session["mark"] = current_app.config["ADMIN_TOKEN_MARK"]
    csrf_token()


def sign_out() -> None:
    sessions.end(current_app.extensions["connector"].engine, session.get("sid"))
    session.clear()


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    if g.get("admin_via") == "bearer":
        return True
    expected = session.get("csrf") or ""
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def refusal() -> tuple[str, int] | None:
    """Why this request may not go on (message, status), or None when it may."""
    if admin_token() is None:
        return f"admin access is disabled: set {ADMIN_TOKEN_ENV}", 403
    g.admin_via = authenticate()
    if g.admin_via is None:
        return "missing or wrong admin token", 401
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok():
        return "missing or wrong CSRF token", 403
    return None


class AdminSessions(SecureCookieSessionInterface):
    """The signed session cookie, opened only where an admin signs in: the Live View and the
    admin API. Every other request (webhooks, the hot path; health; metrics) gets Flask's null
    session without reading the cookie or building a signer, and never sets one."""

    PREFIXES = ("/live", "/admin/")

    def open_session(self, app, request):
        if not request.path.startswith(self.PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


def secure_headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def configure(app: Flask) -> None:
    """The admin token (refused when too short), the cookie's signing key and settings, the
    sign-in rate limit; the token and key are kept out of logs."""
    token = app.config.get("ADMIN_TOKEN") or os.environ.get(ADMIN_TOKEN_ENV) or None
    if token is not None and len(token) < MIN_ADMIN_TOKEN:
        raise ConfigError(
            [f"{ADMIN_TOKEN_ENV} is {len(token)} characters long: it needs at least {MIN_ADMIN_TOKEN}"]
        )
    app.config["ADMIN_TOKEN"] = token
    runtime = app.extensions["connector"]
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = sessions.secret_key(runtime.engine)
    key = app.config["SECRET_KEY"]
    key = key if isinstance(key, bytes) else key.encode()
    # Which admin token opened a session, without keeping the token or a plain hash of it.
    app.config["ADMIN_TOKEN_MARK"] = hmac.new(key, (token or "").encode(), hashlib.sha256).hexdigest()
    app.session_interface = AdminSessions()
    app.config.update(
        SESSION_COOKIE_NAME="connector_session",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=sessions.ABSOLUTE),
    )
    ratelimit.install(app, runtime.engine)
    if os.environ.get(sessions.SECRET_KEY_ENV):
        runtime.redactor.keep(os.environ[sessions.SECRET_KEY_ENV])
    if token:
        runtime.redactor.keep(token)
    else:
        log.warning("%s is not set: the Live View and admin API refuse every request", ADMIN_TOKEN_ENV)
