"""Fault injection and the `/_sandbox/` control routes of the local Listrak look-alike."""

from __future__ import annotations

import math
import random
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from flask import Blueprint, Response, jsonify, request

MODES = ("500", "503", "429", "hang", "drop", "expire_token", "refuse_credentials")
TARGETS = ("api", "token", "any")
FAULT_KEYS = {"mode", "count", "ratio", "retry_after", "hang_seconds", "target"}


@dataclass
class Fault:
    """One injected fault. `count` None = until cleared; `ratio` None = every request."""

    mode: str
    count: int | None = None
    ratio: float | None = None
    retry_after: float | None = None
    hang_seconds: float = 30.0
    target: str = "api"
    applied: int = 0
    id: int = field(default=0)

    def matches(self, target: str) -> bool:
        return self.target in (target, "any")


def _number(body: dict, key: str, *, minimum: float, maximum: float | None = None):
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{key} must be a number")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{key} out of range")
    return value


def parse_fault(body: object) -> Fault:
    """Validate a `POST /_sandbox/faults` body; ValueError names the problem."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(body) - FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(unknown)}")
    mode = str(body.get("mode"))
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    count = body.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    if count is None and mode == "expire_token":
        count = 1
    target = body.get("target", "api")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}")
    if mode == "refuse_credentials":
        target = "token"
    elif mode == "expire_token":
        target = "api"
    hang = _number(body, "hang_seconds", minimum=0)
    return Fault(
        mode=mode, count=count, ratio=_number(body, "ratio", minimum=0, maximum=1),
        retry_after=_number(body, "retry_after", minimum=0),
        hang_seconds=30.0 if hang is None else float(hang), target=target,
    )


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

    def take(self, target: str) -> Fault | None:
        """The fault that applies to this request ("api" or "token"), consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(target):
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


class Meter:
    """Request accounting for /_sandbox/state.

    `total` and `times` count Email API requests (/email/v1); `per_route` also counts the token
    endpoint; `token_fetches` counts tokens issued per client id.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.buckets: dict[str, dict[str, int]] = {
                "per_route": {}, "per_status": {}, "per_client": {}, "token_fetches": {}}
            self.bulk_calls: list[dict] = []
            self.times: deque[float] = deque(maxlen=100_000)

    def bump(self, bucket: str, name: str) -> None:
        with self._lock:
            counts = self.buckets[bucket]
            counts[name] = counts.get(name, 0) + 1

    def request(self, route: str, email_api: bool) -> None:
        with self._lock:
            if email_api:
                self.total += 1
                self.times.append(time.time())
        self.bump("per_route", route)

    def bulk(self, list_id: int, items: int) -> None:
        with self._lock:
            self.bulk_calls.append({"list_id": list_id, "items": items})

    def snapshot(self) -> dict:
        with self._lock:
            b = {name: dict(counts) for name, counts in self.buckets.items()}
            times, bulk, total = list(self.times), list(self.bulk_calls), self.total
        return {"requests": {"total": total, **b, "bulk_calls": bulk},
                "request_times": times, "peak_requests_per_second": peak_rate(times)}


def peak_rate(times: list[float], window: float = 1.0) -> int:
    """Most requests seen in any `window`-second span."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


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
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return Response(b"", status=500)
    return Response(_truncated_body(), status=200, headers={"Content-Length": "64"},
                    mimetype="application/json")


def apply_fault(fault: Fault, book: FaultBook, environ: dict, expire_tokens) -> Response | None:
    """The response a fault answers with, or None to go on handling the request normally."""
    if fault.mode == "500":
        return jsonify(status=500, error="ERROR_UNHANDLED_EXCEPTION",
                       message="An unexpected error occurred."), 500
    if fault.mode == "503":
        page = "<html><body><h1>503 Service Unavailable</h1></body></html>"
        return _retry_after(Response(page, status=503, mimetype="text/html"), fault)
    if fault.mode == "429":
        response = jsonify(status=429, error="ERROR_TOO_MANY_REQUESTS",
                           message="The rate limit was exceeded.")
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
    return None


def intercept(book: FaultBook, target: str, environ: dict, expire_tokens) -> Response | None:
    """Added latency, then the first due fault for this "api" or "token" request."""
    if book.latency_ms:
        time.sleep(book.latency_ms / 1000)
    fault = book.take(target)
    return None if fault is None else apply_fault(fault, book, environ, expire_tokens)


def control_blueprint(sandbox) -> Blueprint:
    """`/_sandbox/` routes (not part of Listrak, no auth): faults, latency, state, reset."""
    bp = Blueprint("listrak_sandbox_control", __name__, url_prefix="/_sandbox")
    book: FaultBook = sandbox.faults

    def bad(message: str):
        return jsonify(error=message), 400

    @bp.get("/faults")
    def list_faults():
        return jsonify(faults=book.describe())

    @bp.post("/faults")
    def add_fault():
        try:
            fault = book.add(parse_fault(request.get_json(silent=True)))
        except ValueError as exc:
            return bad(str(exc))
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
        body = request.get_json(silent=True)
        try:
            ms = _number(body if isinstance(body, dict) else {}, "ms", minimum=0, maximum=600_000)
        except ValueError as exc:
            return bad(str(exc))
        if ms is None:
            return bad("ms is required")
        book.latency_ms = float(ms)
        return jsonify(ms=book.latency_ms)

    @bp.get("/state")
    def state():
        return jsonify(sandbox.state())

    @bp.post("/reset")
    def reset():
        sandbox.reset()
        return jsonify(reset=True)

    return bp
