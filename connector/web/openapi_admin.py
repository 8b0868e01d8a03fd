"""The admin API's and the Live View's part of /openapi.json (`openapi.py` builds the rest):
their paths, the shapes of the API's answers, and the refusals every admin route shares (the
admin token as a Bearer or the session cookie; 401, 403, 429)."""

from __future__ import annotations

from connector.contract import STATES
from connector.web import overview
from connector.web.readmodel import MAX_PAGE

JSON, HTML, FORM = "application/json", "text/html", "application/x-www-form-urlencoded"
TEXT = {"type": "string"}
MAYBE_TEXT = {"type": ["string", "null"]}
MAYBE_INT = {"type": ["integer", "null"]}
MAYBE_NUMBER = {"type": ["number", "null"]}
COUNT = {"type": "integer", "minimum": 0}
ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": TEXT, "message": TEXT}}
PROBLEMS = {"type": "object", "additionalProperties": {"type": "array", "items": TEXT}}
COUNTS = {"type": "object", "properties": {state: COUNT for state in STATES}, "required": list(STATES)}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "seconds"}}
LOCATION = {"Location": {"required": True, "schema": TEXT}}
ADMIN_SECURITY = [{"adminBearer": []}, {"adminSession": []}]


def _json(description: str, schema: dict, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {JSON: {"schema": schema}}}
    return answer | ({"headers": headers} if headers else {})


def _html(description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {HTML: {"schema": TEXT}}}
    return answer | ({"headers": headers} if headers else {})


def _redirect(description: str) -> dict:
    return {"description": description, "headers": LOCATION}


STORE_BUSY = _json("The store is busy or unreachable: try again", ERROR, RETRY_AFTER)


