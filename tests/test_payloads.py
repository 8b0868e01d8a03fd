"""Ids refuse control characters (connector/fields.py)."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from connector.fields import no_control_characters


@pytest.mark.parametrize("character", ["\x00", "\t", "\n", "\x1f", "\x7f", "\x80", "\x9f"])
def test_ids_refuse_control_characters(character):
    with pytest.raises(ValidationError) as refused:
        no_control_characters(f"id{character}")
    assert refused.value.messages == ["must not contain control characters (U+0000–U+001F, U+007F–U+009F)"]


@pytest.mark.parametrize("text", ["e-1", "ünïcode id", "\xa0", "\u2028", "😀"])
def test_ids_take_any_other_character(text):
    assert no_control_characters(text) is None
