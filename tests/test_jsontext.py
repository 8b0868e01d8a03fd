"""connector.jsontext: orjson where it can, json where it cannot, and the properties the rest of
the core relies on (text json reads back, storable in any column)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.jsontext import body, dumps, loads

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_value_is_written_as_json_dumps_reads_it_back(value):
    assert json.loads(dumps(value)) == value
    assert loads(body(value)) == value


@given(JSON_VALUES)
def test_stored_text_holds_no_nul_and_no_lone_surrogate(value):
    text = dumps(value)
    assert "\x00" not in text
    text.encode("utf-8")  # raises on a lone surrogate


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"a": "\ud800"}, '{"a":"\\ud800"}'),  # a lone surrogate: json's escape
        (2**70, "1180591620717411303424"),  # past 64 bits
        ({1: 2}, '{"1":2}'),  # a key that is not a string
        ({"at": datetime(2026, 1, 2, tzinfo=UTC)}, '{"at":"2026-01-02 00:00:00+00:00"}'),  # str()
    ],
)
def test_what_orjson_refuses_or_writes_otherwise_is_written_as_json_dumps_would(value, text):
    assert dumps(value) == text


def test_a_body_that_is_not_json_is_refused():
    with pytest.raises(TypeError):
        body({"at": datetime(2026, 1, 2, tzinfo=UTC)})


def test_text_orjson_refuses_is_read_as_json_reads_it():
    assert loads('{"n": NaN, "big": 123456789012345678901234567890}')["big"] == 123456789012345678901234567890
