"""The redactor (connector/redaction.py): every secret, whatever its length, as it is and as
it appears URL-encoded or inside a JSON string; live tokens too; and the head of a long text
redacted as the whole text would be."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.contract import OutboundRequest
from connector.http import MAX_RECORDED_BODY, HttpClient
from connector.redaction import Redactor
from tests.fuzzing import examples


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


def test_the_head_of_a_long_text_is_redacted_as_the_whole_text_would_be():
    redactor = Redactor(["sec-ret-value", "k"])
    text = "x" * 90 + "sec-ret-value" + "k" * 40 + "y" * 10_000
    for limit in range(1, 200):
        assert redactor.head(text, limit) == redactor.text(text)[:limit]


@settings(max_examples=examples(300), deadline=None)
@given(
    parts=st.lists(st.sampled_from(["sec-ret-value", "k", "kk", "ab", "a", "-", "x" * 7]), max_size=60),
    limit=st.integers(min_value=0, max_value=120),
)
def test_no_secret_is_left_partly_in_a_redacted_head(parts, limit):
    redactor = Redactor(["sec-ret-value", "k", "ab"])
    text = "".join(parts)
    assert redactor.head(text, limit) == redactor.text(text)[:limit]


def test_a_secret_an_answer_echoes_across_the_recorded_length_is_not_kept_in_part(requests_mock):
    secret = "echoed-secret-value"
    body = "x" * (MAX_RECORDED_BODY - 5) + secret + "y" * 100
    requests_mock.post("https://partner.test/echo", text=body)
    result = HttpClient(redactor=Redactor([secret])).send(
        OutboundRequest("POST", "https://partner.test/echo")
    )
    recorded = result.response_record["body"]
    assert len(recorded) == MAX_RECORDED_BODY
    assert recorded.endswith("x***yy")
    assert secret[:5] not in recorded
