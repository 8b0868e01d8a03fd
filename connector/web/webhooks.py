"""POST /webhooks/<source_id>: authenticate, validate, plan, commit, then answer 202."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from connector import metrics
from connector.contract import PayloadError, Unauthorized
from connector.outbox.intake import ingest

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("connector.webhooks")


def _reject(source_id: str, status: int, error: str, **extra):
    metrics.EVENTS_RECEIVED.labels(source=source_id, result=error).inc()
    return jsonify(error=error, **extra), status


@bp.post("/webhooks/<source_id>")
def receive(source_id: str):
    runtime = current_app.extensions["connector"]
    source_config = runtime.config.sources.get(source_id)
    if source_config is None:
        return jsonify(error="unknown source", message=f"no source {source_id!r} is configured"), 404
    if request.mimetype != "application/json":
        return _reject(
            source_id,
            415,
            "unsupported content type",
            message="send the events with Content-Type: application/json",
        )
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        runtime.verify_inbound(source_config, request.headers, body)
    except Unauthorized as exc:
        return _reject(source_id, 401, "unauthorized", message=str(exc))
    source = runtime.registry.sources[source_config["plugin"]]
    try:
        parsed = source.parse(body, source_config)
    except PayloadError as exc:
        return _reject(source_id, 400, "invalid payload", problems=exc.problems)
    items = [(event, runtime.plan(source_id, event)) for event in parsed]
    result = ingest(runtime.engine, source_id, items, runtime.due_delays)
    metrics.EVENTS_RECEIVED.labels(source=source_id, result="accepted").inc(result.accepted)
    metrics.EVENTS_RECEIVED.labels(source=source_id, result="duplicate").inc(result.duplicates)
    for event, planned in items:
        log.info(
            "event %s from %s: %s %s for %d partner deliveries",
            event.event_id,
            source_id,
            event.type,
            event.email or "-",
            len(planned),
        )
    return jsonify(accepted=result.accepted, duplicates=result.duplicates), 202
