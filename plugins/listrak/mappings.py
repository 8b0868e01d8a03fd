"""Segment-style mappings of a Listrak partner: a trigger on the event, then the action
`update_email_contact_profile_fields` with where to find the list, the email and the values.

Planning follows Listrak's own Segment destination ("Listrak (Actions)"): the email defaults to
`context.traits.email`, else `traits.email`; profile field keys that are not positive integers
are dropped; `useAudienceKey` reads the boolean at `<properties or traits>[computation_key]`.
Where it silently sends something Listrak cannot use, this refuses the event with the reason
instead: an invalid email, a missing list id, or `useAudienceKey` without a true/false to read.
A mapping with `enable_batching: false` plans the one-event-per-request variant of the action.
Beyond Listrak's destination, a value may be read from the event (`{path: properties.tier}`): a
path the event lacks leaves that field out, and the reason travels in the spec's `notes` to the
attempt record (an event left with no field at all is skipped with them).
"""

from __future__ import annotations

import hashlib
import re

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from connector.plugin_api import InboundEvent, Partner, PlannedDelivery, StrictSchema, valid_email
from plugins.listrak.conditions import MISSING, ConditionSchema, Scalar, dotted_path, holds, resolve
from plugins.listrak.profile_fields import (
    UpdateEmailContactProfileFields,
    UpdateEmailContactProfileFieldsUnbatched,
)

MAX_MAPPINGS = 50  # Listrak's destination allows 50 mappings per instance
ACTION = UpdateEmailContactProfileFields.name
USE_AUDIENCE_KEY = "useAudienceKey"
DEFAULT_EMAIL_PATHS = ("context.traits.email", "traits.email")
_FIELD_ID = re.compile(r"^[1-9][0-9]{0,9}$")  # Listrak ids are 32-bit integers
MAX_LISTRAK_ID = 2**31 - 1
MAX_CONTACT_KEY = 600  # deliveries.contact_key is VARCHAR(600)


class PathSchema(StrictSchema):
    path = fields.String(required=True, validate=dotted_path)


class ListId(fields.Field):
    """A positive integer, or {path: ...} read from each event."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            return PathSchema().load(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and _FIELD_ID.match(value):
            return int(value)
        raise ValidationError("must be a positive integer or {path: <dotted path>}")


def as_listrak_value(value) -> str:
    """Listrak takes every profile field value as a string; YAML and JSON booleans become the
    check-box values "on" / "off" (YAML reads a bare on/off as true/false)."""
    return "on" if value is True else "off" if value is False else str(value)


class FieldValue(fields.Field):
    """A value written in the config (on, off, useAudienceKey, text, a number) or
    {path: <dotted path>} read from each event."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            return PathSchema().load(value)
        return Scalar().deserialize(value)


class MappingSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    when = fields.List(fields.Nested(ConditionSchema), validate=validate.Length(min=1))
    any = fields.List(fields.Nested(ConditionSchema), validate=validate.Length(min=1))
    action = fields.String(required=True, validate=validate.OneOf([ACTION]))
    list_id = ListId(required=True)
    email_address = fields.Nested(PathSchema, load_default=None)
    profile_field_values = fields.Dict(
        keys=fields.Raw(), values=FieldValue(), required=True, validate=validate.Length(min=1)
    )
    enable_batching = fields.Boolean(load_default=True)

    @validates_schema
    def _one_trigger(self, data, **kwargs):
        if ("when" in data) == ("any" in data):
            raise ValidationError("give the trigger as either when: (all of) or any:")

    @post_load
    def _field_values_as_strings(self, data, **kwargs):
        data["profile_field_values"] = {
            str(key): value if isinstance(value, dict) else as_listrak_value(value)
            for key, value in data["profile_field_values"].items()
        }
        return data


