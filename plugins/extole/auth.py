"""Extole's webhook signature (HS256): `X-Extole-Signature: sha256=<hex HMAC-SHA256>` of the
raw body bytes, or `sha1=<hex HMAC-SHA1>`, the form Extole's docs show, unless the source sets
`auth.allow_sha1: false`."""

from __future__ import annotations

import hashlib

from connector.plugin_api import InboundVerifier, Unauthorized, any_equal, hmac_hex, short_hmac_secrets

DIGESTS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}


class ExtoleSignature(InboundVerifier):
    name = "HS256"
    security_scheme = {
        "type": "apiKey",
        "in": "header",
        "name": "X-Extole-Signature",
        "description": "`sha256=<hex HMAC-SHA256 of the raw body>` (or `sha1=<hex HMAC-SHA1>`, unless the "
        "source sets `allow_sha1: false`), with one of the source's secrets.",
    }

    def verify(self, secrets, headers, body: bytes, allow_sha1: bool = True) -> None:
        header = headers.get("X-Extole-Signature", "").strip()
        if not header:
            raise Unauthorized("missing X-Extole-Signature header")
        scheme, _, signature = header.partition("=")
        digest = DIGESTS.get(scheme.lower())
        if digest is hashlib.sha1 and not allow_sha1:
            raise Unauthorized("X-Extole-Signature must be sha256=<hex>: this source does not accept sha1")
        if digest is None or not signature:
            raise Unauthorized("X-Extole-Signature must be sha256=<hex> or sha1=<hex>")
        if not any_equal([hmac_hex(s, body, digest) for s in secrets], signature.lower()):
            raise Unauthorized("signature does not match the body")

    def check_secrets(self, secrets):
        return short_hmac_secrets(secrets)
