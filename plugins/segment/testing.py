"""Test helpers for Segment's webhook destinations (`X-Signature`, HMAC-SHA1): Engage audience
events as Segment sends them and their signatures, for tests and benchmarks."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json

SEGMENT_SECRET = "test-segment-secret"
#: The write key a Segment library sends to the `segment-library` source (tracking-API routes).
INBOUND_WRITE_KEY = "testInboundWriteKey"
TEST_ENV = {  # unit tests (the Flask test client)
    "SEGMENT_WEBHOOK_SECRET": SEGMENT_SECRET,
    "SEGMENT_INBOUND_WRITE_KEY": INBOUND_WRITE_KEY,
}
STACK_ENV = {  # real processes
    "SEGMENT_WEBHOOK_SECRET": "e2e-segment-secret",
    "SEGMENT_INBOUND_WRITE_KEY": "e2eInboundWriteKey",
}


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
