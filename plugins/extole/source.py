"""Extole-style referral events: one event or an array of at most 1000, validated by schema.
Only the fields an event cannot do without refuse it (its id, type, time, environment and the
person field its type requires); an optional one that does not fit is left out of the event,
with a warning that names it, so an odd profile value never costs a consent change. Email
consent (`opt_in`, `opt_out`) needs `person.email`; SMS consent (`sms_opt_in`, `sms_opt_out`)
needs `person.phone_number`, which it keeps as its digits with the country code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from connector.plugin_api import (
    Email,
    InboundAuthSchema,
    InboundEvent,
    PayloadError,
    Source,
    SourceConfigSchema,
    a_phone_number,
    check_event_time,
    no_control_characters,
    parse_json,
    phone_digits,
    plain_loader,
    problems_at,
    text_up_to,
)

MAX_EVENTS = 1000


class AwareDateTime(fields.AwareDateTime):
    default_error_messages = {
        "invalid": "not an ISO-8601 date-time",
        "invalid_awareness": "needs a UTC offset, e.g. 2026-11-22T05:44:22Z",
    }


#: The person field each event type cannot do without: the contact whose consent it changes.
#: Every other field is optional, and one that does not fit is left out with a warning.
REQUIRED_PERSON_FIELD = {
    "opt_in": "email",
    "opt_out": "email",
    "sms_opt_in": "phone_number",
    "sms_opt_out": "phone_number",
}
SMS_TYPES = ("sms_opt_in", "sms_opt_out")


class PersonSchema(Schema):
    """Every field of a person; which one is required depends on the event's type."""

    class Meta:
        unknown = EXCLUDE

    email = Email()
    first_name = fields.String(validate=text_up_to(255))
    last_name = fields.String(validate=text_up_to(255))
    phone_number = fields.String(validate=a_phone_number)
    share_link = fields.String(validate=text_up_to(2048))
    funnel = fields.String(validate=text_up_to(64))  # any text, as Extole writes it
    partner_user_id = fields.String(validate=text_up_to(255))


class ReferralEventSchema(Schema):
    class Meta:
        unknown = EXCLUDE
        description = (
            "Email consent (opt_in, opt_out) needs person.email, SMS consent (sms_opt_in, "
            "sms_opt_out) person.phone_number. Unknown fields are ignored. The email is trimmed "
            "and lower-cased."
        )

    event_id = fields.String(required=True, validate=[validate.Length(1, 128), no_control_characters])
    type = fields.String(required=True, validate=validate.OneOf(list(REQUIRED_PERSON_FIELD)))
    event_time = AwareDateTime(required=True, validate=check_event_time)
    client_id = fields.String(validate=text_up_to(255))
    environment = fields.String(load_default="production", validate=validate.OneOf(["production", "staging"]))
    person = fields.Nested(PersonSchema, required=True)

    @pre_load
    def _json_numbers_as_ids(self, data, **kwargs):
        # Extole ids are long numbers; accept them as JSON numbers without losing the value.
        if isinstance(data, dict):
            for name in ("event_id", "client_id"):
                if isinstance(data.get(name), int) and not isinstance(data.get(name), bool):
                    data = {**data, name: str(data[name])}
        return data


class ExtoleAuthSchema(InboundAuthSchema):
    #: HS256 only: false refuses `sha1=` signatures (Extole's docs show that form, so true
    #: unless set; a sender that signs with sha256 should set it false).
    allow_sha1 = fields.Boolean()

    @validates_schema
    def _an_hs256_option(self, data, **kwargs):
        if "allow_sha1" in data and data.get("algorithm") != "HS256":
            raise ValidationError("only the HS256 algorithm has this option", "allow_sha1")


class ExtoleSourceSchema(SourceConfigSchema):
    auth = fields.Nested(ExtoleAuthSchema, required=True)


# One instance for all requests: building a schema deep-copies its fields (~0.3 ms).
_EVENT_SCHEMA = ReferralEventSchema()
_PERSON_FIELDS = PersonSchema().fields
#: Top-level fields that are optional in the same way (a note, never sent to a partner).
_OPTIONAL_TOP = ("client_id",)
# Plainly valid events (strings where the schema wants strings) skip marshmallow's per-field
# machinery: 25 µs an event, a sixth of a request's time. Numbers for ids are not plain: the
# schema's pre_load turns them into strings.
_PLAIN_EVENT = plain_loader(_EVENT_SCHEMA)


