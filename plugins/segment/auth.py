"""Inbound authentication the way Segment does it: webhook destinations sign with
`X-Signature: <hex HMAC-SHA1 of the raw body>` (SEGMENT_SIGNATURE); the HTTP tracking API takes
HTTP Basic with the write key as the user name and an empty password (SEGMENT_WRITE_KEY)."""

from __future__ import annotations

import base64
import binascii
import hashlib

from connector.plugin_api import InboundVerifier, Unauthorized, any_equal, hmac_hex, short_hmac_secrets


class SegmentSignature(InboundVerifier):
    name = "SEGMENT_SIGNATURE"
    security_scheme = {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": "Segment's webhook signature: the hex HMAC-SHA1 of the raw body with a source secret.",
    }

    def verify(self, secrets, headers, body: bytes) -> None:
        signature = headers.get("X-Signature", "").strip().lower()
        if not signature:
            raise Unauthorized("missing X-Signature header")
        if not any_equal([hmac_hex(s, body, hashlib.sha1) for s in secrets], signature):
            raise Unauthorized("signature does not match the body")

    def check_secrets(self, secrets):
        return short_hmac_secrets(secrets)


class SegmentWriteKey(InboundVerifier):
    """`Authorization: Basic base64(<write key>:)`; `secrets` are the accepted write keys.
    A password, if a client sends one, is ignored, as Segment ignores it."""

    name = "SEGMENT_WRITE_KEY"
    security_scheme = {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic with a write key the source accepts as user name and an empty password.",
    }

    def verify(self, secrets, headers, body: bytes) -> None:
        scheme, _, encoded = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise Unauthorized("missing Authorization: Basic header with the write key as user name")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise Unauthorized("Authorization: Basic is not valid base64") from exc
        write_key = credentials.partition(":")[0]
        if not write_key or not any_equal(secrets, write_key):
            raise Unauthorized("write key is not valid for this source")

    def check_secrets(self, secrets):
        problems = {}
        for index, secret in enumerate(secrets):
            if ":" in secret or secret != secret.strip():
                problems[index] = "a write key is an HTTP Basic user name: no ':' and no surrounding spaces"
        return problems
