"""The JSON admin API under /admin/api (admin token: see `access.py`)."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, current_app, g, jsonify, request

from connector.outbox.replay import replay
from connector.web import readmodel
from connector.web.access import MAX_ID, refusal, secure_headers

MAX_REPLAY_IDS = 1000
log = logging.getLogger("connector.admin")

api = Blueprint("admin_api", __name__, url_prefix="/admin/api")


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
        filters = readmodel.Filters.parse(request.args)
        before, limit = readmodel.page_args(request.args)
    except readmodel.FilterError as exc:
        return _bad(str(exc))
    page = readmodel.recent_events(runtime.engine, filters, before, limit)
    return jsonify(page | {"filters": filters.as_args(),
                           "counts": readmodel.outcome_counts(runtime.engine, filters)})


@api.get("/events/<int:event_pk>")
def get_event(event_pk: int):
    runtime = current_app.extensions["connector"]
    event = readmodel.event_detail(runtime.engine, event_pk, runtime.redactor) if event_pk <= MAX_ID \
        else None
    if event is None:
        return _bad(f"no event {event_pk}", 404)
    return jsonify(event)


@api.get("/deliveries/<int:delivery_id>")
def get_delivery(delivery_id: int):
    runtime = current_app.extensions["connector"]
    event_pk = readmodel.delivery_event_pk(runtime.engine, delivery_id) if delivery_id <= MAX_ID \
        else None
    event = readmodel.event_detail(runtime.engine, event_pk, runtime.redactor) if event_pk else None
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
        filters = readmodel.Filters.parse(request.args)
    except readmodel.FilterError as exc:
        return _bad(str(exc))
    return jsonify({"counts": readmodel.outcome_counts(runtime.engine, filters),
                    **readmodel.breakers(runtime.engine)})


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
