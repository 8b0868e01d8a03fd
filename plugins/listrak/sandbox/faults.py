"""Fault injection for the Listrak sandbox and its `/_sandbox/` control routes (not part of
Listrak, no auth): faults, added latency, state, reset.

A fault applies to the next `count` requests (or until cleared), to a share of them (`ratio`),
to one route, or to the requests naming one contact (`email`: an address, or a number on the
SMS API); mode `answer` answers anything
(`connector.testing.answers`: any status, body, content type and headers), e.g.
`{"mode": "answer", "email": "x@example.com", "answer": {"status": 400, "json": {...}}}`."""

from __future__ import annotations

import contextlib
import math
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from connector.testing.answers import AnswerSchema, respond

MODES = ("500", "503", "429", "hang", "drop", "expire_token", "refuse_credentials", "answer")
TARGETS = ("api", "token", "any")


@dataclass
class Fault:
    """One injected fault. `count` None = until cleared; `ratio` None = every request."""

    mode: str
    count: int | None = None
    ratio: float | None = None
    retry_after: float | None = None
    hang_seconds: float = 30.0
    target: str = "api"
    route: str | None = None  # e.g. "GET /List/<listId>/Message/<messageId>/Activity"; None = all
    email: str | None = None  # only requests naming this contact (body or path); None = all
    answer: dict | None = None  # mode "answer": what to answer (connector.testing.answers)
    applied: int = 0
    id: int = field(default=0)

    def matches(self, target: str, route: str | None = None, emails: frozenset = frozenset()) -> bool:
        return (
            self.target in (target, "any")
            and self.route in (None, route)
            and (self.email is None or self.email in emails)
        )


class JsonNumber(fields.Float):
    """A JSON number, kept as sent (3 stays 3): no numeric strings, booleans, NaN or infinity."""

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.make_error("invalid", input=value)
        return value


class FaultSchema(Schema):
    """The body of `POST /_sandbox/faults`; loads as a Fault."""

    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    count = fields.Integer(strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1))
    ratio = JsonNumber(allow_none=True, load_default=None, validate=validate.Range(min=0, max=1))
    retry_after = JsonNumber(allow_none=True, load_default=None, validate=validate.Range(min=0))
    hang_seconds = JsonNumber(allow_none=True, load_default=None, validate=validate.Range(min=0))
    target = fields.String(load_default="api", validate=validate.OneOf(TARGETS))
    route = fields.String(allow_none=True, load_default=None)
    email = fields.String(allow_none=True, load_default=None)
    answer = fields.Nested(AnswerSchema, allow_none=True, load_default=None)

    @validates_schema
    def _answer_with_its_mode(self, data, **kwargs):
        if (data["mode"] == "answer") != (data.get("answer") is not None):
            raise ValidationError('give an answer with mode "answer", and only then', "answer")

    @pre_load
    def numeric_mode(self, data, **kwargs):
        """`{"mode": 500}` means the "500" fault, as it always has."""
        mode = data.get("mode")
        if isinstance(mode, int) and not isinstance(mode, bool):
            data = {**data, "mode": str(mode)}
        return data

    @post_load
    def make_fault(self, data, **kwargs) -> Fault:
        mode, target, count = data["mode"], data["target"], data["count"]
        if mode == "refuse_credentials":
            target = "token"
        elif mode == "expire_token":
            target, count = "api", 1 if count is None else count
        hang = data["hang_seconds"]
        return Fault(
            mode=mode,
            count=count,
            ratio=data["ratio"],
            retry_after=data["retry_after"],
            hang_seconds=30.0 if hang is None else float(hang),
            target=target,
            route=data["route"],
            email=data["email"].strip().lower() if data["email"] else None,
            answer=data["answer"],
        )


class LatencySchema(Schema):
    """The body of `POST /_sandbox/latency`: milliseconds added before every API request."""

    ms = JsonNumber(required=True, validate=validate.Range(min=0, max=600_000))


def load_body(schema: Schema):
    """The request's JSON body loaded by `schema`; ValidationError names each bad field."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError({"body": ["must be a JSON object"]})
    return schema.load(body)


def problem(exc: ValidationError):
    """A 400 naming each field: {"error": "count: Must be ...", "fields": {"count": [...]}}."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
    summary = "; ".join(f"{name}: {' '.join(map(str, errors))}" for name, errors in sorted(messages.items()))
    return jsonify(error=summary, fields=messages), 400


