"""GET /openapi.json: an OpenAPI 3.1 document of every route this process answers, built once
from its configuration and plugins: each push source's webhook (and the routes shaped like
its sender's API) with the body its plugin declares and the credential its verifier takes
(`Source.event_schema` and `call_schemas`, marshmallow schemas turned into JSON Schema by
`describe.py`; `InboundVerifier.security_scheme`), the admin API and the Live View
(`openapi_admin.py`, whose answers come from the schemas in `answers.py`), health, metrics and
this document. tests/web/test_openapi.py keeps it in step with the app's URL rules and runs
schemathesis over it."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, packages_distributions, version

from flask import Blueprint, current_app, jsonify

from connector.web import answers
from connector.web.describe import json_schema, one_or_many
from connector.web.openapi_admin import (
    ERROR,
    FILTER_PARAMETERS,
    FORM,
    JSON,
    PAGE_PARAMETERS,
    PAGE_REFUSED,
    REFUSED_BODY,
    STORE_BUSY,
    TEXT,
    WINDOW,
    _html,
    _json,
    _page,
    _path_id,
    _redirect,
    admin_paths,
)
from connector.web.openapi_story import story_paths

bp = Blueprint("openapi", __name__)
ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "description": "gzip: decoded under the same 1 MiB limit; the signature covers the decoded body",
    "schema": {"enum": ["identity", "gzip"]},
}
UNKNOWN_CREDENTIAL = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "see the verifier",
}


@bp.get("/openapi.json")
def document():
    built = current_app.extensions.get("connector.openapi")
    if built is None:
        built = build(current_app.extensions["connector"])
        current_app.extensions["connector.openapi"] = built
    return jsonify(built)


def build(runtime) -> dict:
    """The whole document for this runtime's sources, plugins and settings."""
    schemes = {
        "adminBearer": {"type": "http", "scheme": "bearer", "description": "`CONNECTOR_ADMIN_TOKEN`"},
        "adminSession": {
            "type": "apiKey",
            "in": "cookie",
            "name": "connector_session",
            "description": "the session POST /live/login starts; state changes also need its CSRF token",
        },
    }
    paths: dict = {}
    for source_id, source_config in sorted(runtime.config.sources.items()):
        algorithm = source_config["auth"]["algorithm"]
        verifier = runtime.registry.verifiers[algorithm]
        scheme_name = "source_" + re.sub(r"[^A-Za-z0-9_]", "_", algorithm)
        schemes[scheme_name] = dict(verifier.security_scheme or UNKNOWN_CREDENTIAL)
        source = runtime.registry.sources[source_config["plugin"]]
        paths.update(webhook_paths(source_id, source, [{scheme_name: []}]))
    paths.update(admin_paths())
    paths.update(story_paths())
    paths.update(live_paths())
    metrics_security: list[dict[str, list]] = []
    if runtime.config.settings["metrics"]["token"] is not None:
        schemes["metricsBearer"] = {"type": "http", "scheme": "bearer", "description": "`metrics.token`"}
        metrics_security = [{"metricsBearer": []}]
    paths.update(health_paths(metrics_security))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Referral program connector",
            "version": _version(),
            "description": "Webhook intake, the admin API, the Live View, health and metrics of one "
            "deployment: its sources as configured. Times are ISO-8601 in UTC.",
        },
        "paths": paths,
        "components": {"securitySchemes": schemes},
    }


def _version() -> str:
    """The installed distribution's version (the one that holds the `connector` package)."""
    try:
        return version(packages_distributions()["connector"][0])
    except (KeyError, IndexError, PackageNotFoundError):
        return "0"


