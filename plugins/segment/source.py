"""Segment spec events (track, identify, …) as a source: one event, a bare array (the Webhooks
destination in batch mode) or {"batch": [...]}, as Segment's destinations and Engage send them;
and the HTTP tracking API's calls (`/v1/batch`, `/v1/track`, `/v1/identify` and the short
forms), so a Segment library pointed at `host=<connector>/webhooks/<source_id>` feeds it.
Deduplicated on `messageId`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from connector.plugin_api import (
    MAX_EMAIL,
    InboundEvent,
    PayloadError,
    Source,
    SourceConfigSchema,
    check_event_time,
    load_each,
    no_control_characters,
    normalise_email,
    parse_json,
)

MAX_EVENTS = 1000
EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
#: Where Segment puts the time of an event, best first; `timestamp` is what Engage sets.
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")


class SegmentSourceSchema(SourceConfigSchema):
    #: Segment events carry no environment; a source feeds one (a staging workspace → staging).
    environment = fields.String(load_default="production", validate=validate.OneOf(["production", "staging"]))


class SegmentTime(fields.DateTime):
    """ISO-8601; a time without an offset is taken as UTC, as Segment's libraries mean it."""

    default_error_messages = {"invalid": "not an ISO-8601 date-time"}

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        check_event_time(moment)
        return moment


class SegmentEventSchema(Schema):
    """Checks the fields the connector relies on; everything else is kept as sent."""

    class Meta:
        unknown = INCLUDE
        description = "A Segment spec event; other fields are kept as sent."

    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    messageId = fields.String(required=True, validate=[validate.Length(1, 128), no_control_characters])
    event = fields.String(validate=validate.Length(min=1))
    userId = fields.Raw(allow_none=True)
    anonymousId = fields.Raw(allow_none=True)
    properties = fields.Dict(allow_none=True)
    traits = fields.Dict(allow_none=True)
    context = fields.Dict(allow_none=True)
    timestamp = SegmentTime(allow_none=True)
    originalTimestamp = SegmentTime(allow_none=True)
    sentAt = SegmentTime(allow_none=True)
    receivedAt = SegmentTime(allow_none=True)

    @validates_schema
    def _track_names_its_event(self, data, **kwargs):
        if data.get("type") == "track" and not data.get("event"):
            raise ValidationError("a track call needs an event name", "event")


class SegmentCallSchema(SegmentEventSchema):
    """One call of the tracking API: its type comes from the route (`batch` items name it),
    and a call without a messageId gets one derived from its content (`parse_call`)."""

    class Meta:
        unknown = INCLUDE
        description = "A tracking-API call; other fields are kept as sent."

    type = fields.String(validate=validate.OneOf(EVENT_TYPES))
    messageId = fields.String(validate=[validate.Length(1, 128), no_control_characters])


class SegmentBatchCallSchema(Schema):
    """`/v1/batch`: the calls, and a context merged under each call's own."""

    class Meta:
        unknown = INCLUDE

    batch = fields.List(
        fields.Nested(SegmentCallSchema), required=True, validate=validate.Length(1, MAX_EVENTS)
    )
    context = fields.Dict()
    writeKey = fields.String()
    sentAt = SegmentTime(allow_none=True)


class SegmentRefusalSchema(Schema):
    """A refused call, in the shape Segment's libraries read (`code`, `message`)."""

    success = fields.Boolean(required=True, validate=validate.Equal(False))
    code = fields.String(required=True)
    message = fields.String(required=True)
    problems = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


def event_email(payload: dict) -> str | None:
    """The default email of an event (context.traits.email, else traits.email), normalised."""
    for holder in ((payload.get("context") or {}).get("traits"), payload.get("traits")):
        if isinstance(holder, dict) and isinstance(holder.get("email"), str):
            email = normalise_email(holder["email"])
            return email if 0 < len(email) <= MAX_EMAIL else None
    return None


#: The tracking API's routes (under /webhooks/<source_id>/) and the call each one takes.
TRACKING_CALLS = {
    "v1/batch": "batch",
    "v1/b": "batch",
    "v1/track": "track",
    "v1/t": "track",
    "v1/identify": "identify",
    "v1/i": "identify",
}
#: Top-level fields of a call, or of an event in any shape this source takes, that are about
#: the request, not the event: never stored (a write key is a credential; `sentAt` still
#: stamps an event that has no time of its own).
REQUEST_FIELDS = ("writeKey", "sentAt")


