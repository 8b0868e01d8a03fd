"""Inbound JSON (connector/payloads.py): a lone UTF-16 surrogate anywhere is refused by its
path; NaN and Infinity are not JSON. Ids refuse control characters (connector/fields.py)."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from connector.contract import PayloadError
from connector.fields import no_control_characters
from connector.payloads import parse_json

SURROGATE = "invalid Unicode: a lone UTF-16 surrogate (\\ud800-\\udfff)"

LONE_SURROGATES = [
    # (case, body, the paths named)
    ("the document itself", rb'"\ud800"', ["$"]),
    ("a field", rb'{"a": "x\uDFFF"}', ["a"]),
    ("deep in an array", rb'[{"p": {"n": ["ok", "\udbff"]}}]', ["[0].p.n[1]"]),
    ("a key", rb'{"p": {"\ud800": 1}}', ["p"]),
    ("several", rb'{"a": "\ud800", "b": ["\udc00"]}', ["a", "b[0]"]),
    # json.loads decodes bytes with surrogatepass: no escape needed to make one
    ("encoded as UTF-8", b'{"a": "\xed\xa0\x80"}', ["a"]),
    ("in a UTF-16 body", '{"a": "\ud800"}'.encode("utf-16-le", "surrogatepass"), ["a"]),
]


@pytest.mark.parametrize("body, paths", [c[1:] for c in LONE_SURROGATES], ids=[c[0] for c in LONE_SURROGATES])
def test_a_lone_surrogate_is_refused_by_its_path(body, paths):
    with pytest.raises(PayloadError) as refused:
        parse_json(body)
    assert refused.value.problems == {path: [SURROGATE] for path in paths}


@pytest.mark.parametrize(
    "body, document",
    [
        (rb'{"a": "\ud83d\ude00"}', {"a": "\U0001f600"}),  # a pair is one character
        (rb'{"a": "\\ud800"}', {"a": "\\ud800"}),  # an escaped backslash, then text
    ],
)
def test_surrogate_pairs_and_escaped_backslashes_are_text(body, document):
    assert parse_json(body) == document


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    with pytest.raises(PayloadError) as refused:
        parse_json(f'{{"a": {constant}}}'.encode())
    assert refused.value.problems == {"$": [f"malformed JSON: {constant} is not a JSON value"]}


@pytest.mark.parametrize("character", ["\x00", "\t", "\n", "\x1f", "\x7f", "\x80", "\x9f"])
def test_ids_refuse_control_characters(character):
    with pytest.raises(ValidationError) as refused:
        no_control_characters(f"id{character}")
    assert refused.value.messages == ["must not contain control characters (U+0000–U+001F, U+007F–U+009F)"]


@pytest.mark.parametrize("text", ["e-1", "ünïcode id", "\xa0", "\u2028", "😀"])
def test_ids_take_any_other_character(text):
    assert no_control_characters(text) is None
