"""Inbound webhook authentication: signatures over the raw bytes, rotation, each algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from werkzeug.datastructures import Headers

from connector.contract import Unauthorized
from connector.registry import load_registry
from tests.conftest import sign

VERIFIERS = load_registry().verifiers


def verify(auth, headers, body):
    VERIFIERS[auth["algorithm"]].verify(auth["secrets"], headers, body)


BODY = b'{"event_id":"e-1","type":"opt_in"}'
HS256 = {"algorithm": "HS256", "secrets": ["current-secret"]}


def headers(**values) -> Headers:
    return Headers([(name.replace("_", "-"), value) for name, value in values.items()])


def refused(auth, sent, body=BODY) -> str:
    with pytest.raises(Unauthorized) as exc:
        verify(auth, sent, body)
    return str(exc.value)


# -- HS256: X-Extole-Signature -------------------------------------------------------------

def test_hs256_sha256_form_accepted():
    verify(HS256, headers(X_Extole_Signature=sign(BODY, "current-secret")), BODY)


def test_hs256_sha1_form_accepted():
    verify(HS256, headers(X_Extole_Signature=sign(BODY, "current-secret", "sha1")), BODY)


def test_hs256_upper_case_hex_and_header_name_case_do_not_matter():
    signature = sign(BODY, "current-secret").upper().replace("SHA256=", "sha256=")
    verify(HS256, Headers([("x-extole-signature", signature)]), BODY)


def test_hs256_wrong_secret_refused():
    sent = headers(X_Extole_Signature=sign(BODY, "other-secret"))
    assert refused(HS256, sent) == "signature does not match the body"


def test_hs256_missing_header_refused():
    assert refused(HS256, headers()) == "missing X-Extole-Signature header"


@pytest.mark.parametrize("value", ["deadbeef", "md5=abc", "sha256=", "=abc"])
def test_hs256_malformed_header_refused(value):
    assert refused(HS256, headers(X_Extole_Signature=value)) == (
        "X-Extole-Signature must be sha256=<hex> or sha1=<hex>")


def test_hs256_tampered_body_refused():
    sent = headers(X_Extole_Signature=sign(BODY, "current-secret"))
    assert refused(HS256, sent, BODY.replace(b"opt_in", b"opt_out")) == (
        "signature does not match the body")


def test_hs256_signature_is_over_raw_bytes_not_reserialised_json():
    spaced = b'{"event_id": "e-1",  "type": "opt_in"}'
    verify(HS256, headers(X_Extole_Signature=sign(spaced, "current-secret")), spaced)
    sent = headers(X_Extole_Signature=sign(BODY, "current-secret"))
    with pytest.raises(Unauthorized):
        verify(HS256, sent, spaced)


def test_hs256_rotation_second_secret_matches():
    auth = {"algorithm": "HS256", "secrets": ["old-secret", "new-secret"]}
    verify(auth, headers(X_Extole_Signature=sign(BODY, "new-secret")), BODY)
    verify(auth, headers(X_Extole_Signature=sign(BODY, "old-secret", "sha1")), BODY)
    with pytest.raises(Unauthorized):
        verify(auth, headers(X_Extole_Signature=sign(BODY, "retired-secret")), BODY)


def test_hs256_sha1_signature_sent_as_sha256_refused():
    sha1_hex = sign(BODY, "current-secret", "sha1").split("=", 1)[1]
    assert refused(HS256, headers(X_Extole_Signature=f"sha256={sha1_hex}")) == (
        "signature does not match the body")


# -- BEARER and HTTP_BASIC ------------------------------------------------------------------

BEARER = {"algorithm": "BEARER", "secrets": ["token-a", "token-b"]}


def test_bearer_accepts_any_configured_token():
    verify(BEARER, headers(Authorization="Bearer token-b"), BODY)
    verify(BEARER, headers(Authorization="bearer token-a"), BODY)


@pytest.mark.parametrize("value,message", [
    (None, "missing Authorization: Bearer header"),
    ("Basic token-a", "missing Authorization: Bearer header"),
    ("Bearer ", "missing Authorization: Bearer header"),
    ("Bearer token-c", "bearer token is not valid"),
    ("Bearer token-a-and-more", "bearer token is not valid"),
])
def test_bearer_refusals(value, message):
    sent = headers() if value is None else headers(Authorization=value)
    assert refused(BEARER, sent) == message


BASIC = {"algorithm": "HTTP_BASIC", "secrets": ["extole:pw-one", "extole:pw-two"]}


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_http_basic_accepts_rotated_credentials():
    verify(BASIC, headers(Authorization=basic("extole:pw-one")), BODY)
    verify(BASIC, headers(Authorization=basic("extole:pw-two")), BODY)


@pytest.mark.parametrize("value,message", [
    (None, "missing Authorization: Basic header"),
    ("Bearer extole:pw-one", "missing Authorization: Basic header"),
    ("Basic %%%not-base64", "Authorization: Basic is not valid base64"),
    (basic("extole:wrong"), "credentials are not valid"),
    (basic("other:pw-one"), "credentials are not valid"),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Authorization: Basic is not valid base64"),
])
def test_http_basic_refusals(value, message):
    sent = headers() if value is None else headers(Authorization=value)
    assert refused(BASIC, sent) == message


# -- SEGMENT_SIGNATURE: X-Signature hex HMAC-SHA1 -------------------------------------------

SEGMENT = {"algorithm": "SEGMENT_SIGNATURE", "secrets": ["seg-secret", "seg-next"]}


def segment_signature(secret: str, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_segment_signature_accepted_for_either_secret():
    verify(SEGMENT, headers(X_Signature=segment_signature("seg-secret")), BODY)
    verify(SEGMENT, headers(X_Signature=segment_signature("seg-next")), BODY)


def test_segment_signature_refusals():
    assert refused(SEGMENT, headers()) == "missing X-Signature header"
    assert refused(SEGMENT, headers(X_Signature=segment_signature("nope"))) == (
        "signature does not match the body")
    assert refused(SEGMENT, headers(X_Signature=segment_signature("seg-secret")), BODY + b" ") == (
        "signature does not match the body")


# -- STANDARD_WEBHOOKS -------------------------------------------------------------------------

SW_KEY = b"standard-webhooks-key-32-bytes!!"
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
STANDARD = {"algorithm": "STANDARD_WEBHOOKS", "secrets": [SW_SECRET]}


def standard_headers(timestamp: int | None = None, key: bytes = SW_KEY, body: bytes = BODY,
                     msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W") -> Headers:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return Headers({"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                    "webhook-signature": f"v1,{signature}"})


def test_standard_webhooks_accepted():
    verify(STANDARD, standard_headers(), BODY)


def test_standard_webhooks_any_of_several_signatures():
    sent = standard_headers()
    sent["webhook-signature"] = f"v1,bm9wZQ== {sent['webhook-signature']}"
    verify(STANDARD, sent, BODY)


def test_standard_webhooks_within_tolerance_accepted():
    verify(STANDARD, standard_headers(int(time.time()) - 290), BODY)
    verify(STANDARD, standard_headers(int(time.time()) + 290), BODY)


@pytest.mark.parametrize("offset", [-301 - 5, 301 + 5])
def test_standard_webhooks_outside_tolerance_refused(offset):
    sent = standard_headers(int(time.time()) + offset)
    assert refused(STANDARD, sent) == "webhook-timestamp is outside the 5-minute tolerance"


def test_standard_webhooks_refusals():
    assert refused(STANDARD, headers()) == (
        "missing webhook-id, webhook-timestamp or webhook-signature header")
    sent = standard_headers()
    sent["webhook-timestamp"] = "yesterday"
    assert refused(STANDARD, sent) == "webhook-timestamp is not a UNIX time in seconds"
    sent["webhook-timestamp"] = "9" * 400  # would overflow float arithmetic
    assert refused(STANDARD, sent) == "webhook-timestamp is not a UNIX time in seconds"
    assert refused(STANDARD, standard_headers(key=b"another-key")) == (
        "signature does not match the body")
    assert refused(STANDARD, standard_headers(), BODY + b"\n") == "signature does not match the body"
    replayed = standard_headers()
    replayed["webhook-id"] = "msg_other"
    assert refused(STANDARD, replayed) == "signature does not match the body"
