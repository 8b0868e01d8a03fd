"""Segment's webhook destinations sign with `X-Signature: <hex HMAC-SHA1 of the raw body>`
(SEGMENT_SIGNATURE)."""

from __future__ import annotations

import hashlib

from connector.contract import InboundVerifier, Unauthorized
from connector.verifiers import any_equal, hmac_hex


class SegmentSignature(InboundVerifier):
    name = "SEGMENT_SIGNATURE"

    def verify(self, secrets, headers, body: bytes) -> None:
        signature = headers.get("X-Signature", "").strip().lower()
        if not signature:
            raise Unauthorized("missing X-Signature header")
        if not any_equal([hmac_hex(s, body, hashlib.sha1) for s in secrets], signature):
            raise Unauthorized("signature does not match the body")