class Mappings(fields.List):
    """The list of mappings; a problem is named by the mapping's index and name
    (`mappings.1 'VIP tier'.when.0.gt: ...`), so check-config says which mapping is wrong."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as exc:
            if not isinstance(exc.messages, dict) or not isinstance(value, list):
                raise
            named = {_named(index, value): messages for index, messages in exc.messages.items()}
            raise ValidationError(named) from exc


def _named(index, mappings: list) -> str:
    mapping = mappings[index] if isinstance(index, int) and index < len(mappings) else None
    name = mapping.get("name") if isinstance(mapping, dict) else None
    return f"{index} {name!r}" if isinstance(name, str) and name else str(index)


def mappings_field() -> fields.List:
    return Mappings(
        fields.Nested(MappingSchema),
        load_default=list,
        validate=validate.Length(max=MAX_MAPPINGS, error="at most {max} mappings per partner"),
    )


# -- triggers ---------------------------------------------------------------------------------
def matches(mapping: dict, payload: dict) -> bool:
    if mapping.get("when"):
        return all(holds(c, payload) for c in mapping["when"])
    return any(holds(c, payload) for c in mapping["any"])


# -- planning ---------------------------------------------------------------------------------
def plan_mappings(event: InboundEvent, partner: Partner) -> list[PlannedDelivery]:
    """One delivery per mapping whose trigger the event meets, in mapping order."""
    return [
        _plan(event, partner, mapping)
        for mapping in partner.settings["mappings"]
        if matches(mapping, event.payload)
    ]


class Refused(Exception):
    """This event cannot become a request; the message is the skip reason."""


def _email(payload: dict, mapping: dict) -> str:
    paths = [mapping["email_address"]["path"]] if mapping["email_address"] else DEFAULT_EMAIL_PATHS
    for path in paths:
        value = resolve(payload, path)
        if value is not MISSING and value is not None:
            break
    else:
        raise Refused(f"no email address at {' or '.join(paths)}")
    email = valid_email(value) if isinstance(value, str) else None
    if email is None:
        raise Refused(f"invalid email address {_short(value)} at {path}")
    return email


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _list_id(payload: dict, mapping: dict) -> int:
    spec = mapping["list_id"]
    if isinstance(spec, int):
        return spec
    value = resolve(payload, spec["path"])
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_LISTRAK_ID:
        return value
    if isinstance(value, str) and _FIELD_ID.match(value.strip()) and int(value.strip()) <= MAX_LISTRAK_ID:
        return int(value.strip())
    shown = "nothing" if value is MISSING else _short(value)
    raise Refused(f"list_id: {spec['path']} holds {shown}, not a positive integer list id")


def _audience_value(payload: dict) -> bool | None:
    """Listrak's rule: properties if the event has them, else traits, at the computation key."""
    key = resolve(payload, "context.personas.computation_key")
    holder = payload.get("properties")
    if not isinstance(holder, dict):
        holder = payload.get("traits")
    if not isinstance(key, str) or not isinstance(holder, dict):
        return None
    value = holder.get(key)
    return value if isinstance(value, bool) else None


def field_values(payload: dict, mapping: dict, notes: list[str] | None = None) -> list[dict]:
    """[{segmentationFieldId, value}] in mapping order; keys that are not positive integers
    are dropped, as Listrak's destination does (an empty list is still sent). A value read from
    a path the event lacks (or holds no scalar at) is left out, and why goes to `notes`."""
    values: dict[int, str] = {}
    for key, value in mapping["profile_field_values"].items():
        if not _FIELD_ID.match(key):
            continue
        if isinstance(value, dict):
            found = resolve(payload, value["path"])
            if found is MISSING or found is None:
                _note(notes, f"field {key} left out: the event has no value at {value['path']}")
                continue
            if not isinstance(found, str | int | float | bool):
                kind = "an object" if isinstance(found, dict) else "a list"
                _note(notes, f"field {key} left out: {value['path']} holds {kind}, not a value")
                continue
            value = as_listrak_value(found)
        elif value == USE_AUDIENCE_KEY:
            entered = _audience_value(payload)
            if entered is None:
                raise Refused(
                    f"field {key} is useAudienceKey but the event has no true/false at "
                    "properties (or traits) [context.personas.computation_key]"
                )
            value = "on" if entered else "off"
        values[int(key)] = value
    return [{"segmentationFieldId": fid, "value": value} for fid, value in values.items()]


def _note(notes: list[str] | None, note: str) -> None:
    if notes is not None:
        notes.append(note)


def contact_key(partner_id: str, environment: str, list_id: int, email: str, field_ids: list[int]) -> str:
    """Orders updates of the same fields of one contact: the newest event wins."""
    ids = ",".join(str(i) for i in sorted(field_ids))
    key = f"{partner_id}|{environment}|{list_id}|{email}|{ids}"
    if len(key) > MAX_CONTACT_KEY:
        key = f"{partner_id}|{environment}|{list_id}|{email}|sha1:{hashlib.sha1(ids.encode()).hexdigest()}"
    return key


def batch_key(partner_id: str, environment: str, list_id: int) -> str:
    """Deliveries with one batch key may share a request."""
    return f"{partner_id}|{environment}|{list_id}"


def _plan(event: InboundEvent, partner: Partner, mapping: dict) -> PlannedDelivery:
    key_id = partner.key_for(event.environment)
    batching = mapping["enable_batching"]
    action = ACTION if batching else UpdateEmailContactProfileFieldsUnbatched.name
    spec: dict = {"mapping": mapping["name"], "event_time": event.event_time.timestamp()}
    notes: list[str] = []
    try:
        spec["list_id"] = _list_id(event.payload, mapping)
        spec["email"] = _email(event.payload, mapping)
        spec["fields"] = field_values(event.payload, mapping, notes)
        if notes and not spec["fields"]:
            raise Refused("; ".join(notes))
    except Refused as refusal:
        return PlannedDelivery(action, spec, key_id, skip_reason=str(refusal))
    if notes:
        spec["notes"] = notes  # the action puts them in the attempt record
    if key_id is None:
        return PlannedDelivery(
            action,
            spec,
            key_id,
            skip_reason=(f"{event.environment} event and no {event.environment} key is configured"),
        )
    ids = [f["segmentationFieldId"] for f in spec["fields"]]
    return PlannedDelivery(
        action=action,
        spec=spec,
        partner_key_id=key_id,
        contact_key=contact_key(partner.id, event.environment, spec["list_id"], spec["email"], ids),
        batch_key=batch_key(partner.id, event.environment, spec["list_id"]) if batching else None,
    )
