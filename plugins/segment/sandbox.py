"""A local look-alike of Segment's HTTP tracking API for demos, tests and benchmarks:
`POST /v1/batch` (and the single calls `/v1/track`, `/v1/identify`), HTTP Basic write keys,
gzip bodies, Segment's size limits answered as Segment does (400 with a message), and a record
of every call received. Not part of Segment, no auth: `/_sandbox/state`, `/_sandbox/calls`,
`/_sandbox/reset` and `/_sandbox/faults` (the next N requests, or those naming one contact,
answer an error in Segment's shape, or anything at all: `connector.testing.answers`).

Run it with `connector segment-sandbox --port 8901`.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import zlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from flask import Blueprint, Flask, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connector.testing.answers import AnswerSchema, respond
from plugins.segment.destination import MAX_EVENT_BYTES, MAX_EVENTS, MAX_REQUEST_BYTES

#: The write key the example configuration uses (32 characters, as Segment's are).
DEMO_WRITE_KEY = "sandboxWriteKey4ExampleConfig001"
SINGLE_CALLS = {"track": "track", "t": "track", "identify": "identify", "i": "identify"}
#: Raw bodies past this are refused before anything is read (gzip included).
MAX_RAW_BYTES = 4 * MAX_REQUEST_BYTES


class Refusal(Exception):
    """An answer other than 200, with Segment's error body `{"code", "message"}`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Fault:
    """The next `count` requests (naming `contact`, when given) answer `status` with
    Segment's error body, or `answer` (connector.testing.answers: anything at all)."""

    status: int | None = None
    count: int = 1
    retry_after: int | None = None
    message: str | None = None
    contact: str | None = None  # a userId or anonymousId in the request's calls
    answer: dict | None = None


class FaultSchema(Schema):
    """The body of `POST /_sandbox/faults`: `status` (an error in Segment's shape) or `answer`."""

    status = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=400, max=599))
    count = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1))
    retry_after = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0))
    message = fields.String(load_default=None, validate=validate.Length(min=1, max=1000))
    contact = fields.String(load_default=None)
    answer = fields.Nested(AnswerSchema, load_default=None)

    @validates_schema
    def _status_or_answer(self, data, **kwargs):
        if (data.get("status") is None) == (data.get("answer") is None):
            raise ValidationError("give status (an error in Segment's shape) or answer", "status")


class Recorder:
    """Every request and call received, and the faults waiting; shared by all threads."""

    def __init__(self, write_keys: list[str] | None):
        self.write_keys = None if write_keys is None else frozenset(write_keys)  # None: any key
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: list[dict] = []
            self.calls: list[dict] = []
            self.dropped: list[dict] = []
            self.seen: Counter[str] = Counter()
            self.faults: deque[Fault] = deque()
            self.faults_applied: Counter[str] = Counter()
            self.per_contact: Counter[str] = Counter()  # requests naming each userId/anonymousId

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def find(self, **wanted) -> list[dict]:
        """The calls kept whose fields equal `wanted`, in the order received."""
        with self._lock:
            return [c for c in self.calls if all(c.get(k) == v for k, v in wanted.items())]

    def take_fault(self, contacts: frozenset[str]) -> Fault | None:
        """The first fault for a request naming `contacts`, consuming one use of it."""
        with self._lock:
            fault = next((f for f in self.faults if f.contact is None or f.contact in contacts), None)
            if fault is None:
                return None
            fault.count -= 1
            if fault.count <= 0:
                self.faults.remove(fault)
            self.faults_applied[str(fault_status(fault))] += 1
            return fault

    def count_contacts(self, contacts: frozenset[str]) -> None:
        with self._lock:
            self.per_contact.update(contacts)

    def record(self, path: str, status: int, size: int, kept: list[dict], dropped: list[dict]) -> None:
        """`size`: the body's bytes as JSON (after gzip is undone)."""
        gzipped = request.headers.get("Content-Encoding", "").lower() == "gzip"
        with self._lock:
            self.requests.append(
                {"path": path, "status": status, "bytes": size, "gzip": gzipped, "events": len(kept)}
            )
            self.calls.extend(kept)
            self.seen.update(str(call.get("messageId")) for call in kept)
            self.dropped.extend(dropped)

    def state(self) -> dict:
        with self._lock:
            by_status = Counter(str(r["status"]) for r in self.requests)
            return {
                "requests": {
                    "total": len(self.requests),
                    "by_status": dict(sorted(by_status.items())),
                    "log": list(self.requests),
                },
                "calls": {
                    "total": len(self.calls),
                    "by_type": dict(Counter(str(c.get("type")) for c in self.calls)),
                    "by_event": dict(Counter(str(c["event"]) for c in self.calls if "event" in c)),
                },
                "message_ids": [c.get("messageId") for c in self.calls],
                "duplicates": sum(n - 1 for n in self.seen.values()),
                "dropped": list(self.dropped),
                "faults": {"pending": [asdict(f) for f in self.faults], "applied": dict(self.faults_applied)},
                "per_contact": dict(self.per_contact),
            }


