"""Inbound JSON as sources read it: bounded before anything else sees it. Nesting deeper than
MAX_DEPTH, a number no double holds, or a lone UTF-16 surrogate in a string is refused by its
payload path ("[3].person.email", "batch[2]", "$" for the document), as is text that is not
JSON; each check costs next to nothing on a small, plain document."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from connector.contract import PayloadError


def parse_json(body: bytes) -> Any:
    """The JSON document, or PayloadError naming what cannot be taken and where: nesting
    deeper than MAX_DEPTH, a number no double holds (1e400, a 400-digit integer), a string
    holding a lone UTF-16 surrogate (a `\\ud800` escape, which no text can hold and no
    database stores)."""
    utf8 = json.detect_encoding(body) == "utf-8"
    # A document of at most MAX_DEPTH brackets cannot nest deeper (one bracket count in C);
    # past that the depth is measured, and only a document nested too deeply is walked for
    # the path (json.dumps recurses: about 970 levels made storing the event a 500).
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:
        text = body if utf8 else _as_utf8(body)
        if text is not None and _depth(text) > MAX_DEPTH:
            raise PayloadError({_too_deep_at(text): [f"nested deeper than {MAX_DEPTH} levels"]})
    # Numbers are checked as they are read (a call per number); a large body is first scanned
    # in C for one that could be out of range (reading a document of numbers with the
    # checks took twice as long).
    may_overflow = len(body) <= _SCAN_FROM or not utf8 or _may_overflow(body)
    hooks = _CHECKED if may_overflow else _UNCHECKED
    try:
        document = json.loads(body, **hooks)
    except _OutOfRange:  # named by path below: the same text read again, marking them
        document = json.loads(body, parse_float=_marked_float, parse_int=_marked_int)
        raise PayloadError({path: [_OUT_OF_RANGE_MESSAGE] for path in _out_of_range(document)}) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError({"$": [f"malformed JSON: {exc}"]}) from exc
    except RecursionError as exc:  # [[[[… never closed: no depth to measure, json.loads recurses
        raise PayloadError({"$": ["malformed JSON: nested too deeply"]}) from exc
    # Only a `\u` escape, or bytes json.loads lets through (it decodes with surrogatepass: a
    # surrogate encoded as UTF-8, or a UTF-16/32 body), can make one.
    if not utf8 or _MAY_HOLD_SURROGATE.search(body):
        problems: dict[str, list[str]] = {}
        for path in _lone_surrogates(document):
            problems.setdefault(path, []).append(_SURROGATE_MESSAGE)
        if problems:
            raise PayloadError(problems)
    return document


def _not_json(constant: str):
    raise ValueError(f"{constant} is not a JSON value")


# -- numbers: every one a finite double ---------------------------------------------------
class _OutOfRange(ValueError):
    """A number literal outside the finite double range."""


class _Marked:
    """Where the second reading found an out-of-range number."""


_DOUBLE_MAX = sys.float_info.max
_DOUBLE_DIGITS = len(str(int(_DOUBLE_MAX)))  # 309: a shorter integer always fits
_OUT_OF_RANGE_MESSAGE = "a number outside the range of a double (about ±1.8e308)"
MAX_OUT_OF_RANGE_PATHS = 100


#: Each byte as its shape in a number: a digit (d), an exponent mark (e), a plus, or not (x).
_SHAPES = b"".join(
    b"d" if c in b"0123456789" else b"e" if c in b"eE" else b"+" if c == ord("+") else b"x"
    for c in range(256)
)
#: A double's range ends past 1.8e308: a literal beyond it has an exponent of three digits,
#: or (with an exponent of at most two) 210 digits in a row.
_LONG_DIGITS = b"d" * (_DOUBLE_DIGITS - 99)


#: Bodies up to this size are read with the checks at once (a few numbers cost less than a scan).
_SCAN_FROM = 16 * 1024


def _may_overflow(body: bytes) -> bool:
    """Whether a number in `body` could be outside the double range: all in C, one
    translation and three searches (a string that looks so only makes the check run)."""
    shapes = body.translate(_SHAPES)
    return b"eddd" in shapes or b"e+ddd" in shapes or _LONG_DIGITS in shapes


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _OutOfRange(text)
    return value


def _fits(text: str) -> bool:
    """Whether an integer literal is within the double range (JSON has no leading zeros, so
    its digits say, but at exactly 309 of them); int() never sees a longer one (past 4,300
    digits it refuses, naming no path)."""
    digits = len(text) - (text[0] == "-")
    return digits < _DOUBLE_DIGITS or (digits == _DOUBLE_DIGITS and abs(int(text)) <= _DOUBLE_MAX)


def _int(text: str) -> int:
    if not _fits(text):
        raise _OutOfRange(text)
    return int(text)


_UNCHECKED = {"parse_constant": _not_json}
_CHECKED = {"parse_constant": _not_json, "parse_float": _float, "parse_int": _int}


def _marked_float(text: str):
    value = float(text)
    return _Marked() if math.isinf(value) else value


def _marked_int(text: str):
    return int(text) if _fits(text) else _Marked()


def _out_of_range(document: Any) -> list[str]:
    """Paths of the numbers marked, walked without recursion, at most MAX_OUT_OF_RANGE_PATHS."""
    found: list[str] = []
    stack = [("", document)]
    while stack and len(found) < MAX_OUT_OF_RANGE_PATHS:
        path, value = stack.pop()
        if isinstance(value, _Marked):
            found.append(path or "$")
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            stack.extend((_key_path(path, key), item) for key, item in reversed(list(value.items())))
    return found


def _key_path(path: str, key: str) -> str:
    # A lone surrogate in a key is refused by its own check; here it is only named.
    shown = key.encode("utf-8", "replace").decode() if _SURROGATE.search(key) else key
    return f"{path}.{shown}" if path else shown


# -- depth: at most MAX_DEPTH nested arrays and objects -----------------------------------
MAX_DEPTH = 64
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
MAX_SHOWN_KEY = 64


def _as_utf8(body: bytes) -> bytes | None:
    """A UTF-16/32 body as UTF-8, or None when it is not text (json.loads refuses it then)."""
    try:
        return body.decode(json.detect_encoding(body), "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError:
        return None


def _depth(text: bytes) -> int:
    """How deep the text's arrays and objects nest (MAX_DEPTH + 1 for anything deeper),
    brackets in strings aside; in C but for one pass per level over the brackets alone.
    Escaped backslashes and quotes go first; then each `"` opens or closes a string."""
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = text.translate(_AS_BRACKETS, _NOT_STRUCTURE)  # quotes and brackets, all as [ ]
    brackets = kept.replace(b'""', b"")
    if b'"' in brackets:  # a string holds brackets: what lies outside strings is at even places
        brackets = b"".join(kept.split(b'"')[::2])
    for depth in range(MAX_DEPTH + 1):
        if not brackets:
            return depth
        inner = brackets.replace(b"[]", b"")  # one level: every innermost pair at once
        if len(inner) == len(brackets):
            return depth  # unbalanced: not JSON, and json.loads says so
        brackets = inner
    return MAX_DEPTH + 1


def _too_deep_at(text: bytes) -> str:
    """The path of the first array or object nested deeper than MAX_DEPTH ("$" if none is:
    the text is not JSON then, and nothing reads it further)."""
    stack: list[list] = []  # each open container: [is an object, key or index, expecting a key]
    for match in _TOKEN.finditer(text):
        token = match[0]
        kind = token[:1]
        top = stack[-1] if stack else None
        if kind in (b"[", b"{"):
            if len(stack) == MAX_DEPTH:
                return _path_of(stack)
            stack.append([kind == b"{", 0 if kind == b"[" else "", kind == b"{"])
        elif kind in (b"]", b"}"):
            if stack:
                stack.pop()
        elif top is None:
            continue
        elif kind == b",":
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif top[0] and top[2]:  # a string where a key goes
            top[1], top[2] = _key_text(token), False
    return "$"


def _key_text(token: bytes) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        key = token[1:-1].decode("utf-8", "replace")
    key = key.encode("utf-8", "replace").decode()  # no lone surrogate in a path
    return key if len(key) <= MAX_SHOWN_KEY else f"{key[:MAX_SHOWN_KEY]}…"


def _path_of(stack: list[list]) -> str:
    path = ""
    for is_object, at, _ in stack:
        path = _key_path(path, at) if is_object else f"{path}[{at}]"
    return path or "$"


# -- lone surrogates ------------------------------------------------------------------------
_MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_MESSAGE = "invalid Unicode: a lone UTF-16 surrogate (\\ud800-\\udfff)"
MAX_SURROGATE_PATHS = 100


def _lone_surrogates(document: Any) -> list[str]:
    """Paths ("[3].person.email", "batch[2]", "$" for the root) of strings, and of objects
    with keys, holding a surrogate; walked without recursion, at most MAX_SURROGATE_PATHS."""
    found: list[str] = []
    stack = [("", document)]
    while stack and len(found) < MAX_SURROGATE_PATHS:
        path, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                found.append(path or "$")
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            if any(_SURROGATE.search(key) for key in value):
                found.append(path or "$")
            stack.extend(
                (f"{path}.{key}" if path else key, item)
                for key, item in reversed(list(value.items()))
                if not _SURROGATE.search(key)
            )
    return found
