"""Test helpers for the Segment plugin: Engage audience events as Segment's webhook destinations
send them and their signatures (`X-Signature`, HMAC-SHA1); the tracking API that unit tests mock
and the look-alike (`connector segment-sandbox`) that real processes send to; for tests and
benchmarks."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import sys

import requests

from connector.testing import Part, Sidecar, free_port
from plugins.segment.sandbox import DEMO_WRITE_KEY

SEGMENT_SECRET = "test-segment-secret"
TRACKING_API = "https://api.segment.test"  # unit tests: requests_mock answers here
TEST_WRITE_KEY = "testWriteKeyForUnitTests00000001"
#: The write key a Segment library sends to the `segment-library` source (tracking-API routes).
INBOUND_WRITE_KEY = "testInboundWriteKey"
TEST_ENV = {  # unit tests (the Flask test client)
    "SEGMENT_WEBHOOK_SECRET": SEGMENT_SECRET,
    "SEGMENT_API_URL": TRACKING_API,
    "SEGMENT_WRITE_KEY": TEST_WRITE_KEY,
    "SEGMENT_INBOUND_WRITE_KEY": INBOUND_WRITE_KEY,
}
STACK_ENV = {  # real processes; a Stack points SEGMENT_API_URL at its own look-alike (`Lookalike`)
    "SEGMENT_WEBHOOK_SECRET": "e2e-segment-secret",
    "SEGMENT_API_URL": "http://127.0.0.1:8901",  # `connector segment-sandbox`'s default port
    "SEGMENT_WRITE_KEY": DEMO_WRITE_KEY,
    "SEGMENT_INBOUND_WRITE_KEY": "e2eInboundWriteKey",
}


class Lookalike(Part):
    """Segment in a connector.testing stack: the tracking-API look-alike (`connector
    segment-sandbox`) as the partner, Segment's webhooks signed with STACK_ENV's secret, and
    what the look-alike received: `state()` (counts, messageIds, request sizes),
    `calls(type=, event=)` (every call kept, as received), `fault(status, count, retry_after)`,
    `reset()`."""

    def __init__(self, port: int | None = None):
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.sidecar = Sidecar(
            "segment-sandbox",
            [sys.executable, "-m", "connector.cli", "segment-sandbox", "--port", str(port)],
            f"{self.url}/_sandbox/state",
        )
        super().__init__(
            sidecars=[self.sidecar],
            env={**STACK_ENV, "SEGMENT_API_URL": self.url, "SEGMENT_WRITE_KEY": DEMO_WRITE_KEY},
            signers={"segment": signature_headers(STACK_ENV["SEGMENT_WEBHOOK_SECRET"])},
        )

    def state(self) -> dict:
        return requests.get(f"{self.url}/_sandbox/state", timeout=10).json()

    def calls(self, **wanted) -> list[dict]:
        return requests.get(f"{self.url}/_sandbox/calls", params=wanted, timeout=10).json()["calls"]

    def fault(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        body = {"status": status, "count": count, "retry_after": retry_after}
        response = requests.post(f"{self.url}/_sandbox/faults", json=body, timeout=10)
        response.raise_for_status()

    def reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/reset", timeout=10).raise_for_status()


def segment_signature(body: bytes, secret: str = SEGMENT_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signature_headers(secret: str):
    """A signer for connector.testing.Stack: body → {"X-Signature": ...}."""
    return lambda body: {"X-Signature": segment_signature(body, secret)}


def audience_event(
    message_id: str,
    email: str = "jane@example.com",
    entered: bool = True,
    audience: str = "my_audience",
    timestamp: str = "2026-11-22T05:44:22.000Z",
    **extra,
) -> dict:
    """A track call `Audience Entered` / `Audience Exited` from an Engage audience."""
    event = {
        "type": "track",
        "event": "Audience Entered" if entered else "Audience Exited",
        "messageId": message_id,
        "userId": f"user-{email}",
        "timestamp": timestamp,
        "properties": {"audience_key": audience, audience: entered},
        "context": {
            "traits": {"email": email},
            "personas": {"computation_key": audience, "computation_class": "audience"},
        },
    }
    event.update(extra)
    return event


def identify_event(
    message_id: str,
    email: str = "jane@example.com",
    entered: bool = True,
    audience: str = "my_audience",
    timestamp: str = "2026-11-22T05:44:22.000Z",
):
    """An identify call of an Engage user-property sync: the trait <audience>: true|false."""
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"user-{email}",
        "timestamp": timestamp,
        "traits": {"email": email, audience: entered},
        "context": {"personas": {"computation_key": audience, "computation_class": "audience"}},
    }


def post_segment(
    client, payload, source: str = "segment", secret: str = SEGMENT_SECRET, headers: dict | None = None
):
    """POST `payload` signed as Segment does, through a Flask test client."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", "X-Signature": segment_signature(body, secret)}
    sent.update(headers or {})
    return client.post(f"/webhooks/{source}", data=body, headers=sent)


def write_key_headers(write_key: str = INBOUND_WRITE_KEY) -> dict[str, str]:
    """HTTP Basic as Segment's libraries send it: the write key as user name, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def post_call(
    client,
    route: str,
    payload,
    source: str = "segment-library",
    write_key: str = INBOUND_WRITE_KEY,
    gzipped: bool = False,
    headers: dict | None = None,
):
    """POST a tracking-API call (`route` such as "v1/batch") through a Flask test client."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", **write_key_headers(write_key)}
    if gzipped:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    sent.update(headers or {})
    return client.post(f"/webhooks/{source}/{route}", data=body, headers=sent)
