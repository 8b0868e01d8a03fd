"""The consent story's part of /openapi.json: `GET /admin/api/contacts/{address}` with the
shape of its answer (`story.py`), and the Live View's contact page and lookup form."""

from __future__ import annotations

from connector.contract import STATES
from connector.web.openapi_admin import (
    ERROR,
    MAYBE_INT,
    MAYBE_TEXT,
    TEXT,
    _admin,
    _html,
    _json,
    _page,
    _redirect,
)
from connector.web.openapi_admin import EVENT as STORED_EVENT

ADDRESS = {
    "name": "address",
    "in": "path",
    "required": True,
    "description": "an email address, or a phone number with its country code (`+1 555 555 5555` "
    "or `15555555555`)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 320},
}
LIVE = {
    "name": "live",
    "in": "query",
    "required": False,
    "description": "false: leave out what the partners hold now (no request leaves)",
    "schema": {"type": "boolean", "default": True},
}
EVENT = {"allOf": [STORED_EVENT], "properties": {"phone": MAYBE_TEXT}}
CHANGE = {
    "type": "object",
    "required": ["delivery", "partner", "place", "change", "outcome", "explanation"],
    "properties": {
        "delivery": {"type": "integer"},
        "partner": TEXT,
        "environment": TEXT,
        "place": TEXT,
        "change": TEXT,
        "contact_key": MAYBE_TEXT,
        "outcome": {"enum": list(STATES)},
        "reason": MAYBE_TEXT,
        "attempts": {"type": "integer"},
        "last_status": MAYBE_INT,
        "superseded_by": {
            "type": ["object", "null"],
            "description": "the delivery (and its event) the consent order found newer",
            "properties": {"delivery": {"type": "integer"}, "event": EVENT},
        },
        "explanation": {"type": "string", "description": "the outcome in an operator's words"},
        "updated_at": MAYBE_TEXT,
    },
}
PARTNER_STATE = {
    "type": "object",
    "required": ["partner", "place", "state", "error"],
    "properties": {
        "partner": TEXT,
        "address": {
            "type": "string",
            "description": "the address read (this story's, or the person's other one)",
        },
        "place": TEXT,
        "contact_key": MAYBE_TEXT,
        "state": {"type": ["string", "null"], "description": "the partner's own word; null: not read"},
        "subscribed": {"type": ["boolean", "null"]},
        "facts": {"type": "object"},
        "error": MAYBE_TEXT,
        "request": MAYBE_TEXT,
    },
}
STORY = {
    "type": "object",
    "required": ["address", "events", "truncated", "contacts", "partner_state", "related"],
    "properties": {
        "address": {
            "type": "object",
            "required": ["kind", "value"],
            "properties": {"kind": {"enum": ["email", "phone"]}, "value": TEXT},
        },
        "events": {
            "type": "array",
            "description": "consent events carrying the address, in event-time order",
            "items": {"allOf": [EVENT], "properties": {"changes": {"type": "array", "items": CHANGE}}},
        },
        "truncated": {"type": "boolean", "description": "older events were left out"},
        "contacts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["partner", "place", "last_word", "verdict"],
                "properties": {
                    "partner": TEXT,
                    "environment": TEXT,
                    "place": TEXT,
                    "contact_key": TEXT,
                    "last_word": {
                        "type": ["object", "null"],
                        "description": "the newest change the connector ever queued here (kept after purges)",
                    },
                    "partner_now": {"oneOf": [PARTNER_STATE, {"type": "null"}]},
                    "verdict": {"type": "string", "description": "why the person stands where they do"},
                },
            },
        },
        "partner_state": {
            "type": ["array", "null"],
            "items": PARTNER_STATE,
            "description": "read live from each partner's API; null with live=false",
        },
        "related": {"type": "array", "items": {"type": "object"}},
    },
}


def story_paths() -> dict:
    bad = {"400": _json("Not an email address nor a phone number, or a wrong argument", ERROR)}
    return {
        "/admin/api/contacts/{address}": {
            "get": _admin(
                "One person's consent story: every consent event for an email address or a phone "
                "number with each change's outcome, the last word per contact, and what each partner "
                "holds now (read live)",
                _json("The story", STORY),
                [ADDRESS, LIVE],
                bad,
            )
        },
        "/live/contacts/{address}": {
            "get": _page(
                "One person's consent story (reads each partner when loaded)",
                [ADDRESS, LIVE],
                {
                    "200": _html("The page"),
                    "302": _redirect("Not signed in: to the login form"),
                    "400": _html("Not an email address nor a phone number"),
                },
            )
        },
    }