# -- reading a request -------------------------------------------------------------------------
def read_body(limit: int) -> bytes:
    raw = request.get_data()  # kept: faults read the calls first (request_contacts)
    if request.headers.get("Content-Encoding", "").lower() != "gzip":
        return raw
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)  # never inflate more than one byte too many
    except zlib.error as exc:
        raise Refusal(400, "invalid_request", "body is not valid gzip") from exc
    return body


def write_key(document) -> str | None:
    """The HTTP Basic user name, else `writeKey` in the body (both are Segment's ways)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded.strip():
        try:
            user = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Refusal(400, "invalid_request", "Authorization is not valid HTTP Basic") from exc
        return user or None
    key = document.get("writeKey") if isinstance(document, dict) else None
    return key if isinstance(key, str) and key else None


def event_bytes(message) -> int:
    return len(json.dumps(message))


def drop_reason(message) -> str | None:
    """Why Segment would accept the request yet drop this message (it answers 200 all the same)."""
    if not isinstance(message, dict) or not message.get("type"):
        return "no type"
    if not message.get("userId") and not message.get("anonymousId"):
        return "no userId or anonymousId"
    if message["type"] == "track" and not message.get("event"):
        return "track call without an event name"
    return None


def receive(recorder: Recorder, single: str | None) -> tuple[dict, int]:
    """Check one request as Segment does and record what it keeps; (body, status)."""
    limit = MAX_EVENT_BYTES if single else MAX_REQUEST_BYTES
    body = read_body(limit)
    if len(body) > limit:
        what = "a single call" if single else "/v1/batch"
        raise Refusal(400, "payload_too_large", f"request is over the {limit // 1000} KB limit of {what}")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise Refusal(400, "invalid_json", "Invalid JSON") from exc
    key = write_key(document)
    if key is None:
        raise Refusal(400, "invalid_request", "no write key (HTTP Basic user name or writeKey)")
    if recorder.write_keys is not None and key not in recorder.write_keys:
        raise Refusal(401, "unauthorized", "unknown write key")
    messages: list | None
    if single:
        if not isinstance(document, dict):
            raise Refusal(400, "invalid_request", "body must be a JSON object")
        messages = [{**document, "type": single}]
    else:
        messages = document.get("batch") if isinstance(document, dict) else None
        if not isinstance(messages, list):
            raise Refusal(400, "invalid_request", "batch must be an array of calls")
    for index, message in enumerate(messages):
        size = event_bytes(message)
        if size > MAX_EVENT_BYTES:
            raise Refusal(400, "payload_too_large", f"batch[{index}] is {size} bytes, over the 32 KB limit")
    kept, dropped = [], []
    for message in messages:
        message = (
            {k: v for k, v in message.items() if k != "writeKey"} if isinstance(message, dict) else message
        )
        reason = "more than 2500 calls in one batch" if len(messages) > MAX_EVENTS else drop_reason(message)
        if reason:
            message_id = message.get("messageId") if isinstance(message, dict) else None
            dropped.append({"messageId": message_id, "reason": reason})
        else:
            kept.append(message)
    recorder.record(request.path, 200, len(body), kept, dropped)
    return {"success": True}, 200


# -- the app -----------------------------------------------------------------------------------
def control_blueprint(recorder: Recorder) -> Blueprint:
    bp = Blueprint("segment_sandbox_control", __name__, url_prefix="/_sandbox")
    schema = FaultSchema()

    @bp.get("/state")
    def state():
        return jsonify(recorder.state())

    @bp.get("/calls")
    def calls():
        """Every call kept, as received; `?type=` and `?event=` filter."""
        wanted = {k: v for k, v in request.args.items() if k in ("type", "event")}
        return jsonify(calls=recorder.find(**wanted))

    @bp.post("/reset")
    def reset():
        recorder.reset()
        return jsonify(reset=True)

    @bp.get("/faults")
    def list_faults():
        return jsonify(faults=recorder.state()["faults"]["pending"])

    @bp.post("/faults")
    def add_fault():
        body = request.get_json(silent=True)
        try:
            if not isinstance(body, dict):
                raise ValidationError({"body": ["must be a JSON object"]})
            fault = Fault(**schema.load(body))
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
            summary = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in sorted(messages.items()))
            return jsonify(error=summary, fields=messages), 400
        recorder.add_fault(fault)
        return jsonify(faults=recorder.state()["faults"]["pending"]), 201

    @bp.delete("/faults")
    def clear_faults():
        recorder.clear_faults()
        return jsonify(faults=[])

    return bp


def fault_status(fault: Fault) -> int:
    status = fault.answer["status"] if fault.answer is not None else fault.status
    assert isinstance(status, int)  # FaultSchema requires a status or an answer with one
    return status


def request_contacts() -> frozenset[str]:
    """The userIds and anonymousIds of a request's calls (for faults and per-contact counts);
    none when the body cannot be read (the request is refused as Segment would anyway)."""
    try:
        document = json.loads(read_body(MAX_RAW_BYTES))
    except (Refusal, ValueError, RecursionError):
        return frozenset()
    calls = document.get("batch", [document]) if isinstance(document, dict) else []
    return frozenset(
        str(call[name])
        for call in (calls if isinstance(calls, list) else [])
        if isinstance(call, dict)
        for name in ("userId", "anonymousId")
        if isinstance(call.get(name), str | int)
    )


def fault_response(fault: Fault):
    if fault.answer is not None:
        return respond(fault.answer)
    status = fault_status(fault)
    code = {429: "rate_limited", 400: "invalid_request"}.get(status, "server_error")
    response = jsonify(code=code, message=fault.message or f"injected fault: HTTP {status}")
    response.status_code = status
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
        response.headers["X-RateLimit-Reset"] = str(fault.retry_after)
    return response


def create_sandbox_app(write_keys: Sequence[str] | None = (DEMO_WRITE_KEY,)) -> Flask:
    """The look-alike; `write_keys` None takes any non-empty key (as the real API does). The
    Recorder is at app.extensions["segment_sandbox"]."""
    recorder = Recorder(None if write_keys is None else list(write_keys))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_RAW_BYTES
    app.extensions["segment_sandbox"] = recorder
    app.register_blueprint(control_blueprint(recorder))

    def tracking(call: str | None):
        contacts = request_contacts()
        recorder.count_contacts(contacts)
        fault = recorder.take_fault(contacts)
        if fault is not None:
            recorder.record(request.path, fault_status(fault), request.content_length or 0, [], [])
            return fault_response(fault)
        try:
            body, status = receive(recorder, SINGLE_CALLS.get(call) if call else None)
        except Refusal as exc:
            recorder.record(request.path, exc.status, request.content_length or 0, [], [])
            return jsonify(code=exc.code, message=exc.message), exc.status
        return jsonify(body), status

    app.add_url_rule("/v1/batch", "batch", lambda: tracking(None), methods=["POST"])
    app.add_url_rule("/v1/b", "b", lambda: tracking(None), methods=["POST"])
    app.add_url_rule("/v1/<any(track, t, identify, i):call>", "single", tracking, methods=["POST"])

    @app.errorhandler(413)
    def too_large(exc):
        recorder.record(request.path, 400, request.content_length or 0, [], [])
        return jsonify(code="payload_too_large", message="request is far over the 500 KB limit"), 400

    return app
