"""Listrak email activity and list membership as Segment spec messages: the track events of one
Activity row or one link click, the identify of one contact, the identify of one membership
change, and their deterministic messageIds.

A messageId is a UUID5 over (list, message, email, event, link, time) for activity and over
(list, email, state, date) for a membership change, so the same activity or change read again
(polls re-read the lookback window, membership windows overlap) yields the same id and is
stored once."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from connector.plugin_api import InboundEvent

#: Fixed namespace of this source's messageIds (never change it: ids would all change).
NAMESPACE = uuid.UUID("7f0c6d2e-4a55-5b9e-9a1c-2d1e8c3b6a10")
_NAMESPACE_BYTES = NAMESPACE.bytes
#: Row flag → the event it becomes, stamped with the row's activityDate.
FLAG_EVENTS = (
    ("open", "Email Opened"),
    ("bounce", "Email Bounced"),
    ("unsubscribe", "Email Unsubscribed"),
    ("abuse", "Email Marked as Spam"),
)
SENT, CLICKED = "Email Sent", "Link Clicked"
#: The InboundEvent type of a membership change: the segment destination orders these per
#: contact and list (a later `false` is never overtaken by an earlier `true`).
MEMBERSHIP = "membership"


def parse_time(value: object) -> datetime | None:
    """A Listrak date-time (ISO-8601; without an offset it is taken as UTC), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _parse(value)


@lru_cache(maxsize=4096)  # every row of a message has its sendDate; many share activity times
def _parse(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@lru_cache(maxsize=4096)
def iso(at: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as Segment's examples write it."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def message_id(*parts: object) -> str:
    """`str(uuid.uuid5(NAMESPACE, "a|b|…"))`, written out: the same id (a test holds it to
    uuid5), in less than half the time, since every activity row needs one (and the UUID
    object's checks and int conversions were most of it)."""
    name = "|".join("" if p is None else str(p) for p in parts)
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Message:
    """What every event of one Listrak message carries: its list, id, subject and sender."""

    __slots__ = ("environment", "from_email", "list_id", "message_id", "subject")

    def __init__(self, list_id: int, message_id: int, subject, from_email, environment: str):
        self.list_id, self.message_id = list_id, message_id
        self.subject, self.from_email, self.environment = subject, from_email, environment

    def track(
        self, event: str, email: str, at: datetime, user_id: str | None, link: str | None = None, **extra
    ) -> InboundEvent:
        properties = {
            "event": event,
            "email_id": self.message_id,
            "fromId": self.from_email,
            "email_subject": self.subject,
        }
        if link is not None:
            properties["link"] = link
        properties.update(extra)
        stamp = iso(at)
        payload: dict[str, Any] = {
            "type": "track",
            "event": event,
            "messageId": message_id(self.list_id, self.message_id, email, event, link, stamp),
            "timestamp": stamp,
            "anonymousId": email,
            "context": {"traits": {"email": email}},
        }
        if user_id is not None:
            payload["userId"] = user_id
            properties["userId"] = user_id
        payload["properties"] = properties
        return InboundEvent(payload["messageId"], "track", at, self.environment, email, payload)

    def row_events(self, row: dict, email: str, user_id: str | None) -> list[InboundEvent]:
        """`Email Sent` for every row (bounced ones too), then one event per flag set."""
        sent_at = parse_time(row.get("sendDate"))
        found = []
        if sent_at is not None:
            found.append(self.track(SENT, email, sent_at, user_id))
        activity_at = parse_time(row.get("activityDate")) or sent_at
        if activity_at is None:
            return found
        for flag, event in FLAG_EVENTS:
            if row.get(flag) is True:
                extra = {"bounce_reason": row.get("bounceReason")} if flag == "bounce" else {}
                found.append(self.track(event, email, activity_at, user_id, **extra))
        return found

    def click_event(self, clicker: dict, email: str, url: str, user_id: str | None) -> InboundEvent | None:
        clicked_at = parse_time(clicker.get("clickDate"))
        if clicked_at is None:
            return None
        return self.track(CLICKED, email, clicked_at, user_id, link=url)


def list_trait(list_id: int) -> str:
    return f"Listrak_list_{list_id}"


def identify(
    list_id: int, email: str, user_id: str | None, at: datetime, environment: str, in_list: bool = True
) -> InboundEvent:
    """One per contact and list; its messageId changes only when the userId does. Without
    `in_list` (membership followed apart) it carries the email alone, never the list trait."""
    payload: dict[str, Any] = {
        "type": "identify",
        "messageId": message_id(list_id, email, "identify", user_id),
        "timestamp": iso(at),
        "anonymousId": email,
    }
    if user_id is not None:
        payload["userId"] = user_id
    payload["traits"] = {"email": email, list_trait(list_id): True} if in_list else {"email": email}
    return InboundEvent(payload["messageId"], "identify", at, environment, email, payload)


def membership_change(
    list_id: int,
    email: str,
    subscribed: bool,
    user_id: str | None,
    at: datetime | None,
    read_at: datetime,
    environment: str,
) -> InboundEvent:
    """The identify of one subscribe or unsubscribe, stamped with its date (`at`; a contact
    Listrak gives no date for is stamped `read_at`, its messageId dated none)."""
    state = "Subscribed" if subscribed else "Unsubscribed"
    stamp = None if at is None else iso(at)
    payload: dict[str, Any] = {
        "type": "identify",
        "messageId": message_id(list_id, email, state, stamp),
        "timestamp": stamp or iso(read_at),
        "anonymousId": email,
    }
    if user_id is not None:
        payload["userId"] = user_id
    payload["traits"] = {"email": email, list_trait(list_id): subscribed}
    return InboundEvent(payload["messageId"], MEMBERSHIP, at or read_at, environment, email, payload)
