"""POST /webhooks/<source_id>: authenticate, validate, commit, then answer 202 (a worker plans
the deliveries: see connector.outbox.intake).

A source may also answer routes under /webhooks/<source_id>/ shaped like its sender's own API
(`Source.calls`): the same road, answered the way that API answers (`Source.call_accepted`,
`Source.call_error`). Both take `Content-Encoding: gzip`; the size limit applies to the body
as sent, with or without a Content-Length, and to the decoded body too; authentication reads
the decoded body (what the sender signed)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from connector import metrics
from connector.contract import InboundEvent, PayloadError, Unauthorized
from connector.outbox.intake import accept
from connector.web.bodies import BodyRefused, decoded
from connector.web.intake_log import INTAKE_LOG

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("connector.webhooks")
#: What a call route takes besides JSON: some tracking clients send JSON as text/plain.
CALL_MIMETYPES = ("application/json", "text/plain")


class Refused(Exception):
    """A request answered with a 4xx: `error` is the short name (metrics, plain answers)."""

    def __init__(self, status: int, error: str, message: str, problems: dict | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.problems = status, error, message, problems


def _unknown_source(source_id: str):
    message = f"no source {source_id!r} is configured"
    current_app.extensions["refusals"].refused(None, 404, "unknown source", message)
    return jsonify(error="unknown source", message=message), 404


# merge_slashes=False: "//" in a path is a 404 like any unknown path, not a redirect.
@bp.post("/webhooks/<source_id>", merge_slashes=False)
def receive(source_id: str):
    runtime = current_app.extensions["connector"]
    source_config = runtime.config.sources.get(source_id)
    if source_config is None:
        return _unknown_source(source_id)
    source = runtime.registry.sources[source_config["plugin"]]
    try:
        accepted, duplicates = _take(
            runtime,
            source_id,
            source_config,
            ("application/json",),
            lambda body: source.parse(body, source_config),
        )
    except Refused as refused:
        extra = {"problems": refused.problems} if refused.problems else {"message": refused.message}
        return jsonify(error=refused.error, **extra), refused.status
    # The answer jsonify gives, written out: this is the hot path.
    body = f'{{"accepted":{accepted},"duplicates":{duplicates}}}\n'
    return current_app.response_class(body, status=202, mimetype="application/json")


@bp.post("/webhooks/<source_id>/<path:call>", merge_slashes=False)
def receive_call(source_id: str, call: str):
    runtime = current_app.extensions["connector"]
    source_config = runtime.config.sources.get(source_id)
    if source_config is None:
        return _unknown_source(source_id)
    source = runtime.registry.sources[source_config["plugin"]]
    kind = source.calls.get(call)
    if kind is None:
        message = f"source {source_id!r} has no route {call!r}"
        current_app.extensions["refusals"].refused(source_id, 404, "unknown route", message)
        return jsonify(error="unknown route", message=message), 404
    try:
        _take(
            runtime,
            source_id,
            source_config,
            CALL_MIMETYPES,
            lambda body: source.parse_call(kind, body, source_config),
        )
    except Refused as refused:
        return jsonify(source.call_error(refused.status, refused.message, refused.problems)), refused.status
    status, answer = source.call_accepted
    return jsonify(answer), status


def _take(
    runtime, source_id: str, source_config: dict, mimetypes, parse: Callable[[bytes], list[InboundEvent]]
) -> tuple[int, int]:
    """Read, authenticate, parse and commit one request: (accepted, duplicates)."""
    try:
        if request.mimetype not in mimetypes:
            raise Refused(
                415, "unsupported content type", "send the events with Content-Type: application/json"
            )
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        # Werkzeug reads a body without Content-Length (chunked) up to the request's limit and
        # hands over what it read, cut: one byte more tells a body past the limit from one
        # just at it. A declared length past it is refused before anything is read.
        request.max_content_length = limit + 1
        try:
            raw = request.get_data(cache=False)
        except RequestEntityTooLarge as exc:
            raise _too_large(limit) from exc
        if len(raw) > limit:
            raise _too_large(limit)
        try:
            body = decoded(raw, request.headers.get("Content-Encoding"), limit)
        except BodyRefused as exc:
            raise Refused(exc.status, exc.error, exc.message) from exc
        try:
            replay = runtime.verify_inbound(source_config, request.headers, body)
        except Unauthorized as exc:
            raise Refused(401, "unauthorized", str(exc)) from exc
        try:
            parsed = parse(body)
        except PayloadError as exc:
            raise Refused(400, "invalid payload", str(exc), exc.problems) from exc
        try:  # a replay key already used refuses the request in the transaction that stores it
            result = accept(runtime.engine, source_id, parsed, replay=replay)
        except Unauthorized as exc:
            raise Refused(401, "unauthorized", str(exc)) from exc
    except Refused as refused:
        _received(source_id, refused.error).inc()
        current_app.extensions["refusals"].refused(source_id, refused.status, refused.error, refused.message)
        raise
    accepted, duplicates = _received(source_id, "accepted"), _received(source_id, "duplicate")
    if result.accepted:  # each inc writes to a shared file under gunicorn (multiprocess mode)
        accepted.inc(result.accepted)
    if result.duplicates:
        duplicates.inc(result.duplicates)
    INTAKE_LOG.took(source_id, result.accepted, result.duplicates)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%d events from %s: %d accepted, %d duplicates",
            len(parsed),
            source_id,
            result.accepted,
            result.duplicates,
        )
        for event in parsed:
            log.debug("event %s from %s: %s %s", event.event_id, source_id, event.type, event.email or "-")
    return result.accepted, result.duplicates


def _too_large(limit: int) -> Refused:
    return Refused(413, "request entity too large", f"the body is larger than {limit} bytes")


@functools.cache
def _received(source_id: str, result: str):
    """The events_received counter of a source and result (configured sources and a few
    results only: the key is bounded)."""
    return metrics.EVENTS_RECEIVED.labels(source=source_id, result=result)
