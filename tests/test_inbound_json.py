"""Inbound JSON (connector/inbound_json.py): nesting deeper than 64 levels, numbers no double
holds and lone UTF-16 surrogates are refused by their path; NaN and Infinity are not JSON;
brackets and escapes inside strings do not count as nesting."""

from __future__ import annotations

import json
import math

import pytest

from connector.contract import PayloadError
from connector.inbound_json import MAX_DEPTH, parse_json


def problems(body: bytes) -> dict[str, list[str]]:
    with pytest.raises(PayloadError) as refused:
        parse_json(body)
    return refused.value.problems


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


@pytest.mark.parametrize(
    ("body", "paths"), [c[1:] for c in LONE_SURROGATES], ids=[c[0] for c in LONE_SURROGATES]
)
def test_a_lone_surrogate_is_refused_by_its_path(body, paths):
    with pytest.raises(PayloadError) as refused:
        parse_json(body)
    assert refused.value.problems == {path: [SURROGATE] for path in paths}


@pytest.mark.parametrize(
    ("body", "document"),
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


# -- depth ------------------------------------------------------------------------------------
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


def nested(levels: int, inner: str = "1") -> str:
    """`levels` arrays and objects in turn, the innermost holding `inner`."""
    text = inner
    for level in range(levels):
        text = f"[{text}]" if level % 2 else f'{{"k{level}": {text}}}'
    return text


def test_sixty_four_levels_are_read():
    assert parse_json(nested(MAX_DEPTH).encode()) is not None
    assert parse_json(("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode()) is not None


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 200, 971, 5000, 200_000])
def test_deeper_nesting_is_refused_by_the_path_where_it_goes_too_deep(levels):
    found = problems(("[" * levels + "]" * levels).encode())
    assert found == {"[0]" * MAX_DEPTH: [TOO_DEEP]}


def test_the_path_names_keys_and_indexes():
    deep: dict = {}
    for _ in range(70):
        deep = {"a": deep}
    body = json.dumps({"batch": [{"ok": [1]}, {"properties": deep}]})
    # the document, the batch, its item and properties are four levels; then 61 more "a"
    assert problems(body.encode()) == {"batch[1].properties" + ".a" * 61: [TOO_DEEP]}


def test_a_long_key_is_cut_in_the_path():
    key = "k" * 500
    body = f'{{"{key}": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
    (path,) = problems(body.encode())
    assert path.split(".")[0] == "k" * 64 + "…"


@pytest.mark.parametrize(
    "text",
    [
        '"' + "[" * 500 + '"',  # brackets in a string
        r'["\\"' + ", [1]" * 100 + "]",  # an escaped backslash ends the string before them
        r'["\"[[[[' + "[" * 100 + '"' + ", [1]" * 10 + "]",  # an escaped quote does not end it
        "[" + ", ".join(["[[1]]"] * 1000) + "]",  # many brackets, shallow
    ],
)
def test_brackets_in_strings_and_many_shallow_ones_are_not_depth(text):
    assert parse_json(text.encode()) == json.loads(text)


def test_depth_is_measured_in_a_utf16_body():
    body = ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode("utf-16-le")
    assert problems(body) == {"[0]" * MAX_DEPTH: [TOO_DEEP]}


def test_brackets_never_closed_are_malformed_json():
    assert problems(b"[" * 100_000) == {"$": ["malformed JSON: nested too deeply"]}


# -- numbers ----------------------------------------------------------------------------------
OUT_OF_RANGE = "a number outside the range of a double (about ±1.8e308)"
BIGGEST = int(1.7976931348623157e308)


@pytest.mark.parametrize(
    "number",
    ["1e400", "-1e400", "1E+309", "9" * 400, "-" + "9" * 400, str(BIGGEST + 2**971), "1" + "0" * 300 + "e9"],
)
def test_a_number_no_double_holds_is_refused_by_its_path(number):
    assert problems(f'{{"a": [0, {{"b": {number}}}]}}'.encode()) == {"a[1].b": [OUT_OF_RANGE]}


def test_every_such_number_is_named_in_a_large_body_too():
    events = [{"n": i} for i in range(5000)]
    events[7]["n"], events[4321]["n"] = 1e300, 10**400
    body = json.dumps(events).replace("1e+300", "1e+400").encode()
    assert len(body) > 16 * 1024  # past the size read with the checks at once: scanned first
    assert problems(body) == {"[7].n": [OUT_OF_RANGE], "[4321].n": [OUT_OF_RANGE]}


@pytest.mark.parametrize(
    ("number", "value"),
    [("1.7976931348623157e308", 1.7976931348623157e308), (str(BIGGEST), BIGGEST), ("1e-400", 0.0)],
)
def test_numbers_at_the_edge_of_the_range_are_read(number, value):
    assert parse_json(f"[{number}]".encode()) == [value]


def test_an_integer_of_thousands_of_digits_is_refused_without_converting_it():
    assert problems(b"[" + b"7" * 20_000 + b"]") == {"[0]": [OUT_OF_RANGE]}


def test_what_is_read_is_always_finite():
    document = parse_json(json.dumps([1.5e308, -1e-300, 10**308, 2**64]).encode())
    assert all(math.isfinite(number) for number in document)
