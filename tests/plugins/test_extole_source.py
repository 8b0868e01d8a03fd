"""Extole source: the referral event schema as a table of (input → events or problems)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
from hypothesis import strategies as st
from marshmallow import ValidationError

from connector.contract import PayloadError
from plugins.extole.source import (
    _EVENT_SCHEMA,
    _PLAIN_EVENT,
    MAX_EVENTS,
    REQUIRED_PERSON_FIELD,
    ExtoleSource,
)
from plugins.extole.testing import referral_event
from tests.fuzzing import examples

SOURCE = ExtoleSource()
UNKNOWN_TYPE = "Must be one of: opt_in, opt_out, sms_opt_in, sms_opt_out."
CONTROL_CHARACTERS = "must not contain control characters (U+0000–U+001F, U+007F–U+009F)"


def parse(document):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return SOURCE.parse(body, {"plugin": "extole"})


def problems(document) -> dict[str, list[str]]:
    with pytest.raises(PayloadError) as exc:
        parse(document)
    return exc.value.problems


def event(**changes) -> dict:
    base = {
        "event_id": "e-1",
        "type": "opt_in",
        "event_time": "2026-11-22T05:44:22.123Z",
        "person": {"email": "jane@example.com"},
    }
    person = changes.pop("person", {})
    base.update(changes)
    base["person"] = {**base["person"], **person}
    return base


def without(name: str) -> dict:
    data = event()
    if name.startswith("person."):
        del data["person"][name.split(".", 1)[1]]
    else:
        del data[name]
    return data


ACCEPTED = [
    # (case, input, (event_id, type, environment, email))
    ("minimal", event(), ("e-1", "opt_in", "production", "jane@example.com")),
    ("opt_out", event(type="opt_out"), ("e-1", "opt_out", "production", "jane@example.com")),
    ("staging", event(environment="staging"), ("e-1", "opt_in", "staging", "jane@example.com")),
    (
        "email trimmed and lower-cased",
        event(person={"email": " Jane.Doe@Example.COM\n"}),
        ("e-1", "opt_in", "production", "jane.doe@example.com"),
    ),
    (
        "numeric event_id",
        event(event_id=7371940231718590001),
        ("7371940231718590001", "opt_in", "production", "jane@example.com"),
    ),
    ("128-char event_id", event(event_id="x" * 128), ("x" * 128, "opt_in", "production", "jane@example.com")),
    (
        "unknown fields ignored",
        event(program="spring", person={"shoe": 9}),
        ("e-1", "opt_in", "production", "jane@example.com"),
    ),
    (
        "offset time",
        event(event_time="2026-11-22T07:44:22+02:00"),
        ("e-1", "opt_in", "production", "jane@example.com"),
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"), [(c[1], c[2]) for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_accepted(document, expected):
    (parsed,) = parse(document)
    assert (parsed.event_id, parsed.type, parsed.environment, parsed.email) == expected


REFUSED = [
    # (case, input, problems)
    ("missing event_id", without("event_id"), {"event_id": ["Missing data for required field."]}),
    ("missing type", without("type"), {"type": ["Missing data for required field."]}),
    ("missing event_time", without("event_time"), {"event_time": ["Missing data for required field."]}),
    ("missing person", without("person"), {"person": ["Missing data for required field."]}),
    ("missing email", without("person.email"), {"person.email": ["Missing data for required field."]}),
    ("empty event_id", event(event_id=""), {"event_id": ["Length must be between 1 and 128."]}),
    ("129-char event_id", event(event_id="x" * 129), {"event_id": ["Length must be between 1 and 128."]}),
    ("boolean event_id", event(event_id=True), {"event_id": ["Not a valid string."]}),
    ("unknown type", event(type="signup"), {"type": [UNKNOWN_TYPE]}),
    (
        "unknown environment",
        event(environment="dev"),
        {"environment": ["Must be one of: production, staging."]},
    ),
    (
        "time without offset",
        event(event_time="2026-11-22T05:44:22"),
        {"event_time": ["needs a UTC offset, e.g. 2026-11-22T05:44:22Z"]},
    ),
    ("time not a date", event(event_time="yesterday"), {"event_time": ["not an ISO-8601 date-time"]}),
    ("time as a number", event(event_time=1795326262), {"event_time": ["not an ISO-8601 date-time"]}),
    (
        "invalid email",
        event(person={"email": "jane.example.com"}),
        {"person.email": ["not a valid email address"]},
    ),
    ("email as a number", event(person={"email": 42}), {"person.email": ["Not a valid string."]}),
    ("null email", event(person={"email": None}), {"person.email": ["Field may not be null."]}),
    (
        "missing email, with odd optional fields",
        event(person={"email": None, "funnel": 7}) | {"person": {"funnel": 7, "first_name": "Jo"}},
        {"person.email": ["Missing data for required field."]},
    ),
    ("person not an object", event() | {"person": ["jane@example.com"]}, {"person": ["Invalid input type."]}),
    *(
        (f"event_id holding U+{ord(c):04X}", event(event_id=f"e{c}1"), {"event_id": [CONTROL_CHARACTERS]})
        for c in ("\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\x9f")
    ),
    (
        "a lone surrogate anywhere",
        event(person={"first_name": "Ja\ud800ne"}),
        {"person.first_name": ["invalid Unicode: a lone UTF-16 surrogate (\\ud800-\\udfff)"]},
    ),
    (
        "several problems at once",
        event(type="x", person={"email": "x"}),
        {"type": [UNKNOWN_TYPE], "person.email": ["not a valid email address"]},
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"), [(c[1], c[2]) for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(document, expected):
    assert problems(document) == expected


# -- optional fields never cost a consent change ---------------------------------------------
LEFT_OUT = [
    # (case, person fields sent, the warning) — the event is accepted without that field
    ("funnel of two words", {"funnel": "friend and advocate"}, None),
    ("funnel capitalised", {"funnel": "Friend"}, None),
    ("funnel of 64 characters", {"funnel": "f" * 64}, None),
    ("funnel of 65 characters", {"funnel": "f" * 65}, "person.funnel: Longer than maximum length 64."),
    ("funnel a number", {"funnel": 3}, "person.funnel: Not a valid string."),
    ("first_name a number", {"first_name": 7}, "person.first_name: Not a valid string."),
    ("last_name an object", {"last_name": {"x": 1}}, "person.last_name: Not a valid string."),
    (
        "share_link too long",
        {"share_link": "x" * 2049},
        "person.share_link: Longer than maximum length 2048.",
    ),
    (
        "first_name with a control character",
        {"first_name": "Ja\x00ne"},
        "person.first_name: " + CONTROL_CHARACTERS,
    ),
    (
        "phone_number not a number",
        {"phone_number": "call me"},
        "person.phone_number: not a phone number of 8–15 digits",
    ),
    (
        "phone_number too short",
        {"phone_number": "555-1234"},
        "person.phone_number: not a phone number of 8–15 digits",
    ),
    ("partner_user_id a list", {"partner_user_id": ["u"]}, "person.partner_user_id: Not a valid string."),
]


@pytest.mark.parametrize(
    ("person", "warning"), [(c[1], c[2]) for c in LEFT_OUT], ids=[c[0] for c in LEFT_OUT]
)
def test_an_optional_person_field_that_does_not_fit_is_left_out_with_a_warning(person, warning):
    for kind, required in REQUIRED_PERSON_FIELD.items():
        if required in person:
            continue  # required by this type (an SMS type's phone_number): it refuses the event
        (parsed,) = parse(referral_event(type=kind, **person))
        assert parsed.email == "jane.doe@example.com"
        ((name, value),) = person.items()
        if warning is None:
            assert (parsed.payload["person"][name], parsed.warnings) == (value, ())
        else:
            assert name not in parsed.payload["person"]
            assert parsed.warnings == (f"{warning} (left out)",)


def test_several_misfits_are_each_named_and_the_rest_is_kept():
    (parsed,) = parse(referral_event(first_name=None, last_name=5, funnel="x" * 99, share_link="ok"))
    assert parsed.warnings == (
        "person.last_name: Not a valid string. (left out)",
        "person.funnel: Longer than maximum length 64. (left out)",
    )
    assert parsed.payload["person"] == {
        "email": "jane.doe@example.com",
        "phone_number": "+15555555555",
        "share_link": "ok",
        "partner_user_id": "u-829",
    }


def test_a_client_id_that_does_not_fit_is_left_out_with_a_warning():
    (parsed,) = parse(event(client_id=["x"]))
    assert (parsed.payload["client_id"], parsed.warnings) == (
        None,
        ("client_id: Not a valid string. (left out)",),
    )


def test_in_an_array_only_the_event_with_a_misfit_has_the_warning():
    parsed = parse([event(event_id="a"), event(event_id="b", person={"funnel": 1})])
    assert [e.warnings for e in parsed] == [(), ("person.funnel: Not a valid string. (left out)",)]


def test_the_field_a_type_requires_is_the_one_that_refuses():
    assert REQUIRED_PERSON_FIELD == {
        "opt_in": "email",
        "opt_out": "email",
        "sms_opt_in": "phone_number",
        "sms_opt_out": "phone_number",
    }
    assert problems(event(person={"email": 5, "phone_number": 5})) == {
        "person.email": ["Not a valid string."]
    }
    assert problems(event(type="sms_opt_out", person={"email": 5, "phone_number": 5})) == {
        "person.phone_number": ["Not a valid string."]
    }


def test_profile_attributes_are_kept_in_the_payload():
    (parsed,) = parse(referral_event(email=" Jane.Doe@Example.com "))
    assert parsed.payload["person"] == {
        "email": "jane.doe@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone_number": "+15555555555",
        "share_link": "refer.example.com/jdoe",
        "funnel": "advocate",
        "partner_user_id": "u-829",
    }
    assert parsed.payload["client_id"] == "1890234"


def test_event_time_keeps_its_instant():
    (parsed,) = parse(event(event_time="2026-11-22T07:44:22.5+02:00"))
    assert parsed.event_time == datetime(2026, 11, 22, 5, 44, 22, 500000, tzinfo=UTC)
    assert parsed.event_time.utcoffset() == timedelta(hours=2)


def test_array_keeps_order_and_indexes_problems():
    parsed = parse([event(event_id="a"), event(event_id="b", type="opt_out")])
    assert [(e.event_id, e.type) for e in parsed] == [("a", "opt_in"), ("b", "opt_out")]
    assert problems([event(), event(type="x"), 3]) == {
        "[1].type": [UNKNOWN_TYPE],
        "[2]": ["an event must be a JSON object"],
    }


def test_array_limit():
    assert len(parse([event(event_id=str(i)) for i in range(MAX_EVENTS)])) == MAX_EVENTS
    assert problems([event(event_id=str(i)) for i in range(MAX_EVENTS + 1)]) == {
        "$": [f"at most {MAX_EVENTS} events per request, got {MAX_EVENTS + 1}"]
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "malformed JSON: "),
        (b"{", "malformed JSON: "),
        (b"\xff\xfe\xfd", "malformed JSON: "),
        (b"[" * 100_000, "malformed JSON: "),
        (b"[]", "an empty array holds no events"),
        (b'{"event_id": NaN}', "malformed JSON: NaN is not a JSON value"),
        (b"true", "an event must be a JSON object"),
    ],
)
def test_unreadable_documents(body, message):
    (only,) = problems(body)["$"]
    assert only.startswith(message)


@pytest.mark.parametrize(
    ("moment", "message"),
    [
        ("9999-12-31T23:59:59-23:59", "is more than a day in the future"),
        ("0001-01-01T00:00:00+14:00", "is before 2000-01-01"),
    ],
)
def test_implausible_event_times_are_refused(moment, message):
    with pytest.raises(PayloadError) as refused:
        ExtoleSource().parse(json.dumps(referral_event(event_time=moment)).encode(), {})
    assert refused.value.problems == {"event_time": [message]}


# -- the plain loader gives what the schema gives, or leaves the event to the schema ----------
_TEXTS = st.one_of(
    st.sampled_from(["opt_in", "opt_out", "production", "staging", "advocate", "friend", "", "x" * 300]),
    st.text(max_size=12),
)
_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXTS, st.just([]))
_TIMES = st.one_of(
    st.sampled_from(
        [
            "2026-11-22T05:44:22.123Z",
            "2026-11-22T05:44:22+02:00",
            "2026-11-22T05:44:22",
            "1999-12-31T23:59:59Z",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    _ANY,
)
_EMAILS = st.one_of(
    st.sampled_from(["Jane.Doe@Example.com ", "jane@example", "a@b.co", "\u00e9@x.org"]), _ANY
)


_TOP = ("event_id", "type", "event_time", "environment", "client_id", "person", "extra")
_PERSON = ("email", "first_name", "last_name", "phone_number", "share_link", "funnel", "partner_user_id", "x")
_VALUES = {"event_time": _TIMES, "email": _EMAILS}


@st.composite
def events(draw):
    """A valid event with up to three of its values changed or left out."""
    event = referral_event(draw(_TEXTS), email=draw(_EMAILS.filter(lambda e: isinstance(e, str))))
    for _ in range(draw(st.integers(0, 3))):
        inside = draw(st.booleans())
        where = event["person"] if inside and isinstance(event.get("person"), dict) else event
        key = draw(st.sampled_from(_PERSON if where is not event else _TOP))
        if draw(st.booleans()):
            where.pop(key, None)
        else:
            where[key] = draw(_VALUES.get(key, st.one_of(_TEXTS, _ANY)))
    return event


@hypothesis.settings(
    max_examples=examples(1500), deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
@hypothesis.given(events())
def test_the_plain_loader_agrees_with_the_schema(event):
    plain = _PLAIN_EVENT(event)
    try:
        loaded = _EVENT_SCHEMA.load(event)
    except ValidationError:
        assert plain is None
        return
    assert plain is None or plain == loaded


def test_a_plainly_valid_event_takes_the_plain_loader():
    event = referral_event("p-1", email=" Jane@Example.COM", environment="staging")
    assert _PLAIN_EVENT(event) == _EVENT_SCHEMA.load(event)
    assert _PLAIN_EVENT({**event, "event_id": 7}) is None  # a number: the schema makes it a string


OPTIONAL = {f"person.{name}" for name in _PERSON if name not in ("email", "x")} | {"client_id"}


@hypothesis.settings(
    max_examples=examples(800), deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
@hypothesis.given(events())
def test_only_required_fields_refuse_an_event_and_every_field_left_out_is_named(event):
    try:
        (parsed,) = parse(event)
    except PayloadError as refused:
        problems = refused.problems
    else:
        problems = None
    if problems is not None:
        assert not OPTIONAL & set(problems), problems  # refused for a required field only
        return
    named = {warning.split(":")[0] for warning in parsed.warnings}
    sent = {f"person.{k}" for k, v in event["person"].items() if v is not None} | (
        {"client_id"} if event.get("client_id") is not None else set()
    )
    kept = {f"person.{k}" for k in parsed.payload["person"]} | (
        {"client_id"} if parsed.payload["client_id"] is not None else set()
    )
    assert named == (sent & OPTIONAL) - kept