def webhook_paths(source_id: str, source, security: list) -> dict:
    body = {}
    if source.event_schema is not None:
        body = one_or_many(json_schema(source.event_schema), source.max_events, source.batch_field)
    paths = {
        f"/webhooks/{source_id}": {
            "post": {
                "summary": f"Events from source {source_id} ({source.name})",
                "operationId": f"receive_{_safe(source_id)}",
                "tags": ["intake"],
                "security": security,
                "parameters": [ENCODING],
                "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
                "responses": {
                    "202": _json(
                        "Stored (committed) before this answer; a repeated event id is a duplicate",
                        json_schema(answers.Accepted),
                    ),
                    "400": _json(
                        "Not valid: each bad field named by its path; nothing from the request stored",
                        REFUSED_BODY,
                    ),
                    "401": _json("Missing, malformed or wrong credentials", ERROR),
                    "413": _json("Larger than 1 MiB (decoded)", ERROR),
                    "415": _json("Not JSON, or an encoding other than gzip", ERROR),
                    "503": STORE_BUSY,
                },
            }
        }
    }
    status, accepted = source.call_accepted
    answer = {
        "type": "object",
        "required": list(accepted),
        "properties": {name: {"const": value} for name, value in accepted.items()},
    }
    refusal = json_schema(source.call_error_schema) if source.call_error_schema is not None else REFUSED_BODY
    for call, kind in sorted(source.calls.items()):
        call_schema = source.call_schemas.get(kind)
        call_body = json_schema(call_schema) if call_schema is not None else {}
        paths[f"/webhooks/{source_id}/{call}"] = {
            "post": {
                "summary": f"A {kind} call to source {source_id}, shaped like its sender's own API",
                "operationId": f"call_{_safe(source_id)}_{_safe(call)}",
                "tags": ["intake"],
                "security": security,
                "parameters": [ENCODING],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": call_body}, "text/plain": {"schema": TEXT}},
                },
                "responses": {
                    str(status): _json("Stored (committed) before this answer", answer),
                    **{
                        str(code): _json(why, refusal)
                        for code, why in (
                            (400, "Not valid: each bad field named"),
                            (401, "Missing or wrong credentials"),
                            (413, "Larger than 1 MiB (decoded)"),
                            (415, "Neither JSON nor text, or an encoding other than gzip"),
                        )
                    },
                    "503": STORE_BUSY,
                },
            }
        }
    return paths


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def health_paths(metrics_security: list) -> dict:
    metrics_answers = {
        "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": TEXT}}}
    }
    if metrics_security:
        metrics_answers["401"] = _json(
            "Missing or wrong metrics token", ERROR, {"WWW-Authenticate": {"schema": TEXT}}
        )
    return {
        "/healthz": {
            "get": {
                "summary": "The process is alive",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": _json(
                        "Alive",
                        {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "The store answers a cheap query and the configuration is loaded",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": _json(
                        "Ready",
                        {
                            "type": "object",
                            "required": ["status", "sources", "partners"],
                            "properties": {
                                "status": {"const": "ready"},
                                "sources": {"type": "array", "items": TEXT},
                                "partners": {"type": "array", "items": TEXT},
                            },
                        },
                    ),
                    "503": _json(
                        "The store does not answer",
                        {"type": "object", "properties": {"status": {"const": "unavailable"}, "store": TEXT}},
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (store figures refreshed at most every 5 s)",
                "tags": ["operations"],
                "security": metrics_security,
                "responses": metrics_answers,
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": _json("OpenAPI 3.1", {"type": "object", "required": ["openapi", "paths"]})
                },
            }
        },
    }


def live_paths() -> dict:
    signed_in = _redirect("Signed in: on to `next` (a page of the Live View)")
    return {
        "/live": {
            "get": _page(
                "Recent events, counts and charts (`partial=1`: the live region only)",
                FILTER_PARAMETERS
                + PAGE_PARAMETERS
                + [
                    WINDOW,
                    {"name": "partial", "in": "query", "required": False, "schema": {"enum": ["1"]}},
                    {
                        "name": "story",
                        "in": "query",
                        "required": False,
                        "description": "an email address or a phone number: on to its consent story",
                        "schema": {"type": "string", "maxLength": 320},
                    },
                ],
                {
                    "200": _html("The page"),
                    "302": _redirect("Not signed in: to the login form; with `story`: to that consent story"),
                    "400": _html("A query argument is wrong"),
                },
            )
        },
        "/live/events/{event_pk}": {
            "get": _page(
                "One event with every attempt",
                [_path_id("event_pk")],
                {
                    "200": _html("The page"),
                    "302": _redirect("Not signed in: to the login form"),
                    "404": _html("No such event"),
                },
            )
        },
        "/live/refusals": {
            "get": _page(
                "The newest refused inbound requests (`partial=1`: the live region only)",
                [{"name": "partial", "in": "query", "required": False, "schema": {"enum": ["1"]}}],
                {"200": _html("The page"), "302": _redirect("Not signed in: to the login form")},
            )
        },
        "/live/deliveries/{delivery_id}/replay": {
            "post": _page(
                "Replay one delivery (a session also needs its CSRF token)",
                [_path_id("delivery_id")],
                {"302": _redirect("Back to the event's page"), "404": _html("No such delivery")},
            )
        },
        "/live/login": {
            "get": {
                "summary": "The login form",
                "tags": ["Live View"],
                "security": [],
                "parameters": [{"name": "next", "in": "query", "required": False, "schema": TEXT}],
                "responses": {"200": _html("The form")},
            },
            "post": {
                "summary": "Sign in with the admin token (starts a session)",
                "tags": ["Live View"],
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        FORM: {"schema": {"type": "object", "properties": {"token": TEXT, "next": TEXT}}}
                    },
                },
                "responses": {
                    "302": signed_in,
                    "401": _html("Not the admin token (or admin access disabled)"),
                    "429": PAGE_REFUSED["429"],
                    "503": STORE_BUSY,
                },
            },
        },
        "/live/logout": {
            "post": _page("End the session everywhere", [], {"302": _redirect("To the login form")})
        },
        "/live/static/{filename}": {
            "get": {
                "summary": "The Live View's stylesheet and script",
                "tags": ["Live View"],
                "security": [],
                "parameters": [
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["live.css", "live.js"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {"text/css": {"schema": TEXT}, "text/javascript": {"schema": TEXT}},
                    },
                    "404": _json("No such file", ERROR),
                },
            }
        },
    }
