"""Generic inbound verifiers (STANDARD_WEBHOOKS, BEARER, HTTP_BASIC) and the helpers partner
verifiers share. Signatures are over the raw body bytes and compared in constant time; every
configured secret is tried (rotation); an HMAC secret has at least 16 bytes."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
import time

from standardwebhooks.webhooks import Webhook

from connector.contract import InboundVerifier, ReplayGuard, Unauthorized

STANDARD_WEBHOOKS_TOLERANCE = 300
MIN_HMAC_SECRET_BYTES = 16
MAX_WEBHOOK_ID = 256
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"v1,[A-Za-z0-9+/=]{1,200}", re.ASCII)


def short_hmac_secrets(secrets, decode=str.encode, measured: str = "") -> dict[int, str]:
    """`check_secrets` for HMAC keys: each one (as `decode` makes it bytes) has at least 16
    bytes, so it cannot be guessed. `measured` says how they were measured ("once decoded")."""
    return {
        index: f"shorter than {MIN_HMAC_SECRET_BYTES} bytes{measured}: HMAC secrets need at least "
        f"{MIN_HMAC_SECRET_BYTES} (use a long random one)"
        for index, secret in enumerate(secrets)
        if len(decode(secret)) < MIN_HMAC_SECRET_BYTES
    }


def hmac_hex(secret: str, body: bytes, digest) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def any_equal(candidates, received: str) -> bool:
    """Whether `received` equals any candidate; no early exit, so timing does not tell which
    secret matched."""
    matched = False
    for expected in candidates:
        matched |= hmac.compare_digest(expected.encode(), received.encode())
    return matched


@functools.lru_cache(maxsize=64)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)


class StandardWebhooks(InboundVerifier):
    """`webhook-id`, `webhook-timestamp`, `webhook-signature` per the Standard Webhooks spec
    (the `standardwebhooks` package checks the signature), 5-minute tolerance. A `webhook-id`
    is accepted once: the store remembers it until its signature would be too old anyway."""

    name = "STANDARD_WEBHOOKS"
    security_scheme = {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` "
        "with `webhook-id` (accepted once) and `webhook-timestamp` (within 5 minutes).",
    }

    def verify(self, secrets, headers, body: bytes) -> ReplayGuard:
        msg_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not (msg_id and timestamp and signatures):
            raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header")
        if len(msg_id) > MAX_WEBHOOK_ID:
            raise Unauthorized(f"webhook-id is longer than {MAX_WEBHOOK_ID} characters")
        if not _UNIX_SECONDS.fullmatch(timestamp):
            raise Unauthorized("webhook-timestamp is not a UNIX time in seconds")
        if abs(time.time() - int(timestamp)) > STANDARD_WEBHOOKS_TOLERANCE:
            raise Unauthorized("webhook-timestamp is outside the 5-minute tolerance")
        well_formed = " ".join(s for s in signatures.split() if _SIGNATURE.fullmatch(s))
        if not well_formed:
            raise Unauthorized("signature does not match the body")
        sent = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": well_formed}
        matched = False
        for secret in secrets:  # every secret, so timing does not tell which one matched
            try:
                _webhook(secret).verify(body, sent, json_parse=False)
                matched = True
            except Exception:  # the package's refusal, or a body that is not UTF-8
                continue
        if not matched:
            raise Unauthorized("signature does not match the body")
        return ReplayGuard(
            msg_id, int(timestamp) + STANDARD_WEBHOOKS_TOLERANCE, "webhook-id was already used"
        )

    def check_secrets(self, secrets):
        problems, keys = {}, {}
        for index, secret in enumerate(secrets):
            try:
                _webhook(secret)  # the package refuses it: not whsec_ and base64
                keys[index] = base64.b64decode(secret.removeprefix("whsec_") + "==")  # as it does
            except Exception:
                problems[index] = "not a Standard Webhooks secret (whsec_ and base64)"
        short = short_hmac_secrets(keys.values(), decode=bytes, measured=" once decoded")
        problems.update({index: short[i] for i, index in enumerate(keys) if i in short})
        return problems


class Bearer(InboundVerifier):
    """`Authorization: Bearer <secret>`."""

    name = "BEARER"
    security_scheme = {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <secret>`."}

    def verify(self, secrets, headers, body: bytes) -> None:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing Authorization: Bearer header")
        if not any_equal(secrets, token.strip()):
            raise Unauthorized("bearer token is not valid")


class HttpBasic(InboundVerifier):
    """`Authorization: Basic …`; each secret is `user:password`."""

    name = "HTTP_BASIC"
    security_scheme = {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic: a secret is `user:password`.",
    }

    def verify(self, secrets, headers, body: bytes) -> None:
        scheme, _, encoded = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise Unauthorized("missing Authorization: Basic header")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise Unauthorized("Authorization: Basic is not valid base64") from exc
        if not any_equal(secrets, credentials):
            raise Unauthorized("credentials are not valid")

    def check_secrets(self, secrets):
        return {
            i: "HTTP_BASIC secrets are user:password" for i, secret in enumerate(secrets) if ":" not in secret
        }
