"""Extole source, SMS consent: `sms_opt_in` / `sms_opt_out` need `person.phone_number`, kept as
its digits with the country code; the email becomes optional (one that does not fit is left
out with a warning, as any optional field). A table of (input → event or problems)."""

from __future__ import annotations

import json

import pytest

from connector.contract import PayloadError
from plugins.extole.source import ExtoleSource

SOURCE = ExtoleSource()


def parse(document):
    return SOURCE.parse(json.dumps(document).encode(), {"plugin": "extole"})


def problems(document) -> dict[str, list[str]]:
    with pytest.raises(PayloadError) as exc:
        parse(document)
    return exc.value.problems


def sms(type="sms_opt_in", **person) -> dict:
    return {
        "event_id": "s-1",
        "type": type,
        "event_time": "2026-11-22T05:44:22Z",
        "person": {"phone_number": "+15555555555", **person},
    }


ACCEPTED = [
    # (case, input, (type, phone, email))
    ("E.164", sms(), ("sms_opt_in", "15555555555", None)),
    ("opt-out", sms("sms_opt_out"), ("sms_opt_out", "15555555555", None)),
    ("as people write it", sms(phone_number="+1 (555) 555-5555"), ("sms_opt_in", "15555555555", None)),
    ("dots and dashes", sms(phone_number="+44 20.7946-0000"), ("sms_opt_in", "442079460000", None)),
    ("8 digits", sms(phone_number="+12 345 678"), ("sms_opt_in", "12345678", None)),
    ("15 digits", sms(phone_number="+" + "1" * 15), ("sms_opt_in", "1" * 15, None)),
    ("with an email", sms(email=" Jane@Example.COM"), ("sms_opt_in", "15555555555", "jane@example.com")),
]


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(document, expected):
    (event,) = parse(document)
    assert (event.type, event.phone, event.email) == expected
    assert event.payload["person"]["phone_number"] == event.phone  # what reaches partners


NOT_A_NUMBER = "not a phone number of 8–15 digits"
REFUSED = [
    # (case, input, problems)
    ("no number", {**sms(), "person": {}}, {"person.phone_number": ["Missing data for required field."]}),
    ("7 digits", sms(phone_number="+1 555 555"), {"person.phone_number": [NOT_A_NUMBER]}),
    ("16 digits", sms(phone_number="+" + "1" * 16), {"person.phone_number": [NOT_A_NUMBER]}),
    ("letters", sms(phone_number="+1 555 CALL NOW"), {"person.phone_number": [NOT_A_NUMBER]}),
    ("an extension", sms(phone_number="+1 555 555 5555 x12"), {"person.phone_number": [NOT_A_NUMBER]}),
    ("two pluses", sms(phone_number="++15555555555"), {"person.phone_number": [NOT_A_NUMBER]}),
    ("a JSON number", sms(phone_number=15555555555), {"person.phone_number": ["Not a valid string."]}),
]


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused(document, expected):
    assert problems(document) == expected


def test_email_consent_still_needs_the_email_and_not_the_number():
    assert problems({**sms("opt_in"), "person": {"phone_number": "+15555555555"}}) == {
        "person.email": ["Missing data for required field."]
    }
    (event,) = parse({**sms("opt_in"), "person": {"email": "jane@example.com", "phone_number": "call me"}})
    assert (event.email, event.phone) == ("jane@example.com", None)
    assert event.warnings == ("person.phone_number: not a phone number of 8–15 digits (left out)",)


def test_an_email_event_keeps_its_number_as_sent_and_normalised_beside_it():
    (event,) = parse(
        {**sms("opt_out"), "person": {"email": "jane@example.com", "phone_number": "+1 555-555-5555"}}
    )
    assert event.payload["person"]["phone_number"] == "+1 555-555-5555"  # a profile attribute, as sent
    assert event.phone == "15555555555"  # so the person's story finds the event by number


def test_problems_in_an_array_name_the_item():
    assert problems([sms(), sms(phone_number="12")]) == {"[1].person.phone_number": [NOT_A_NUMBER]}


def test_an_sms_events_email_that_does_not_fit_is_left_out_with_a_warning():
    (event,) = parse(sms(email="jane@"))
    assert (event.phone, event.email) == ("15555555555", None)
    assert event.warnings == ("person.email: not a valid email address (left out)",)