class ExtoleSource(Source):
    name = "extole"
    config_schema = ExtoleSourceSchema
    event_schema = ReferralEventSchema
    max_events = MAX_EVENTS

    def parse(self, body: bytes, source_config: Mapping[str, Any]) -> list[InboundEvent]:
        document = parse_json(body)
        is_array = isinstance(document, list)
        items = document if is_array else [document]
        if is_array and not items:
            raise PayloadError({"$": ["an empty array holds no events"]})
        if len(items) > MAX_EVENTS:
            raise PayloadError({"$": [f"at most {MAX_EVENTS} events per request, got {len(items)}"]})
        plain = []
        for item in items:
            data = _PLAIN_EVENT(item) if type(item) is dict else None
            if data is None or REQUIRED_PERSON_FIELD[data["type"]] not in data["person"]:
                return _fitted(items, (lambda i: f"[{i}]") if is_array else (lambda i: ""))
            plain.append(data)
        return [_to_event(data) for data in plain]


def _fitted(items: list, path_of) -> list[InboundEvent]:
    """Every item loaded leaving out the optional fields that do not fit (each named in the
    event's warnings), or PayloadError naming every problem that refuses one."""
    problems: dict[str, list[str]] = {}
    found = []
    for index, item in enumerate(items):
        prefix = path_of(index)
        if not isinstance(item, dict):
            problems[prefix or "$"] = ["an event must be a JSON object"]
            continue
        try:
            found.append(_to_event(*_loaded(item)))
        except ValidationError as exc:
            problems.update(problems_at(exc.messages, prefix))
    if problems:
        raise PayloadError(problems)
    return found


def _loaded(item: dict) -> tuple[dict, list[str]]:
    """(loaded event, warnings), or ValidationError naming the fields that refuse it: the
    top-level ones and the person field its type requires (an unknown type's: email)."""
    kind = item.get("type")
    required = REQUIRED_PERSON_FIELD.get(kind, "email") if isinstance(kind, str) else "email"
    item, warnings = _fitting(item, _OPTIONAL_TOP, _EVENT_SCHEMA.fields, "")
    missing = {}
    if isinstance(item.get("person"), dict):
        optional = [name for name in _PERSON_FIELDS if name != required]
        person, left_out = _fitting(item["person"], optional, _PERSON_FIELDS, "person.")
        item, warnings = {**item, "person": person}, warnings + left_out
        if required not in person:
            missing = {required: ["Missing data for required field."]}
    try:
        data = _EVENT_SCHEMA.load(item)
    except ValidationError as exc:
        if missing and isinstance(exc.messages, dict):  # person is an object: messages by field
            exc.messages.setdefault("person", {}).update(missing)
        raise
    if missing:
        raise ValidationError({"person": missing})
    return data, warnings


def _fitting(values: dict, optional, schema_fields, prefix: str) -> tuple[dict, list[str]]:
    """`values` without the optional ones that do not fit their field, and a warning for each
    (a null one is left out as if absent, with none)."""
    left_out: dict[str, str | None] = {}
    for name in optional:
        value = values.get(name)
        if value is None:
            if name in values:
                left_out[name] = None
            continue
        try:
            schema_fields[name].deserialize(value, name, values)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
            left_out[name] = f"{prefix}{name}: {' '.join(messages)} (left out)"
    if not left_out:
        return values, []
    kept = {key: value for key, value in values.items() if key not in left_out}
    return kept, [warning for warning in left_out.values() if warning]


def _to_event(data: dict, warnings: list[str] | tuple = ()) -> InboundEvent:
    person = {k: v for k, v in data["person"].items() if v is not None}
    # The number an event carries, kept beside it so the person's story finds the event: an
    # SMS event's is its contact, and goes to partners as digits; an email event's is a
    # profile attribute, sent on as written.
    phone = phone_digits(person["phone_number"]) if "phone_number" in person else None
    if data["type"] in SMS_TYPES:
        person["phone_number"] = phone
    payload = {
        "event_id": data["event_id"],
        "type": data["type"],
        "event_time": data["event_time"].isoformat(),
        "environment": data["environment"],
        "client_id": data.get("client_id"),
        "person": person,
    }
    return InboundEvent(
        event_id=data["event_id"],
        type=data["type"],
        event_time=data["event_time"],
        environment=data["environment"],
        email=person.get("email"),
        payload=payload,
        warnings=tuple(warnings) if warnings else (),
        phone=phone,
    )
