"""Field types that config schemas and inbound payload schemas are built from: strict
schemas, durations, outbound URLs, secrets, email addresses, phone numbers and ids without
control characters (validated in this one place)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
_CONTROL_MESSAGE = "must not contain control characters (U+0000–U+001F, U+007F–U+009F)"
MAX_EMAIL = 254
_EMAIL_SHAPE = validate.Email(error="not a valid email address")


class StrictSchema(Schema):
    """Unknown keys are errors: a typo in a config file must not be silently ignored."""

    class Meta:
        unknown = RAISE


def parse_duration(value) -> float:
    """'500ms', '10s', '1m', '12h', '7d' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 500ms, 10s, 1m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Duration(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if seconds < 0:
            raise ValidationError("must not be negative")
        return seconds


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OutboundUrl(fields.String):
    """https only, except http for loopback hosts (the sandbox, tests)."""

    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs)
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return url.rstrip("/")
        if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
            return url.rstrip("/")
        raise ValidationError("must be an https:// URL (http:// only for loopback hosts)")


def has_control_characters(value: str) -> bool:
    """Whether `value` holds a control character (Unicode Cc: U+0000–U+001F, U+007F–U+009F)."""
    return _CONTROL.search(value) is not None


class _NoControlCharacters(validate.Regexp):
    """A Regexp, so /openapi.json (apispec) reads its pattern; checked without the regex's
    fullmatch, which would cost a scan of every id on the hot path."""

    def __init__(self):
        super().__init__(r"^[^\x00-\x1f\x7f-\x9f]*$", error=_CONTROL_MESSAGE)

    def __call__(self, value, **kwargs):
        if has_control_characters(value):
            raise ValidationError(_CONTROL_MESSAGE)


#: marshmallow validator for ids: no control character, which would forge log lines or hide
#: in a page (and PostgreSQL cannot store U+0000 in text).
no_control_characters = _NoControlCharacters()


class _TextUpTo(validate.Length):
    """A Length, so /openapi.json (apispec) reads its maxLength; one call checks both, since
    inbound events are checked field by field on the hot path."""

    def __init__(self, limit: int):
        super().__init__(max=limit)
        self.limit = limit

    def __call__(self, value, **kwargs):
        if len(value) > self.limit:
            raise ValidationError(f"Longer than maximum length {self.limit}.")
        # isprintable() is a third of a regex search, and true for nearly all text; what it
        # refuses besides control characters (other spaces, format characters) is looked at.
        if not value.isprintable() and _CONTROL.search(value) is not None:
            raise ValidationError(_CONTROL_MESSAGE)


def text_up_to(limit: int) -> validate.Length:
    """marshmallow validator for free text: at most `limit` characters and no control character."""
    return _TextUpTo(limit)


#: A phone number in international form has at most 15 digits (E.164); fewer than 8 is none.
#: Spaces, dashes, dots, brackets and a leading + may stand between them.
_PHONE = re.compile(r"[ ().+-]*(?:[0-9][ ().-]*){8,17}")
#: The trunk prefix written beside a country code ("+44 (0)20 …"): not dialled from abroad.
_TRUNK = re.compile(r"\(\s*0\s*\)")
MAX_PHONE_TEXT = 64


def phone_digits(value: str) -> str | None:
    """The number's digits with its country code, no `+` ("+1 (555) 555-5555" →
    "15555555555"; "+44 (0)20 7946 0958" and "0044 20 7946 0958" → "442079460958"), or None
    when `value` is not a phone number of 8–15 digits."""
    if len(value) > MAX_PHONE_TEXT or value.count("+") > 1 or _PHONE.fullmatch(value) is None:
        return None
    written = value.lstrip(" (")
    international = written.startswith(("+", "00"))
    if international:
        value = _TRUNK.sub("", value)
    digits = "".join(c for c in value if c.isdigit())
    if written.startswith("00"):  # the international call prefix, where + is not written
        digits = digits[2:]
    if "+" in value and not written.startswith("+"):
        return None
    return digits if 8 <= len(digits) <= 15 else None


class _PhoneNumber(validate.Length):
    """A phone number of 8–15 digits (see phone_digits); a Length, so /openapi.json reads its
    longest text."""

    def __init__(self):
        super().__init__(max=MAX_PHONE_TEXT)

    def __call__(self, value, **kwargs):
        bare = value[1:] if value[:1] == "+" else value
        if 8 <= len(bare) <= 15 and bare.isascii() and bare.isdigit() and bare[:2] != "00":  # at once
            return
        if phone_digits(value) is None:
            raise ValidationError("not a phone number of 8–15 digits")


#: marshmallow validator: a phone number of 8–15 digits.
a_phone_number = _PhoneNumber()


def secret_field(**kwargs) -> fields.String:
    """A string that must never be logged or stored; the loader collects its value."""
    return fields.String(metadata={"secret": True}, validate=validate.Length(min=1), **kwargs)


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased, so one person always matches."""
    return value.strip().lower()


def valid_email(value: str) -> str | None:
    """The normalised address, or None when it is not one that email APIs accept."""
    try:
        return _checked(normalise_email(value))
    except ValidationError:
        return None


def _checked(email: str) -> str:
    if len(email) > MAX_EMAIL:
        raise ValidationError(f"longer than {MAX_EMAIL} characters")
    _EMAIL_SHAPE(email)
    if "." not in email.rsplit("@", 1)[-1]:  # user@localhost reaches nobody's inbox
        raise ValidationError("not a valid email address")
    return email


class Email(fields.String):
    """An email address, normalised before anything else; the error says what is wrong."""

    def __init__(self, **kwargs):
        described = {"format": "email", "maxLength": MAX_EMAIL, **kwargs.pop("metadata", {})}
        super().__init__(metadata=described, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return _checked(normalise_email(super()._deserialize(value, attr, data, **kwargs)))
