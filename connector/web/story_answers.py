"""The consent story's answer (`GET /admin/api/contacts/{address}`, built by `story.py`) as
marshmallow schemas, from which /openapi.json describes it (`openapi_story.py`)."""

from __future__ import annotations

from marshmallow import fields, validate

from connector.contract import STATES
from connector.web.answers import Answer, Event, _text


class StoryEvent(Event):
    phone = _text()


class Superseder(Answer):
    """The delivery (and its event) the consent order found newer."""

    delivery = fields.Integer(strict=True)
    event = fields.Nested(StoryEvent)


class Change(Answer):
    delivery = fields.Integer(required=True, strict=True)
    partner = fields.String(required=True)
    environment = fields.String()
    place = fields.String(required=True)
    change = fields.String(required=True)
    contact_key = _text()
    outcome = fields.String(required=True, validate=validate.OneOf(STATES))
    reason = _text()
    attempts = fields.Integer(strict=True)
    last_status = fields.Integer(allow_none=True)
    superseded_by = fields.Nested(Superseder, allow_none=True)
    explanation = fields.String(required=True, metadata={"description": "the outcome in an operator's words"})
    updated_at = _text()


class EventWithChanges(StoryEvent):
    changes = fields.List(fields.Nested(Change))


class PartnerState(Answer):
    partner = fields.String(required=True)
    address = fields.String(
        metadata={"description": "the address read (this story's, or the person's other one)"}
    )
    place = fields.String(required=True)
    contact_key = _text()
    state = _text(required=True, metadata={"description": "the partner's own word; null: not read"})
    subscribed = fields.Boolean(allow_none=True)
    facts = fields.Dict()
    error = _text(required=True)
    request = _text()


class Contact(Answer):
    partner = fields.String(required=True)
    environment = fields.String()
    place = fields.String(required=True)
    contact_key = fields.String()
    last_word = fields.Dict(
        required=True,
        allow_none=True,
        metadata={"description": "the newest change the connector ever queued here (kept after purges)"},
    )
    partner_now = fields.Nested(PartnerState, allow_none=True)
    verdict = fields.String(required=True, metadata={"description": "why the person stands where they do"})


class Address(Answer):
    kind = fields.String(required=True, validate=validate.OneOf(["email", "phone"]))
    value = fields.String(required=True)


class Story(Answer):
    address = fields.Nested(Address, required=True)
    events = fields.List(
        fields.Nested(EventWithChanges),
        required=True,
        metadata={"description": "consent events carrying the address, in event-time order"},
    )
    truncated = fields.Boolean(required=True, metadata={"description": "older events were left out"})
    contacts = fields.List(fields.Nested(Contact), required=True)
    partner_state = fields.List(
        fields.Nested(PartnerState),
        required=True,
        allow_none=True,
        metadata={"description": "read live from each partner's API; null with live=false"},
    )
    related = fields.List(fields.Dict(), required=True)
