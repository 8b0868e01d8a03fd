"""The admin API's and the Live View's part of /openapi.json (`openapi.py` builds the rest):
their paths, the API's answers (generated from the marshmallow schemas in `answers.py`) and
its request body (from the schema that loads it), and the refusals every admin route shares
(the admin token as a Bearer or the session cookie; 401, 403, 429)."""

from __future__ import annotations

from connector.contract import STATES
from connector.web import answers, overview
from connector.web.arguments import ReplayRequest
from connector.web.describe import json_schema
from connector.web.readmodel import MAX_PAGE

JSON, HTML, FORM = "application/json", "text/html", "application/x-www-form-urlencoded"
TEXT = {"type": "string"}
MAYBE_TEXT = {"type": ["string", "null"]}
MAYBE_INT = {"type": ["integer", "null"]}
MAYBE_NUMBER = {"type": ["number", "null"]}
COUNT = {"type": "integer", "minimum": 0}
ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
ERROR = json_schema(answers.ErrorAnswer)
REFUSED_BODY = json_schema(answers.ProblemsAnswer)
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "seconds"}}
LOCATION = {"Location": {"required": True, "schema": TEXT}}
ADMIN_SECURITY: list[dict[str, list]] = [{"adminBearer": []}, {"adminSession": []}]


def _json(description: str, schema: dict, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {JSON: {"schema": schema}}}
    return answer | ({"headers": headers} if headers else {})


def _html(description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {HTML: {"schema": TEXT}}}
    return answer | ({"headers": headers} if headers else {})


def _redirect(description: str) -> dict:
    return {"description": description, "headers": LOCATION}


STORE_BUSY = _json("The store is busy or unreachable: try again", ERROR, RETRY_AFTER)


# -- the admin API's answers: generated from the schemas in answers.py -----------------------
REFUSALS_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}
FILTER_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string", "maxLength": 320}}
    for name in ("source", "partner", "environment", "type", "email")
] + [
    {
        "name": "outcome",
        "in": "query",
        "required": False,
        "description": "one or more of " + ", ".join(STATES) + ", comma-separated",
        "schema": {"type": "string", "maxLength": 320},
    }
]
PAGE_PARAMETERS = [
    {
        "name": "before",
        "in": "query",
        "required": False,
        "schema": ID,
        "description": "an event id: older ones",
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    },
]
WINDOW = {"name": "window", "in": "query", "required": False, "schema": {"enum": list(overview.WINDOWS)}}
REFUSED = {
    "401": _json("Missing or wrong admin token", ERROR, {"WWW-Authenticate": {"schema": TEXT}}),
    "403": _json("Admin access disabled (no CONNECTOR_ADMIN_TOKEN), or no CSRF token with a session", ERROR),
    "429": _json("Too many failed sign-ins from this address", ERROR, RETRY_AFTER),
}
PAGE_REFUSED = {
    "401": _html("Missing or wrong admin token"),
    "403": _html("Admin access disabled, or a session request without its CSRF token"),
    "429": _html("Too many failed sign-ins from this address", RETRY_AFTER),
}


def _admin(summary: str, ok: dict, parameters: list | None = None, extra: dict | None = None, **more) -> dict:
    return {
        "summary": summary,
        "tags": ["admin API"],
        "security": ADMIN_SECURITY,
        "parameters": parameters or [],
        "responses": {"200": ok, **REFUSED, **(extra or {}), "503": STORE_BUSY},
        **more,
    }


def _page(summary: str, parameters: list | None = None, responses: dict | None = None, **more) -> dict:
    return {
        "summary": summary,
        "tags": ["Live View"],
        "security": ADMIN_SECURITY,
        "parameters": parameters or [],
        "responses": {
            **(responses or {"200": _html("The page")}),
            **PAGE_REFUSED,
            "503": STORE_BUSY,
        },
        **more,
    }


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def admin_paths() -> dict:
    not_found = {"404": _json("No such id", ERROR)}
    bad = {"400": _json("A query argument or the body is wrong: each problem named", ERROR)}
    return {
        "/admin/api/events": {
            "get": _admin(
                "Recent events with their deliveries, newest first",
                _json("One page", json_schema(answers.EventPage)),
                FILTER_PARAMETERS + PAGE_PARAMETERS,
                bad,
            )
        },
        "/admin/api/events/{event_pk}": {
            "get": _admin(
                "One event with every attempt",
                _json("The event", json_schema(answers.EventDetail)),
                [_path_id("event_pk")],
                not_found,
            )
        },
        "/admin/api/deliveries/{delivery_id}": {
            "get": _admin(
                "One delivery with its attempts and its event",
                _json("The delivery", json_schema(answers.DeliveryWithEvent)),
                [_path_id("delivery_id")],
                not_found,
            )
        },
        "/admin/api/summary": {
            "get": _admin(
                "Counts per outcome, events waiting to be planned, paused keys, open circuits, pull sources,"
                " the last purge",
                _json("The summary", json_schema(answers.Summary)),
                FILTER_PARAMETERS,
                bad,
            )
        },
        "/admin/api/refusals": {
            "get": _admin(
                "The newest refused inbound requests (at most 1,000 kept), newest first",
                _json("The refusals", json_schema(answers.Refusals)),
                [{"name": "limit", "in": "query", "required": False, "schema": REFUSALS_LIMIT}],
                bad,
            )
        },
        "/admin/api/overview": {
            "get": _admin(
                "The Live View's chart figures for a window, overall or for one partner",
                _json("The figures", json_schema(answers.Overview)),
                [WINDOW, FILTER_PARAMETERS[1]],
                bad,
            )
        },
        "/admin/api/replay": {
            "post": _admin(
                "Queue dead (or named) deliveries again, through the consent order",
                _json("What happened to them", json_schema(answers.Replayed)),
                extra=bad,
                requestBody={"required": True, "content": {JSON: {"schema": json_schema(ReplayRequest)}}},
            )
        },
    }
