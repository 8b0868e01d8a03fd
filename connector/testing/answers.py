"""Answers of any shape for the partner look-alikes' fault injection, so a test (or an
operator) can make a sandbox answer what a real partner, or a proxy in front of it, might:
any status, a body given as text, as a JSON value or as base64 bytes (not UTF-8 too),
repeated to any size up to MAX_BYTES, with any content type and headers.

    {"status": 400, "json": {"error": {"code": "ERROR_X"}, "message": ["bad"]}}
    {"status": 200, "body": "<html>…</html>", "content_type": "text/html", "repeat": 5000}
    {"status": 502, "body_base64": "/wD+", "headers": {"Retry-After": "1"}}
"""

from __future__ import annotations

import base64
import binascii
import json

from flask import Response
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

#: The largest body a look-alike builds (past every limit the connector has, 16 MiB for pages).
MAX_BYTES = 32 * 1024 * 1024
KINDS = ("body", "json", "body_base64")
DEFAULT_TYPES = {
    "body": "text/plain; charset=utf-8",
    "json": "application/json",
    "body_base64": "application/octet-stream",
}


class AnswerSchema(Schema):
    """An answer as a fault gives it; loads as the same dict, checked (the body is built when
    the fault applies: `respond`)."""

    status = fields.Integer(strict=True, required=True, validate=validate.Range(min=200, max=599))
    body = fields.String()
    json = fields.Raw(allow_none=True)  # any JSON value, null included
    body_base64 = fields.String()
    content_type = fields.String(load_default=None, allow_none=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    repeat = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1))

    @validates_schema
    def _one_body(self, data, **kwargs):
        given = [kind for kind in KINDS if kind in data]
        if len(given) > 1:
            raise ValidationError(f"give one of {', '.join(KINDS)}, not {' and '.join(given)}", given[-1])
        if "body_base64" in data:
            try:
                base64.b64decode(data["body_base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValidationError("not base64", "body_base64") from exc
        size = len(_content(data)) * data.get("repeat", 1)
        if size > MAX_BYTES:
            raise ValidationError(f"the body would be {size} bytes; at most {MAX_BYTES}", "repeat")


def _content(answer: dict) -> bytes:
    if "json" in answer:
        return json.dumps(answer["json"]).encode()
    if "body_base64" in answer:
        return base64.b64decode(answer["body_base64"])
    # surrogatepass: a lone surrogate in the text becomes the bytes no UTF-8 decoder accepts
    return answer.get("body", "").encode("utf-8", "surrogatepass")


def respond(answer: dict) -> Response:
    """The response an answer (as AnswerSchema loaded it) describes."""
    kind = next((kind for kind in KINDS if kind in answer), None)
    content = _content(answer) * answer.get("repeat", 1)
    response = Response(content, status=answer["status"])
    content_type = answer.get("content_type") or (DEFAULT_TYPES[kind] if kind else None)
    if content_type:
        response.headers["Content-Type"] = content_type
    else:
        del response.headers["Content-Type"]
    for name, value in answer.get("headers", {}).items():
        response.headers[name] = value
    return response