class SegmentSource(Source):
    name = "segment"
    config_schema = SegmentSourceSchema
    calls = TRACKING_CALLS
    call_accepted = (200, {"success": True})
    event_schema = SegmentEventSchema
    max_events = MAX_EVENTS
    batch_field = "batch"
    call_schemas = {
        "batch": SegmentBatchCallSchema,
        "track": SegmentCallSchema,
        "identify": SegmentCallSchema,
    }
    call_error_schema = SegmentRefusalSchema

    def parse(self, body: bytes, source_config: Mapping[str, Any]) -> list[InboundEvent]:
        document = parse_json(body)
        if isinstance(document, list):
            return _events(_checked_items(document, ""), "", source_config)
        if isinstance(document, dict) and "batch" in document:
            return _events(_checked_items(document["batch"], "batch"), "batch", source_config)
        return _events([document], None, source_config)

    def parse_call(self, kind: str, body: bytes, source_config: Mapping[str, Any]) -> list[InboundEvent]:
        """A tracking-API call: `batch` ({"batch": [...], "context": {...}}, whose context is
        merged under each item's own), or one `track` / `identify` call, whose type the route
        gives. A call without a messageId gets one derived from its content, so a retried
        request is not queued twice."""
        document = parse_json(body)
        if kind == "batch":
            if not isinstance(document, dict) or "batch" not in document:
                raise PayloadError({"$": ['a batch call is {"batch": [...]}']})
            items = _checked_items(document["batch"], "batch")
            shared = document.get("context")
            if isinstance(shared, dict):
                items = [_with_context(item, shared) for item in items]
            return _events([_with_message_id(item) for item in items], "batch", source_config)
        if not isinstance(document, dict):
            raise PayloadError({"$": [f"a {kind} call is one JSON object"]})
        call = {k: v for k, v in document.items() if k not in REQUEST_FIELDS}
        call.setdefault("type", kind)
        if call["type"] != kind:
            raise PayloadError({"type": [f"must be {kind} on this route"]})
        return _events([_with_message_id(call)], None, source_config)

    def call_error(self, status: int, message: str, problems=None) -> dict:
        # Segment's libraries read `code` and `message` from a refusal.
        code = {400: "invalid_request", 401: "unauthorized", 413: "payload_too_large"}.get(status, "error")
        body = {"success": False, "code": code, "message": message}
        if problems:
            body["problems"] = problems
        return _REFUSAL.dump(body)


def _checked_items(items, where: str) -> list:
    name = where or "$"
    if not isinstance(items, list) or not items:
        raise PayloadError({name: ["must be a non-empty array of events"]})
    if len(items) > MAX_EVENTS:
        raise PayloadError({name: [f"at most {MAX_EVENTS} events per request, got {len(items)}"]})
    return items


def _events(items: list, where: str | None, source_config: Mapping[str, Any]) -> list[InboundEvent]:
    """`where` is the array's path ("batch", "" for a bare array), or None for one event."""
    received = datetime.now(UTC)
    environment = source_config.get("environment", "production")
    path_of = (lambda i: "") if where is None else (lambda i: f"{where}[{i}]")
    loaded = load_each(items, _EVENT_SCHEMA, path_of)
    return [_to_event(item, data, environment, received) for item, data in loaded]


def _with_context(item, shared: dict):
    if not isinstance(item, dict):
        return item  # refused by the schema, with its path
    own = item.get("context")
    return {**item, "context": {**shared, **own} if isinstance(own, dict) else shared}


def _with_message_id(item):
    if not isinstance(item, dict) or item.get("messageId") not in (None, ""):
        return item
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
    return {**item, "messageId": f"derived-{digest[:40]}"}


_EVENT_SCHEMA = SegmentEventSchema()
_REFUSAL = SegmentRefusalSchema()


def _to_event(raw: dict, data: dict, environment: str, received: datetime) -> InboundEvent:
    moment = next((data[name] for name in TIME_FIELDS if data.get(name)), received)
    if any(name in raw for name in REQUEST_FIELDS):  # a batch item may carry them too
        raw = {key: value for key, value in raw.items() if key not in REQUEST_FIELDS}
    return InboundEvent(
        event_id=data["messageId"],
        type=data["type"],
        event_time=moment,
        environment=environment,
        email=event_email(raw),
        payload=raw,  # as sent, less REQUEST_FIELDS: mappings address any dotted path in it
    )
