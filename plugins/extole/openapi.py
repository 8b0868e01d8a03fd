"""How Extole's referral webhooks look in /openapi.json: the body (one referral event or an
array of at most 1000: email consent needs `person.email`, SMS consent `person.phone_number`)
and the HS256 signature header."""

from __future__ import annotations

TEXT_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
}

SMS_TYPES = ["sms_opt_in", "sms_opt_out"]
REFERRAL_EVENT = {
    "type": "object",
    "required": ["event_id", "type", "event_time", "person"],
    "properties": {
        "event_id": TEXT_ID,
        "type": {"enum": ["opt_in", "opt_out", *SMS_TYPES]},
        "event_time": {"type": "string", "format": "date-time", "description": "ISO-8601 with a UTC offset"},
        "client_id": {"type": "string"},
        "environment": {"enum": ["production", "staging"], "default": "production"},
        "person": {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 320},
                "first_name": {"type": "string", "maxLength": 255},
                "last_name": {"type": "string", "maxLength": 255},
                "phone_number": {
                    "type": "string",
                    "maxLength": 64,
                    "description": "with its country code; for SMS types 8–15 digits, kept as digits",
                },
                "share_link": {"type": "string", "maxLength": 2048},
                "funnel": {"enum": ["advocate", "friend"]},
                "partner_user_id": {"type": "string", "maxLength": 255},
            },
        },
    },
    "if": {"properties": {"type": {"enum": SMS_TYPES}}},
    "then": {"properties": {"person": {"required": ["phone_number"]}}},
    "else": {"properties": {"person": {"required": ["email"]}}},
    "description": "Unknown fields are ignored. The email is trimmed and lower-cased; an SMS "
    "event's phone number becomes its digits (`+1 (555) 555-5555` → `15555555555`).",
}

BODY = {
    "oneOf": [
        REFERRAL_EVENT,
        {"type": "array", "items": REFERRAL_EVENT, "minItems": 1, "maxItems": 1000},
    ]
}

SIGNATURE = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Extole-Signature",
    "description": "`sha256=<hex HMAC-SHA256 of the raw body>` (or `sha1=<hex HMAC-SHA1>`, unless the "
    "source sets `allow_sha1: false`), with one of the source's secrets.",
}
