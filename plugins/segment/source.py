"""Segment spec events (track, identify, …) as a source: one event or {"batch": [...]}, as
Segment's webhook destinations and Engage send them; deduplicated on `messageId`."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from connector.contract import (
    MAX_EMAIL,
    InboundEvent,
    PayloadError,
    Source,
    SourceConfigSchema,
    normalise_email,
)
from connector.payloads import check_event_time, load_each, parse_json

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

    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    messageId = fields.String(required=True, validate=validate.Length(1, 128))
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


def event_email(payload: dict) -> str | None:
    """The default email of an event (context.traits.email, else traits.email), normalised."""
    for holder in ((payload.get("context") or {}).get("traits"), payload.get("traits")):
        if isinstance(holder, dict) and isinstance(holder.get("email"), str):
            email = normalise_email(holder["email"])
            return email if 0 < len(email) <= MAX_EMAIL else None
    return None


class SegmentSource(Source):
    name = "segment"
    config_schema = SegmentSourceSchema

    def parse(self, body: bytes, source_config: dict) -> list[InboundEvent]:
        document = parse_json(body)
        batched = isinstance(document, dict) and "batch" in document
        if batched:
            items = document["batch"]
            if not isinstance(items, list) or not items:
                raise PayloadError({"batch": ["must be a non-empty array of events"]})
            if len(items) > MAX_EVENTS:
                raise PayloadError({"batch": [f"at most {MAX_EVENTS} events per request, got {len(items)}"]})
        else:
            items = [document]
        received = datetime.now(UTC)
        environment = source_config.get("environment", "production")
        loaded = load_each(items, _EVENT_SCHEMA, lambda i: f"batch[{i}]" if batched else "")
        return [_to_event(item, data, environment, received) for item, data in loaded]


_EVENT_SCHEMA = SegmentEventSchema()


def _to_event(raw: dict, data: dict, environment: str, received: datetime) -> InboundEvent:
    moment = next((data[name] for name in TIME_FIELDS if data.get(name)), received)
    return InboundEvent(
        event_id=data["messageId"],
        type=data["type"],
        event_time=moment,
        environment=environment,
        email=event_email(raw),
        payload=raw,  # as sent: mappings address any dotted path in it
    )
