"""The core's inbound verifiers (connector/verifiers.py): STANDARD_WEBHOOKS, BEARER and
HTTP_BASIC, each a table of (headers → accepted or the refusal), plus their secret checks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from werkzeug.datastructures import Headers

from connector.contract import Unauthorized
from connector.records import ReplayGuard
from connector.verifiers import Bearer, HttpBasic, StandardWebhooks, any_equal

BODY = b'{"event_id":"e-1","type":"opt_in"}'


def refused(verifier, secrets, sent, body=BODY) -> str:
    with pytest.raises(Unauthorized) as exc:
        verifier.verify(secrets, sent, body)
    return str(exc.value)


def test_any_equal_tries_every_candidate():
    assert any_equal(["a", "b", "c"], "c") is True
    assert any_equal(["a", "b"], "ab") is False
    assert any_equal([], "a") is False


# -- STANDARD_WEBHOOKS ---------------------------------------------------------------------

STANDARD = StandardWebhooks()
SW_KEY = b"standard-webhooks-key-32-bytes!!"
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
SECRETS = [SW_SECRET]
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def standard_headers(
    timestamp: int, key: bytes = SW_KEY, body: bytes = BODY, msg_id: str = MSG_ID
) -> Headers:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return Headers(
        {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}
    )


@pytest.fixture
def sent_now(clock):
    """Headers signed at the (stopped) current time."""
    return lambda **kwargs: standard_headers(int(clock.at), **kwargs)


def test_standard_webhooks_accepted_once_per_webhook_id_until_the_tolerance_ends(sent_now, clock):
    assert STANDARD.verify(SECRETS, sent_now(), BODY) == ReplayGuard(
        MSG_ID, int(clock.at) + 300, "webhook-id was already used"
    )


def test_standard_webhooks_any_of_several_signatures(sent_now):
    sent = sent_now()
    sent["webhook-signature"] = f"v1,bm9wZQ== {sent['webhook-signature']}"
    assert STANDARD.verify(SECRETS, sent, BODY).key == MSG_ID


def test_standard_webhooks_any_of_several_secrets(sent_now):
    other = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()
    assert STANDARD.verify([other, SW_SECRET], sent_now(), BODY).key == MSG_ID


@pytest.mark.parametrize("offset", [-290, 290])
def test_standard_webhooks_within_tolerance_accepted(clock, offset):
    guard = STANDARD.verify(SECRETS, standard_headers(int(clock.at) + offset), BODY)
    assert guard.expires_at == int(clock.at) + offset + 300  # remembered until it would be too old


@pytest.mark.parametrize("offset", [-301, 301])
def test_standard_webhooks_outside_tolerance_refused(clock, offset):
    assert refused(STANDARD, SECRETS, standard_headers(int(clock.at) + offset)) == (
        "webhook-timestamp is outside the 5-minute tolerance"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-id": ""}, "missing webhook-id, webhook-timestamp or webhook-signature header"),
        ({"webhook-signature": ""}, "missing webhook-id, webhook-timestamp or webhook-signature header"),
        ({"webhook-timestamp": "yesterday"}, "webhook-timestamp is not a UNIX time in seconds"),
        ({"webhook-timestamp": "9" * 400}, "webhook-timestamp is not a UNIX time in seconds"),
        ({"webhook-timestamp": "\u00b2"}, "webhook-timestamp is not a UNIX time in seconds"),
        ({"webhook-signature": "v2,abc"}, "signature does not match the body"),
        ({"webhook-id": "msg_other"}, "signature does not match the body"),
    ],
)
def test_standard_webhooks_refusals(sent_now, change, message):
    sent = sent_now()
    for name, value in change.items():
        sent[name] = value
    assert refused(STANDARD, SECRETS, sent) == message


def test_standard_webhooks_wrong_key_or_changed_body_refused(sent_now):
    assert refused(STANDARD, SECRETS, sent_now(key=b"another-key")) == ("signature does not match the body")
    assert refused(STANDARD, SECRETS, sent_now(), BODY + b"\n") == ("signature does not match the body")


def test_standard_webhooks_body_that_is_not_utf8_is_refused(sent_now):
    body = b"\xff\xfe"
    assert refused(STANDARD, SECRETS, sent_now(body=body), body) == ("signature does not match the body")


def test_standard_webhooks_secret_must_be_whsec_base64():
    assert STANDARD.check_secrets([SW_SECRET, "whsec_%%%", "plain"]) == {
        1: "not a Standard Webhooks secret (whsec_ and base64)",
        2: "not a Standard Webhooks secret (whsec_ and base64)",
    }


def test_standard_webhooks_key_needs_16_bytes_once_decoded():
    sixteen, fifteen = (f"whsec_{base64.b64encode(b'k' * n).decode()}" for n in (16, 15))
    assert STANDARD.check_secrets([sixteen, fifteen]) == {
        1: "shorter than 16 bytes once decoded: HMAC secrets need at least 16 (use a long random one)"
    }


# -- BEARER ----------------------------------------------------------------------------------

BEARER = Bearer()
TOKENS = ["token-a", "token-b"]


@pytest.mark.parametrize("value", ["Bearer token-b", "bearer token-a", "Bearer  token-a "])
def test_bearer_accepts_any_configured_token(value):
    assert BEARER.verify(TOKENS, Headers({"Authorization": value}), BODY) is None  # accepted


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "missing Authorization: Bearer header"),
        ("Basic token-a", "missing Authorization: Bearer header"),
        ("Bearer ", "missing Authorization: Bearer header"),
        ("Bearer token-c", "bearer token is not valid"),
        ("Bearer token-a-and-more", "bearer token is not valid"),
    ],
)
def test_bearer_refusals(value, message):
    sent = Headers() if value is None else Headers({"Authorization": value})
    assert refused(BEARER, TOKENS, sent) == message


def test_bearer_takes_any_secret():
    assert BEARER.check_secrets(["anything"]) == {}


# -- HTTP_BASIC ------------------------------------------------------------------------------

BASIC = HttpBasic()
CREDENTIALS = ["extole:pw-one", "extole:pw-two"]


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize("credentials", CREDENTIALS)
def test_http_basic_accepts_rotated_credentials(credentials):
    assert BASIC.verify(CREDENTIALS, Headers({"Authorization": basic(credentials)}), BODY) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "missing Authorization: Basic header"),
        ("Bearer extole:pw-one", "missing Authorization: Basic header"),
        ("Basic %%%not-base64", "Authorization: Basic is not valid base64"),
        (basic("extole:wrong"), "credentials are not valid"),
        (basic("other:pw-one"), "credentials are not valid"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Authorization: Basic is not valid base64"),
    ],
)
def test_http_basic_refusals(value, message):
    sent = Headers() if value is None else Headers({"Authorization": value})
    assert refused(BASIC, CREDENTIALS, sent) == message


def test_http_basic_secrets_need_a_colon():
    assert BASIC.check_secrets(["extole:pw", "nocolon", "user:"]) == {
        1: "HTTP_BASIC secrets are user:password"
    }
