"""Ids refuse control characters (connector/fields.py)."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from connector.fields import a_phone_number, no_control_characters, phone_digits, text_up_to


@pytest.mark.parametrize("character", ["\x00", "\t", "\n", "\x1f", "\x7f", "\x80", "\x9f"])
def test_ids_refuse_control_characters(character):
    with pytest.raises(ValidationError) as refused:
        no_control_characters(f"id{character}")
    assert refused.value.messages == ["must not contain control characters (U+0000–U+001F, U+007F–U+009F)"]


@pytest.mark.parametrize("text", ["e-1", "ünïcode id", "\xa0", "\u2028", "😀"])
def test_ids_take_any_other_character(text):
    assert no_control_characters(text) is None


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("+15555555555", "15555555555"),
        ("+1 (555) 555-5555", "15555555555"),
        ("44.20.7946.0958", "442079460958"),
        ("+44 (0)20 7946 0958", "442079460958"),  # the trunk 0 beside a country code
        ("0044 20 7946 0958", "442079460958"),  # 00: the international prefix
        ("12+3456789", None),
        ("12345678", "12345678"),
        ("1234567", None),  # too few digits
        ("+1234567890123456", None),  # too many
        ("²²²²²²²²²", None),  # digits to Python, not to a phone
        ("555 1234 ext. 9", None),
        ("1+5555555555", None),
        ("", None),
    ],
)
def test_phone_numbers_are_8_to_15_digits_with_common_punctuation(value, digits):
    assert phone_digits(value) == digits
    if digits is None:
        with pytest.raises(ValidationError, match="not a phone number of 8–15 digits"):
            a_phone_number(value)
    else:
        assert a_phone_number(value) is None


@pytest.mark.parametrize("text", ["Jane", "", "\xa0Jane", "line\u2028sep", "zero\u200bwidth", "😀"])
def test_free_text_takes_any_character_but_control_ones(text):
    assert text_up_to(20)(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * 21, "Longer than maximum length 20."),
        ("Ja\x00ne", "must not contain control characters (U+0000–U+001F, U+007F–U+009F)"),
        ("Ja\x85ne", "must not contain control characters (U+0000–U+001F, U+007F–U+009F)"),
    ],
)
def test_free_text_refuses_length_past_the_limit_and_control_characters(text, message):
    with pytest.raises(ValidationError) as refused:
        text_up_to(20)(text)
    assert refused.value.messages == [message]
