"""JSON text for what the connector stores and sends, written once per value: orjson, which
encodes an event's payload about five times faster than json.dumps (JSON encoding was a
quarter of the activity worker's CPU: docs/performance.md), and json.dumps for the values
orjson refuses (a lone surrogate, an integer past 64 bits, a key that is not a string), so
anything json.dumps takes is still written."""

from __future__ import annotations

import json

import orjson

#: Values orjson hands to `default` as they are (json.dumps would too), so what they become is
#: the same text either way: `str(value)`.
_AS_JSON_DUMPS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps(value) -> str:
    """Compact JSON text of `value` for the store; anything not JSON as its `str()`."""
    try:
        return orjson.dumps(value, default=str, option=_AS_JSON_DUMPS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, separators=(",", ":"), default=str)


def body(value) -> bytes:
    """A request body: compact UTF-8 JSON (plugin_api.body_bytes gives plugins its size).
    A value of a type JSON has no place for raises TypeError, as requests' `json=` does; a NaN
    or an infinity (which no stored value holds: inbound JSON refuses them) is written null."""
    try:
        return orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)
    except orjson.JSONEncodeError:
        return json.dumps(value, allow_nan=False).encode()


def loads(text: bytes | str):
    """The value of JSON text; what orjson refuses and json.loads reads (NaN, an integer past
    64 bits, a lone surrogate's escape) is read as json.loads reads it."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
