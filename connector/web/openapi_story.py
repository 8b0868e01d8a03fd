"""The consent story's part of /openapi.json: `GET /admin/api/contacts/{address}` with its
answer (generated from `story_answers.py`), and the Live View's contact page and lookup form."""

from __future__ import annotations

from connector.web.describe import json_schema
from connector.web.openapi_admin import ERROR, _admin, _html, _json, _page, _redirect
from connector.web.story_answers import Story

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


def story_paths() -> dict:
    bad = {"400": _json("Not an email address nor a phone number, or a wrong argument", ERROR)}
    return {
        "/admin/api/contacts/{address}": {
            "get": _admin(
                "One person's consent story: every consent event for an email address or a phone "
                "number with each change's outcome, the last word per contact, and what each partner "
                "holds now (read live)",
                _json("The story", json_schema(Story)),
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
