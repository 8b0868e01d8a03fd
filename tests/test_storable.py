"""Text from outside made storable: any JSON shape read as text, within the limits, with no
NUL and no lone surrogate."""

import pytest

from connector import storable


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("ERROR_X", "ERROR_X"),
        ({"code": "ERROR_X", "message": "m"}, "ERROR_X"),
        ({"error": {"code": "E1"}}, "E1"),
        (["A", "B", None], "A; B"),
        (42, "42"),
        (True, "true"),
        ({"x": 1}, '{"x": 1}'),
        ("  line\none\x00 ", "line one"),
        (None, None),
        ("", None),
        ([], None),
    ],
)
def test_an_error_code_of_any_shape_is_one_line_of_text(value, code):
    assert storable.error_code(value) == code


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["bad", "worse"], "bad; worse"),
        ({"message": "m", "code": 1}, "m"),
        ({"errors": [1]}, '{"errors": [1]}'),
        (3.5, "3.5"),
        ("a\x00b\ud800c", "a\ufffdb\ufffdc"),
    ],
)
def test_an_error_message_of_any_shape_is_text(value, message):
    assert storable.error_message(value) == message


def test_long_text_is_cut_to_its_limit_with_an_ellipsis():
    assert storable.error_code("E" * 300) == "E" * 127 + "…"
    assert len(storable.error_message("m" * 5000)) == storable.MAX_MESSAGE


def test_a_surrogate_pair_becomes_its_character_and_a_lone_one_a_replacement():
    assert storable.clean("\ud83d\ude00 \udfff") == "😀 \ufffd"
    storable.clean("\ud800x").encode("utf-8")  # storable means encodable


def test_a_record_keeps_its_shape_with_every_string_storable():
    kept = storable.record({"body": "x\x00" * 10, 1: [float("nan"), {"h": "\ud800"}]}, limit=5)
    assert kept == {"body": "x\ufffdx\ufffd…", "1": ["nan", {"h": "\ufffd"}]}


def test_nesting_deeper_than_the_limit_is_kept_as_a_note_or_as_json_text():
    deep: list = ["x"]
    for _ in range(100):
        deep = [deep]
    assert "not kept" in str(storable.record(deep))
    assert storable.error_message(deep).endswith('["x"]' + "]" * 84)
