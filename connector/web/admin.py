"""The JSON admin API under /admin/api (admin token: see `access.py`)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify, request

from connector.outbox import intake
from connector.outbox.replay import replay
from connector.web import arguments, overview, readmodel, story
from connector.web.access import MAX_ID, refusal, secure_headers
from connector.web.refusals import MAX_KEPT

log = logging.getLogger("connector.admin")

api = Blueprint("admin_api", __name__, url_prefix="/admin/api")


@api.before_request
def _guard():
    refused = refusal()
    if refused is not None:
        message, status = refused
        response = jsonify(error="forbidden" if status == 403 else "unauthorized", message=message)
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
        filters, before, limit = arguments.listing(request)
    except arguments.ArgumentError as exc:
        return _bad(str(exc))
    page = readmodel.recent_events(runtime.engine, filters, before, limit)
    return jsonify(
        page | {"filters": filters.as_args(), "counts": readmodel.outcome_counts(runtime.engine, filters)}
    )


@api.get("/events/<int:event_pk>")
def get_event(event_pk: int):
    runtime = current_app.extensions["connector"]
    event = readmodel.event_detail(runtime.engine, event_pk, runtime.redactor) if event_pk <= MAX_ID else None
    if event is None:
        return _bad(f"no event {event_pk}", 404)
    return jsonify(event)


@api.get("/deliveries/<int:delivery_id>")
def get_delivery(delivery_id: int):
    runtime = current_app.extensions["connector"]
    event_pk = readmodel.delivery_event_pk(runtime.engine, delivery_id) if delivery_id <= MAX_ID else None
    event = readmodel.event_detail(runtime.engine, event_pk, runtime.redactor) if event_pk else None
    if event is None:
        return _bad(f"no delivery {delivery_id}", 404)
    (delivery,) = [d for d in event.pop("deliveries") if d["id"] == delivery_id]
    return jsonify(delivery | {"event": event})


@api.get("/contacts/<address>")
def contact_story(address: str):
    """One person's consent story for an email address or a phone number: every consent event
    carrying it with each change's outcome, the connector's last word per contact, and (unless
    `live=false`) what each partner holds now, read live."""
    runtime = current_app.extensions["connector"]
    try:
        whom = story.parse_address(address)
        live = arguments.story(request)["live"]
    except (story.AddressError, arguments.ArgumentError) as exc:
        return _bad(str(exc))
    return jsonify(story.story(runtime, whom, live=live))


@api.get("/summary")
def summary():
    """Counts per outcome (with the same filters as /events), accepted events no worker has
    planned yet (`waiting_to_plan`), the paused keys and open circuits that hold deliveries
    back, each pull source's latest poll, and the last purge."""
    runtime = current_app.extensions["connector"]
    try:
        filters = arguments.filters(request)
    except arguments.ArgumentError as exc:
        return _bad(str(exc))
    return jsonify(
        {
            "counts": readmodel.outcome_counts(runtime.engine, filters),
            "waiting_to_plan": intake.waiting_count(runtime.engine),
            **readmodel.breakers(runtime.engine),
            "pull_sources": readmodel.pull_sources(runtime.engine, sorted(runtime.config.pull_sources)),
            "last_purge": overview.last_purge(runtime.engine),
        }
    )


@api.get("/refusals")
def refusals_route():
    """The newest refused inbound requests (time, source, status, reason), newest first."""
    limit = request.args.get("limit", str(MAX_KEPT))
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_KEPT):
        return _bad(f"limit: a number from 1 to {MAX_KEPT}")
    return jsonify(refusals=current_app.extensions["refusals"].recent(int(limit)))


@api.get("/overview")
def overview_route():
    """The Live View's chart figures as JSON: `window` (1h, 24h or 7d) and `partner`."""
    runtime = current_app.extensions["connector"]
    window = request.args.get("window") or overview.DEFAULT_WINDOW
    if window not in overview.WINDOWS:
        return _bad(f"window: one of {', '.join(overview.WINDOWS)}")
    try:
        partner = arguments.filters(request).partner
    except arguments.ArgumentError as exc:
        return _bad(str(exc))
    pull_sources = readmodel.pull_sources(runtime.engine, sorted(runtime.config.pull_sources))
    return jsonify(overview.overview(runtime.engine, window, partner, pull_sources))


def replay_deliveries(**selection) -> dict[str, int]:
    runtime = current_app.extensions["connector"]
    counts = replay(runtime.engine, runtime=runtime, **selection)
    log.info(
        "replay by admin (%s): %s → %s", g.get("admin_via"), {k: v for k, v in selection.items() if v}, counts
    )
    return counts


@api.post("/replay")
def replay_route():
    """Queue dead (or named) deliveries again, through the consent-order rule."""
    try:
        selection = arguments.replay_request(request)
    except arguments.ArgumentError as exc:
        return _bad(str(exc))
    return jsonify(replay_deliveries(**selection))