# -- the admin API's shapes -------------------------------------------------------------------
EVENT = {
    "type": "object",
    "required": ["id", "source", "event_id", "type", "environment", "received_at"],
    "properties": {
        "id": ID,
        "source": TEXT,
        "event_id": TEXT,
        "type": TEXT,
        "environment": TEXT,
        "email": MAYBE_TEXT,
        "phone": MAYBE_TEXT,
        "event_time": MAYBE_TEXT,
        "received_at": MAYBE_TEXT,
        "warnings": {"type": "array", "items": TEXT, "description": "optional fields left out, and why"},
    },
}
DELIVERY = {
    "type": "object",
    "required": ["id", "event", "partner", "action", "outcome", "attempts"],
    "properties": {
        "id": ID,
        "event": ID,
        "partner": TEXT,
        "action": TEXT,
        "environment": TEXT,
        "partner_key_id": MAYBE_TEXT,
        "outcome": {"enum": list(STATES)},
        "reason": MAYBE_TEXT,
        "attempts": COUNT,
        "last_status": MAYBE_INT,
        "last_error_code": MAYBE_TEXT,
        "last_error_message": MAYBE_TEXT,
        "last_latency_ms": MAYBE_NUMBER,
        "next_attempt_at": MAYBE_TEXT,
        "created_at": MAYBE_TEXT,
        "updated_at": MAYBE_TEXT,
    },
}
ATTEMPT = {
    "type": "object",
    "required": ["id", "started_at", "outcome", "status", "error_code", "error_message", "latency_ms"],
    "properties": {
        "id": ID,
        "started_at": MAYBE_TEXT,
        "outcome": TEXT,
        "status": MAYBE_INT,
        "error_code": MAYBE_TEXT,
        "error_message": MAYBE_TEXT,
        "latency_ms": MAYBE_NUMBER,
        "batch_size": COUNT,
        "request": {"type": ["object", "null"], "description": "the redacted request"},
        "response": {"type": ["object", "null"]},
    },
}
DELIVERY_DETAIL = {
    "allOf": [DELIVERY],
    "properties": {"spec": {}, "attempt_log": {"type": "array", "items": ATTEMPT}},
}
DELIVERY_DETAIL["required"] = ["attempt_log"]
EVENT_DETAIL = {
    "allOf": [EVENT],
    "required": ["payload", "deliveries"],
    "properties": {"payload": {}, "deliveries": {"type": "array", "items": DELIVERY_DETAIL}},
}
BREAKER = {
    "type": "object",
    "required": ["state", "reason", "failures"],
    "properties": {
        "key": MAYBE_TEXT,
        "partner": TEXT,
        "state": TEXT,
        "reason": MAYBE_TEXT,
        "failures": COUNT,
        "next_probe_at": MAYBE_TEXT,
        "updated_at": MAYBE_TEXT,
    },
}
PULL_SOURCE = {
    "type": "object",
    "required": ["source", "rows_read", "events_produced", "failures"],
    "properties": {
        "source": TEXT,
        "last_poll_at": MAYBE_TEXT,
        "last_ok_at": MAYBE_TEXT,
        "next_poll_at": MAYBE_TEXT,
        "rows_read": COUNT,
        "events_produced": COUNT,
        "summary": {**MAYBE_TEXT, "description": "what the latest poll read, in its source's words"},
        "failures": COUNT,
        "last_error": MAYBE_TEXT,
        "stopped_early": {
            **MAYBE_TEXT,
            "description": "why the last poll ended before its source read everything (its "
            "max_pages_per_poll), or null; the next poll goes on from there",
        },
        "polling_now": MAYBE_TEXT,
    },
}
LAST_PURGE = {
    "type": ["object", "null"],
    "properties": {
        "started_at": MAYBE_TEXT,
        "finished_at": MAYBE_TEXT,
        "running": {"type": "boolean"},
        "next_run_at": MAYBE_TEXT,
        "error": MAYBE_TEXT,
        "removed": {"type": "object", "additionalProperties": COUNT},
        "transactions": COUNT,
        "longest_transaction_ms": {"type": "number"},
        "seconds": {"type": "number"},
    },
}
REFUSAL = {  # a request answered 4xx on a webhook route; source "(unknown)" if none is configured
    "type": "object",
    "required": ["at", "source", "status", "reason"],
    "properties": {"at": MAYBE_TEXT, "source": TEXT, "status": {"type": "integer"}, "reason": TEXT},
}
REFUSALS = {
    "type": "object",
    "required": ["refusals"],
    "properties": {"refusals": {"type": "array", "items": REFUSAL}},
}
REFUSALS_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}
SERIES = {"type": "array", "items": MAYBE_NUMBER}
OVERVIEW = {
    "type": "object",
    "required": ["window", "starts", "step", "stacks", "totals", "latency", "queue", "polls"],
    "properties": {
        "window": {"enum": list(overview.WINDOWS)},
        "partner": MAYBE_TEXT,
        "starts": {"type": "array", "items": {"type": "number"}, "description": "each slot's start (UNIX s)"},
        "step": {"type": "number"},
        "stacks": {"type": "array", "items": {"type": "object", "additionalProperties": COUNT}},
        "totals": {"type": "object", "additionalProperties": COUNT},
        "latency": {"type": "object", "properties": {"p50": SERIES, "p95": SERIES}},
        "latency_window": {"type": "object"},
        "queue": {"type": "object", "properties": {"depth": SERIES, "oldest_due_seconds": SERIES}},
        "polls": {"type": "array", "items": {"type": "object"}},
        "last_purge": LAST_PURGE,
    },
}
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
                _json(
                    "One page",
                    {
                        "type": "object",
                        "required": ["events", "next_before", "counts", "filters"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "items": {
                                    "allOf": [EVENT],
                                    "properties": {"deliveries": {"type": "array", "items": DELIVERY}},
                                },
                            },
                            "next_before": MAYBE_INT,
                            "filters": {"type": "object", "additionalProperties": TEXT},
                            "counts": COUNTS,
                        },
                    },
                ),
                FILTER_PARAMETERS + PAGE_PARAMETERS,
                bad,
            )
        },
        "/admin/api/events/{event_pk}": {
            "get": _admin(
                "One event with every attempt",
                _json("The event", EVENT_DETAIL),
                [_path_id("event_pk")],
                not_found,
            )
        },
        "/admin/api/deliveries/{delivery_id}": {
            "get": _admin(
                "One delivery with its attempts and its event",
                _json(
                    "The delivery",
                    {"allOf": [DELIVERY_DETAIL], "required": ["event"], "properties": {"event": EVENT}},
                ),
                [_path_id("delivery_id")],
                not_found,
            )
        },
        "/admin/api/summary": {
            "get": _admin(
                "Counts per outcome, events waiting to be planned, paused keys, open circuits, pull sources,"
                " the last purge",
                _json(
                    "The summary",
                    {
                        "type": "object",
                        "required": [
                            "counts",
                            "waiting_to_plan",
                            "paused_keys",
                            "open_circuits",
                            "pull_sources",
                            "last_purge",
                        ],
                        "properties": {
                            "counts": COUNTS,
                            "waiting_to_plan": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Events accepted (202) that no worker has planned yet",
                            },
                            "paused_keys": {"type": "array", "items": BREAKER},
                            "open_circuits": {"type": "array", "items": BREAKER},
                            "pull_sources": {"type": "array", "items": PULL_SOURCE},
                            "last_purge": LAST_PURGE,
                        },
                    },
                ),
                FILTER_PARAMETERS,
                bad,
            )
        },
        "/admin/api/refusals": {
            "get": _admin(
                "The newest refused inbound requests (at most 1,000 kept), newest first",
                _json("The refusals", REFUSALS),
                [{"name": "limit", "in": "query", "required": False, "schema": REFUSALS_LIMIT}],
                bad,
            )
        },
        "/admin/api/overview": {
            "get": _admin(
                "The Live View's chart figures for a window, overall or for one partner",
                _json("The figures", OVERVIEW),
                [WINDOW, FILTER_PARAMETERS[1]],
                bad,
            )
        },
        "/admin/api/replay": {
            "post": _admin(
                "Queue dead (or named) deliveries again, through the consent order",
                _json(
                    "What happened to them",
                    {
                        "type": "object",
                        "required": ["queued", "superseded", "unchanged"],
                        "properties": {"queued": COUNT, "superseded": COUNT, "unchanged": COUNT},
                    },
                ),
                extra=bad,
                requestBody={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "delivery_ids": {
                                        "type": ["array", "null"],
                                        "items": ID,
                                        "maxItems": 1000,
                                    },
                                    "dead": {"type": "boolean"},
                                    "partner": MAYBE_TEXT,
                                    "since": {"type": ["string", "null"], "format": "date-time"},
                                },
                                "additionalProperties": False,
                            }
                        }
                    },
                },
            )
        },
    }
