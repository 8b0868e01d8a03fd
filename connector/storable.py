"""What the store keeps of text from outside (a partner's answer, a poll's failure): strings
within a length, with no NUL (PostgreSQL's TEXT refuses it) and no lone surrogate (no UTF-8
holds one, so neither SQLite nor PostgreSQL takes it), the same on both stores.

A partner's error fields come in any shape (an object, a list, a number, null): `readable`
turns each into the text a person would want to read, before anything is stored."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable

#: The attempt log's limits (`error_code` is VARCHAR(128) on PostgreSQL).
MAX_CODE = 128
MAX_MESSAGE = 1000
#: A delivery's `reason` and a poll's error: room for our words around a partner's message.
MAX_REASON = 2000
#: Any other string of a recorded request or answer (a body as text is cut before this).
MAX_FIELD = 16 * 1024
#: Levels of a recorded request or answer kept; deeper parts become a note.
MAX_DEPTH = 16
CUT = "…"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]+")
#: Where an object's code or message usually is, first match wins.
CODE_KEYS = ("code", "error", "errorCode", "error_code", "type", "name", "status")
MESSAGE_KEYS = ("message", "error_description", "description", "detail", "details", "msg", "title", "error")


def clean(value: str) -> str:
    """`value` with each NUL and each lone surrogate replaced by U+FFFD (a surrogate pair
    becomes the character it encodes)."""
    if not _UNSTORABLE.search(value):
        return value
    value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value.replace("\x00", "\ufffd")


def cut(value: str, limit: int) -> str:
    """At most `limit` characters; a cut one ends with …"""
    return value if len(value) <= limit else value[: limit - len(CUT)] + CUT


def text(value, limit: int = MAX_REASON) -> str | None:
    """Any value as storable text of at most `limit` characters (None stays None)."""
    shown = readable(value)
    return None if shown is None else cut(clean(shown), limit)


def error_code(value) -> str | None:
    """A partner's error code on one line, at most MAX_CODE characters; None when empty."""
    shown = readable(value, CODE_KEYS)
    if shown is None:
        return None
    return cut(clean(_CONTROL.sub(" ", shown).strip()), MAX_CODE) or None


def error_message(value) -> str | None:
    """A partner's error message, at most MAX_MESSAGE characters; None when empty."""
    shown = readable(value, MESSAGE_KEYS)
    if shown is None:
        return None
    return cut(clean(shown), MAX_MESSAGE) or None


def readable(value, keys: Iterable[str] = (), depth: int = 0) -> str | None:
    """Text for a value of any JSON shape: a string as it is, a number or boolean as JSON
    writes it, a list as its items joined with "; ", an object as its first of `keys` that
    holds something (e.g. `code`), else as JSON text. None (and empty lists) give None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return _json(value)
    keys = tuple(keys)
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return _json(value)
        parts = [readable(item, keys, depth + 1) for item in value[:MAX_MESSAGE]]
        return "; ".join(p for p in parts if p) or None
    if isinstance(value, dict):
        for key in keys:
            if depth < MAX_DEPTH and value.get(key) not in (None, "", [], {}):
                return readable(value[key], keys, depth + 1)
        return _json(value)
    return str(value)


def _json(value) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):  # circular or too deep for the encoder
        return f"({type(value).__name__} not shown)"


def record(value, limit: int = MAX_FIELD, depth: int = 0):
    """A recorded request or answer made storable: every string cleaned and cut to `limit`,
    keys as strings, nesting stopped at MAX_DEPTH, anything not JSON (a non-finite number
    included: the admin API must stay valid JSON) as its text."""
    if value is None or isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, str):
        return cut(clean(value), limit)
    if depth >= MAX_DEPTH:
        return f"(nested deeper than {MAX_DEPTH} levels: not kept)"
    if isinstance(value, dict):
        return {cut(clean(str(k)), MAX_CODE): record(v, limit, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [record(item, limit, depth + 1) for item in value]
    return cut(clean(str(value)), limit)
