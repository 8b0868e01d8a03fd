"""Admin access, shared by the Live View and the admin API.

Every route needs CONNECTOR_ADMIN_TOKEN, either as `Authorization: Bearer <token>` (scripts)
or through the session cookie that the /live/login form sets (browsers). With the token unset,
everything is refused. A state change made with the session cookie also needs the session's
CSRF token (form field `csrf_token` or header `X-CSRF-Token`); bearer calls carry no ambient
credentials, so they do not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from datetime import timedelta

from flask import Flask, current_app, g, request, session

ADMIN_TOKEN_ENV = "CONNECTOR_ADMIN_TOKEN"
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
    if session.get("admin") is True:
        return "session"
    return None


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    if g.get("admin_via") == "bearer":
        return True
    expected = session.get("csrf")
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


def secure_headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def derive_secret_key(token: str | None) -> bytes:
    """Signs session cookies. Derived from the admin token, so every gunicorn worker agrees
    and rotating the token logs everyone out; random (sessions unusable) without a token."""
    if not token:
        return secrets.token_bytes(32)
    return hmac.new(token.encode(), b"connector live view session", hashlib.sha256).digest()


def configure(app: Flask) -> None:
    """Session cookie settings and the signing key; the admin token is kept out of logs."""
    token = app.config.get("ADMIN_TOKEN") or os.environ.get(ADMIN_TOKEN_ENV) or None
    app.config["ADMIN_TOKEN"] = token
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = derive_secret_key(token)
    app.config.update(
        SESSION_COOKIE_NAME="connector_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    runtime = app.extensions["connector"]
    if token:
        runtime.redactor.keep(token)
    else:
        log.warning("%s is not set: the Live View and admin API refuse every request", ADMIN_TOKEN_ENV)
