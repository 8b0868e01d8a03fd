"""HS256 (plugins/extole/auth.py): `X-Extole-Signature: sha256=<hex>` or `sha1=<hex>` of the
raw body bytes, any configured secret matching (rotation)."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from connector.contract import Unauthorized
from plugins.extole.auth import ExtoleSignature
from plugins.extole.testing import sign

VERIFIER = ExtoleSignature()
BODY = b'{"event_id":"e-1","type":"opt_in"}'
SECRETS = ["current-secret"]


def signed(signature: str) -> Headers:
    return Headers({"X-Extole-Signature": signature})


def refused(sent: Headers, body: bytes = BODY, secrets=SECRETS) -> str:
    with pytest.raises(Unauthorized) as exc:
        VERIFIER.verify(secrets, sent, body)
    return str(exc.value)


@pytest.mark.parametrize(
    "signature",
    [
        sign(BODY, "current-secret"),
        sign(BODY, "current-secret", "sha1"),
        sign(BODY, "current-secret").upper().replace("SHA256=", "sha256="),
        "SHA256=" + sign(BODY, "current-secret").split("=", 1)[1],
        f" {sign(BODY, 'current-secret')} ",
    ],
)
def test_accepted_forms(signature):
    assert VERIFIER.verify(SECRETS, signed(signature), BODY) is None  # accepted, no replay guard


def test_header_name_case_does_not_matter():
    sent = Headers([("x-extole-signature", sign(BODY, "current-secret"))])
    assert VERIFIER.verify(SECRETS, sent, BODY) is None


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "missing X-Extole-Signature header"),
        ("  ", "missing X-Extole-Signature header"),
        ("deadbeef", "X-Extole-Signature must be sha256=<hex> or sha1=<hex>"),
        ("md5=abc", "X-Extole-Signature must be sha256=<hex> or sha1=<hex>"),
        ("sha256=", "X-Extole-Signature must be sha256=<hex> or sha1=<hex>"),
        ("=abc", "X-Extole-Signature must be sha256=<hex> or sha1=<hex>"),
        (sign(BODY, "other-secret"), "signature does not match the body"),
        (
            "sha256=" + sign(BODY, "current-secret", "sha1").split("=", 1)[1],
            "signature does not match the body",
        ),
    ],
)
def test_refusals(signature, message):
    sent = Headers() if signature is None else signed(signature)
    assert refused(sent) == message


def test_tampered_body_is_refused():
    assert refused(signed(sign(BODY, "current-secret")), BODY.replace(b"opt_in", b"opt_out")) == (
        "signature does not match the body"
    )


def test_signature_is_over_raw_bytes_not_reserialised_json():
    spaced = b'{"event_id": "e-1",  "type": "opt_in"}'
    VERIFIER.verify(SECRETS, signed(sign(spaced, "current-secret")), spaced)
    assert refused(signed(sign(BODY, "current-secret")), spaced) == ("signature does not match the body")


def test_rotation_any_configured_secret_matches():
    rotating = ["old-secret", "new-secret"]
    VERIFIER.verify(rotating, signed(sign(BODY, "new-secret")), BODY)
    VERIFIER.verify(rotating, signed(sign(BODY, "old-secret", "sha1")), BODY)
    assert refused(signed(sign(BODY, "retired-secret")), secrets=rotating) == (
        "signature does not match the body"
    )


def test_sha1_refused_when_the_source_sets_allow_sha1_false():
    sha1 = signed(sign(BODY, "current-secret", "sha1"))
    with pytest.raises(Unauthorized) as exc:
        VERIFIER.verify(SECRETS, sha1, BODY, allow_sha1=False)
    assert str(exc.value) == "X-Extole-Signature must be sha256=<hex>: this source does not accept sha1"
    VERIFIER.verify(SECRETS, signed(sign(BODY, "current-secret")), BODY, allow_sha1=False)


def test_secrets_under_16_bytes_are_refused():
    assert VERIFIER.check_secrets(["x" * 16, "x" * 15, "é" * 8]) == {
        1: "shorter than 16 bytes: HMAC secrets need at least 16 (use a long random one)"
    }
