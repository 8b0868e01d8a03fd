"""The redactor (connector/redaction.py): every secret, whatever its length, as it is and as
it appears URL-encoded or inside a JSON string; live tokens too."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from connector.redaction import Redactor


@pytest.mark.parametrize("secret", ["k", "ab", "abc", "a-long-secret-value"])
def test_a_secret_of_any_length_is_redacted(secret):
    assert Redactor([secret]).text(f"<{secret}>") == "<***>"


@pytest.mark.parametrize(
    "form",
    [quote('p@ss w/rd+&="\\'), quote_plus('p@ss w/rd+&="\\'), json.dumps('p@ss w/rd+&="\\')[1:-1]],
    ids=["url-encoded", "form-encoded", "json-escaped"],
)
def test_a_secret_is_redacted_as_it_appears_encoded(form):
    assert Redactor(['p@ss w/rd+&="\\']).text(f"client_secret={form}&x=1") == "client_secret=***&x=1"


def test_kept_and_live_secrets_are_redacted_and_empty_ones_ignored():
    redactor = Redactor(["", "config-secret"])
    redactor.keep("t", "")
    redactor.add("live-token-1")
    assert redactor.text("config-secret t live-token-1 x") == "*** *** *** x"


def test_sensitive_headers_keep_only_their_scheme():
    redactor = Redactor(["s3cret"])
    assert redactor.headers({"Authorization": "Bearer abc", "X-Other": "has s3cret", "Cookie": "a=b"}) == {
        "Authorization": "Bearer ***",
        "X-Other": "has ***",
        "Cookie": "***",
    }
