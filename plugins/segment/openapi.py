"""How Segment's requests look in /openapi.json: spec events (one, a bare array or
{"batch": [...]}) on the webhook route, the tracking API's calls on /v1/... routes, their
Segment-shaped refusals, and the two ways Segment authenticates."""

from __future__ import annotations

MESSAGE_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
}
TIME = {"type": ["string", "null"], "format": "date-time"}
COMMON = {
    "messageId": MESSAGE_ID,
    "userId": {"type": ["string", "null"]},
    "anonymousId": {"type": ["string", "null"]},
    "context": {"type": ["object", "null"]},
    "timestamp": TIME,
    "originalTimestamp": TIME,
    "sentAt": TIME,
}
TRACK = {
    "type": "object",
    "required": ["type", "messageId", "event"],
    "properties": {
        "type": {"const": "track"},
        "event": {"type": "string", "minLength": 1},
        "properties": {"type": ["object", "null"]},
        **COMMON,
    },
}
IDENTIFY = {
    "type": "object",
    "required": ["type", "messageId"],
    "properties": {"type": {"const": "identify"}, "traits": {"type": ["object", "null"]}, **COMMON},
}
EVENT = {"oneOf": [TRACK, IDENTIFY], "description": "A Segment spec event; other fields are kept as sent."}
EVENTS = {"type": "array", "items": EVENT, "minItems": 1, "maxItems": 1000}

BODY = {"oneOf": [EVENT, EVENTS, {"type": "object", "required": ["batch"], "properties": {"batch": EVENTS}}]}


def _call(call: dict) -> dict:
    """A tracking-API call: its type comes from the route, and a messageId is optional."""
    return {**call, "required": [name for name in call["required"] if name not in ("type", "messageId")]}


CALLS = {
    "batch": {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": {"oneOf": [_call(TRACK), _call(IDENTIFY)]}, "minItems": 1},
            "context": {"type": "object"},
            "writeKey": {"type": "string"},
            "sentAt": TIME,
        },
    },
    "track": _call(TRACK),
    "identify": _call(IDENTIFY),
}

REFUSAL = {
    "type": "object",
    "required": ["success", "code", "message"],
    "properties": {
        "success": {"const": False},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "problems": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}

SIGNATURE = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Signature",
    "description": "Segment's webhook signature: the hex HMAC-SHA1 of the raw body with a source secret.",
}
WRITE_KEY = {
    "type": "http",
    "scheme": "basic",
    "description": "HTTP Basic with a write key the source accepts as user name and an empty password.",
}
