"""Admin access: the JSON admin API under /admin/api and the guard shared with the Live View.

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
from datetime import datetime, timedelta

from flask import Blueprint, Flask, current_app, g, jsonify, request, session

from connector import views
from connector.replay import replay

ADMIN_TOKEN_ENV = "CONNECTOR_ADMIN_TOKEN"
MAX_ID = 2**63 - 1
MAX_REPLAY_IDS = 1000
log = logging.getLogger("connector.admin")

api = Blueprint("admin_api", __name__, url_prefix="/admin/api")


# -- access -----------------------------------------------------------------------------------
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
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode()):
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


@api.before_request
def _guard():
    refused = refusal()
    if refused is not None:
        message, status = refused
        response = jsonify(error="forbidden" if status == 403 else "unauthorized",
                           message=message)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="connector admin"'
        return response, status
    return None


api.after_request(secure_headers)


def _bad(message: str, status: int = 400):
    return jsonify(error="bad request" if status == 400 else "not found", message=message), status


# -- the API ----------------------------------------------------------------------------------
@api.get("/events")
def list_events():
    """Recent events with their deliveries, newest first; page on with `before=next_before`."""
    runtime = current_app.extensions["connector"]
    try:
        filters = views.Filters.parse(request.args)
        before, limit = views.page_args(request.args)
    except views.FilterError as exc:
        return _bad(str(exc))
    page = views.recent_events(runtime.engine, filters, before, limit)
    return jsonify(page | {"filters": filters.as_args(),
                           "counts": views.outcome_counts(runtime.engine, filters)})


@api.get("/events/<int:event_pk>")
def get_event(event_pk: int):
    runtime = current_app.extensions["connector"]
    event = views.event_detail(runtime.engine, event_pk, runtime.redactor) if event_pk <= MAX_ID \
        else None
    if event is None:
        return _bad(f"no event {event_pk}", 404)
    return jsonify(event)


@api.get("/deliveries/<int:delivery_id>")
def get_delivery(delivery_id: int):
    runtime = current_app.extensions["connector"]
    event_pk = views.delivery_event_pk(runtime.engine, delivery_id) if delivery_id <= MAX_ID \
        else None
    event = views.event_detail(runtime.engine, event_pk, runtime.redactor) if event_pk else None
    if event is None:
        return _bad(f"no delivery {delivery_id}", 404)
    (delivery,) = [d for d in event.pop("deliveries") if d["id"] == delivery_id]
    return jsonify(delivery | {"event": event})


@api.get("/summary")
def summary():
    """Counts per outcome (with the same filters as /events) and the paused keys and open
    circuits that hold deliveries back."""
    runtime = current_app.extensions["connector"]
    try:
        filters = views.Filters.parse(request.args)
    except views.FilterError as exc:
        return _bad(str(exc))
    return jsonify({"counts": views.outcome_counts(runtime.engine, filters),
                    **views.breakers(runtime.engine)})


def parse_replay(body) -> dict:
    """Arguments for `replay()` from a JSON body; ValueError names the problem."""
    if not isinstance(body, dict):
        raise ValueError("send a JSON object: {\"delivery_ids\": [...]} or {\"dead\": true}")
    unknown = sorted(set(body) - {"delivery_ids", "dead", "partner", "since"})
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    ids = body.get("delivery_ids") or []
    if not isinstance(ids, list) or len(ids) > MAX_REPLAY_IDS or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids):
        raise ValueError(f"delivery_ids: a list of at most {MAX_REPLAY_IDS} delivery ids")
    dead = body.get("dead", False)
    if not isinstance(dead, bool):
        raise ValueError("dead: true or false")
    if not ids and not dead:
        raise ValueError("name delivery_ids, or set dead: true (optionally with partner/since)")
    partner = body.get("partner")
    if partner is not None and not isinstance(partner, str):
        raise ValueError("partner: a partner id")
    since = body.get("since")
    if since is not None:
        try:
            moment = datetime.fromisoformat(str(since))
        except ValueError as exc:
            raise ValueError("since: an ISO-8601 time with offset") from exc
        if moment.tzinfo is None:
            raise ValueError("since: needs a UTC offset, e.g. 2026-11-22T05:00:00Z")
        since = moment.timestamp()
    return {"delivery_ids": ids or None, "dead": dead, "partner": partner, "since": since}


def replay_deliveries(**arguments) -> dict[str, int]:
    runtime = current_app.extensions["connector"]
    counts = replay(runtime.engine, runtime=runtime, **arguments)
    log.info("replay by admin (%s): %s → %s", g.get("admin_via"),
             {k: v for k, v in arguments.items() if v}, counts)
    return counts


@api.post("/replay")
def replay_route():
    """Queue dead (or named) deliveries again, through the consent-order rule."""
    try:
        arguments = parse_replay(request.get_json(silent=True))
    except ValueError as exc:
        return _bad(str(exc))
    return jsonify(replay_deliveries(**arguments))


# -- wiring -----------------------------------------------------------------------------------
def derive_secret_key(token: str | None) -> bytes:
    """Signs session cookies. Derived from the admin token, so every gunicorn worker agrees
    and rotating the token logs everyone out; random (sessions unusable) without a token."""
    if not token:
        return secrets.token_bytes(32)
    return hmac.new(token.encode(), b"connector live view session", hashlib.sha256).digest()


def init_app(app: Flask) -> None:
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
        log.warning("%s is not set: the Live View and admin API refuse every request",
                    ADMIN_TOKEN_ENV)

    from connector.web import live

    app.register_blueprint(api)
    app.register_blueprint(live.bp)