class FaultBook:
    """Thread-safe set of active faults plus the added latency."""

    def __init__(self, rng: random.Random | None = None):
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._release = threading.Event()
        self.latency_ms = 0.0
        self.applied: dict[str, int] = {}

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        """Remove every fault and wake any request that is hanging."""
        with self._lock:
            self._faults = []
            self._release.set()
            self._release = threading.Event()

    def reset(self) -> None:
        self.clear()
        with self._lock:
            self.latency_ms = 0.0
            self.applied = {}

    def take(self, target: str, route: str | None = None, emails: frozenset = frozenset()) -> Fault | None:
        """The fault that applies to this request ("api" or "token", its route label and the
        contacts it names), consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(target, route, emails):
                    continue
                if fault.ratio is not None and self._rng.random() >= fault.ratio:
                    continue
                fault.applied += 1
                self.applied[fault.mode] = self.applied.get(fault.mode, 0) + 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return Fault(**asdict(fault))
            return None

    def wait_released(self, seconds: float) -> None:
        with self._lock:
            release = self._release
        release.wait(seconds)

    def describe(self) -> list[dict]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]


def _retry_after(response: Response, fault: Fault) -> Response:
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
    return response


def _truncated_body():
    yield b'{"status":'
    raise ConnectionAbortedError("listrak sandbox: injected drop")


def drop_connection(environ: dict) -> Response:
    """Close the client connection without an HTTP response.

    werkzeug and gunicorn put the connection socket in the environ; shutting it down makes the
    client see the connection closed before any response byte (requests: ConnectionError). The
    server's own write then fails with a broken pipe, which both treat as a dropped client.
    Elsewhere, fall back to a response cut off after its headers.
    """
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return Response(b"", status=500)
    return Response(
        _truncated_body(), status=200, headers={"Content-Length": "64"}, mimetype="application/json"
    )


def apply_fault(
    fault: Fault, book: FaultBook, environ: dict, expire_tokens
) -> Response | tuple[Response, int] | None:
    """The response a fault answers with, or None to go on handling the request normally."""
    if fault.mode == "500":
        return jsonify(
            status=500, error="ERROR_UNHANDLED_EXCEPTION", message="An unexpected error occurred."
        ), 500
    if fault.mode == "503":
        page = "<html><body><h1>503 Service Unavailable</h1></body></html>"
        return _retry_after(Response(page, status=503, mimetype="text/html"), fault)
    if fault.mode == "429":
        response = jsonify(
            status=429, error="ERROR_TOO_MANY_REQUESTS", message="The rate limit was exceeded."
        )
        response.status_code = 429
        return _retry_after(response, fault)
    if fault.mode == "hang":
        # Then carry on: the request is applied late, after the client may have given up.
        book.wait_released(fault.hang_seconds)
        return None
    if fault.mode == "drop":
        return drop_connection(environ)
    if fault.mode == "expire_token":
        expire_tokens()
        return None
    if fault.mode == "refuse_credentials":
        return jsonify(error="Invalid Credentials"), 400
    if fault.mode == "answer" and fault.answer is not None:
        return respond(fault.answer)
    return None


def intercept(
    book: FaultBook,
    target: str,
    environ: dict,
    expire_tokens,
    route: str | None = None,
    emails: frozenset = frozenset(),
) -> Response | tuple[Response, int] | None:
    """Added latency, then the first due fault for this "api" or "token" request."""
    if book.latency_ms:
        time.sleep(book.latency_ms / 1000)
    fault = book.take(target, route, emails)
    return None if fault is None else apply_fault(fault, book, environ, expire_tokens)


def control_blueprint(sandbox) -> Blueprint:
    """`/_sandbox/` routes for the sandbox's state and fault book."""
    bp = Blueprint("listrak_sandbox_control", __name__, url_prefix="/_sandbox")
    book: FaultBook = sandbox.faults
    fault_schema, latency_schema = FaultSchema(), LatencySchema()

    @bp.errorhandler(ValidationError)
    def invalid_body(exc: ValidationError):
        return problem(exc)

    @bp.get("/faults")
    def list_faults():
        return jsonify(faults=book.describe())

    @bp.post("/faults")
    def add_fault():
        fault = book.add(load_body(fault_schema))
        return jsonify(fault=asdict(fault), faults=book.describe()), 201

    @bp.delete("/faults")
    def clear_faults():
        book.clear()
        return jsonify(faults=[])

    @bp.get("/latency")
    def get_latency():
        return jsonify(ms=book.latency_ms)

    @bp.post("/latency")
    def set_latency():
        book.latency_ms = float(load_body(latency_schema)["ms"])
        return jsonify(ms=book.latency_ms)

    @bp.get("/state")
    def state():
        return jsonify(sandbox.state())

    @bp.get("/requests")
    def requests_seen():
        """The request counts of /_sandbox/state alone (cheap with a large list)."""
        with sandbox.lock:
            return jsonify(asdict(sandbox.counts))

    @bp.post("/reset")
    def reset():
        sandbox.reset()
        return jsonify(reset=True)

    return bp
