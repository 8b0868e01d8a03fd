"""SEGMENT_SIGNATURE (plugins/segment/auth.py): `X-Signature: <hex HMAC-SHA1 of the raw
body>`, as Segment's webhook destinations sign, any configured secret matching."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from werkzeug.datastructures import Headers

from connector.contract import Unauthorized
from plugins.segment.auth import SegmentSignature

VERIFIER = SegmentSignature()
BODY = b'{"type":"track","event":"Audience Entered"}'
SECRETS = ["seg-secret", "seg-next"]


def segment_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signed(signature: str) -> Headers:
    return Headers({"X-Signature": signature})


@pytest.mark.parametrize(
    "signature",
    [
        segment_signature(BODY, "seg-secret"),
        segment_signature(BODY, "seg-next"),
        segment_signature(BODY, "seg-secret").upper(),
        f" {segment_signature(BODY, 'seg-secret')}\t",
    ],
)
def test_accepted(signature):
    assert VERIFIER.verify(SECRETS, signed(signature), BODY) is None  # accepted, no replay guard


@pytest.mark.parametrize(
    ("sent", "body", "message"),
    [
        (Headers(), BODY, "missing X-Signature header"),
        (signed(" "), BODY, "missing X-Signature header"),
        (signed(segment_signature(BODY, "nope")), BODY, "signature does not match the body"),
        (signed(segment_signature(BODY, "seg-secret")), BODY + b" ", "signature does not match the body"),
        (signed("sha1=" + segment_signature(BODY, "seg-secret")), BODY, "signature does not match the body"),
    ],
)
def test_refusals(sent, body, message):
    with pytest.raises(Unauthorized) as exc:
        VERIFIER.verify(SECRETS, sent, body)
    assert str(exc.value) == message


def test_secrets_under_16_bytes_are_refused():
    assert VERIFIER.check_secrets(["a-secret-of-16-b", "fifteen-bytes!!"]) == {
        1: "shorter than 16 bytes: HMAC secrets need at least 16 (use a long random one)"
    }
