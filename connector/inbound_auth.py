"""Verifies inbound webhook requests: HS256 (X-Extole-Signature), SEGMENT_SIGNATURE,
STANDARD_WEBHOOKS, BEARER and HTTP_BASIC. Signatures are over the raw body bytes, compared in
constant time; every configured secret is tried (rotation)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

STANDARD_WEBHOOKS_TOLERANCE = 300


class Unauthorized(Exception):
    pass


def _hmac_hex(secret: str, body: bytes, digest) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def _any_equal(candidates, received: str) -> bool:
    matched = False
    for expected in candidates:  # no early exit: timing does not tell which secret matched
        matched |= hmac.compare_digest(expected.encode(), received.encode())
    return matched


def verify_hs256(secrets, headers, body: bytes) -> None:
    header = headers.get("X-Extole-Signature", "").strip()
    if not header:
        raise Unauthorized("missing X-Extole-Signature header")
    scheme, _, signature = header.partition("=")
    digests = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
    if scheme.lower() not in digests or not signature:
        raise Unauthorized("X-Extole-Signature must be sha256=<hex> or sha1=<hex>")
    digest = digests[scheme.lower()]
    if not _any_equal([_hmac_hex(s, body, digest) for s in secrets], signature.lower()):
        raise Unauthorized("signature does not match the body")


def verify_segment(secrets, headers, body: bytes) -> None:
    signature = headers.get("X-Signature", "").strip().lower()
    if not signature:
        raise Unauthorized("missing X-Signature header")
    if not _any_equal([_hmac_hex(s, body, hashlib.sha1) for s in secrets], signature):
        raise Unauthorized("signature does not match the body")


def verify_standard_webhooks(secrets, headers, body: bytes) -> None:
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not (timestamp.isdigit() and len(timestamp) <= 12):
        raise Unauthorized("webhook-timestamp is not a UNIX time in seconds")
    sent = int(timestamp)
    if abs(time.time() - sent) > STANDARD_WEBHOOKS_TOLERANCE:
        raise Unauthorized("webhook-timestamp is outside the 5-minute tolerance")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = []
    for secret in secrets:
        raw = secret[6:] if secret.startswith("whsec_") else secret
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            key = raw.encode()
        expected.append(base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode())
    received = [s.partition(",")[2] for s in signatures.split() if s.startswith("v1,")]
    if not any(_any_equal(expected, r) for r in received):
        raise Unauthorized("signature does not match the body")


def verify_bearer(secrets, headers, body: bytes) -> None:
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing Authorization: Bearer header")
    if not _any_equal(secrets, token.strip()):
        raise Unauthorized("bearer token is not valid")


def verify_basic(secrets, headers, body: bytes) -> None:
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("missing Authorization: Basic header")
    try:
        credentials = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("Authorization: Basic is not valid base64") from exc
    if not _any_equal(secrets, credentials):
        raise Unauthorized("credentials are not valid")


VERIFIERS = {
    "HS256": verify_hs256,
    "SEGMENT_SIGNATURE": verify_segment,
    "STANDARD_WEBHOOKS": verify_standard_webhooks,
    "BEARER": verify_bearer,
    "HTTP_BASIC": verify_basic,
}


def verify(auth: dict, headers, body: bytes) -> None:
    """Raise Unauthorized unless the request carries valid credentials for this source."""
    VERIFIERS[auth["algorithm"]](auth["secrets"], headers, body)
