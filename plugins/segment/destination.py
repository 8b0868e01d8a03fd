"""Segment's HTTP tracking API as a destination: Segment spec messages forwarded as they are to
`POST {api_url}/v1/batch`, authenticated with a SEGMENT_WRITE_KEY key (HTTP Basic, the write key
as user name). Requests stay within Segment's limits: 500 KB and 2,500 events per batch (1,000
here), 32 KB per event; a bigger event is dead, never sent, and the rest of its batch goes on.

Events are facts and go unordered, except state changes (events of type `membership`: an
identify setting a trait that a later one may set back, such as a list's `true` then `false`),
which are ordered per contact and trait like consent: an older one still queued never goes out
after a newer one."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from connector.plugin_api import (
    CODE_KEYS,
    MAX_CODE,
    MAX_MESSAGE,
    MESSAGE_KEYS,
    Action,
    Configuration,
    CredentialsFor,
    Destination,
    Http,
    InboundEvent,
    InvalidCredentials,
    OutboundRequest,
    OutboundUrl,
    Partner,
    PartnerConfigSchema,
    PlannedDelivery,
    body_bytes,
    cut,
    readable,
)
from plugins.segment.keys import SegmentWriteKeyAlgorithm
from plugins.segment.source import EVENT_TYPES

#: Segment's own libraries drop messages over 32 << 10 bytes; the API answers 400 to them.
MAX_EVENT_BYTES = 32 << 10
#: "500 KB" per batch request, read as the smaller 500,000 bytes (the whole body, sentAt included).
MAX_REQUEST_BYTES = 500_000
#: Segment takes at most 2,500 events in one batch (more are dropped, with a 200).
MAX_EVENTS = 2500
#: Events per request here: fewer than Segment's 2,500 because the worker claims up to
#: threads × 2 × max_batch rows in one round (one bound parameter each; PostgreSQL takes at
#: most 65,535), and 1,000 activity events (~330 bytes each) already fill two thirds of 500 KB.
EVENTS_PER_REQUEST = 1000
SEPARATOR_BYTES = len(",")  # between two events in the body as sent (compact JSON)
#: Event types whose identify sets a state that a later one may reverse: ordered per contact.
STATE_CHANGES = frozenset({"membership"})
#: contact_key's column holds 600 characters.
MAX_CONTACT_KEY = 600


def sent_at() -> str:
    """Now, as Segment's libraries stamp `sentAt`: it lets Segment correct clock skew."""
    moment = datetime.fromtimestamp(time.time(), UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


EMPTY_REQUEST_BYTES = body_bytes({"batch": [], "sentAt": "2026-11-22T05:44:22.123Z"})


class SegmentPartnerSchema(PartnerConfigSchema):
    api_url = OutboundUrl(required=True)  # requests go to {api_url}/v1/batch


class TrackBatch(Action):
    """`{"batch": [...], "sentAt": ...}`: one request per group of events within the limits."""

    name = "track_batch"
    max_batch = EVENTS_PER_REQUEST

    def refuse(self, partner: Partner, spec: dict) -> str | None:
        size = body_bytes(spec)
        if size > MAX_EVENT_BYTES:
            return f"event is {size} bytes, over Segment's 32 KB limit"
        return None

    def batches(self, partner: Partner, specs: list[dict]) -> list[list[int]]:
        """In order, as many events per request as fit 500 KB and `max_batch`. An event over
        32 KB takes no room: it is refused, never sent."""
        groups: list[list[int]] = []
        current: list[int] = []
        size, sent = EMPTY_REQUEST_BYTES, 0
        for index, spec in enumerate(specs):
            own = body_bytes(spec)
            refused = own > MAX_EVENT_BYTES
            grown = size + (SEPARATOR_BYTES if sent else 0) + own
            if current and (len(current) >= self.max_batch or (not refused and grown > MAX_REQUEST_BYTES)):
                groups.append(current)
                current, size, sent = [], EMPTY_REQUEST_BYTES, 0
                grown = size + own
            current.append(index)
            if not refused:
                size, sent = grown, sent + 1
        if current:
            groups.append(current)
        return groups

    def build_request(self, partner: Partner, specs: list[dict]) -> OutboundRequest:
        return OutboundRequest(
            "POST",
            f"{partner.settings['api_url']}/v1/batch",
            json={"batch": specs, "sentAt": sent_at()},
            headers={"Content-Type": "application/json"},
        )

    def interpret(self, partner, specs, result):
        if result.status in (401, 403):
            # The real API takes any write key; a refusal means the key itself, so the
            # deliveries wait (paused) as for a refused OAuth key, instead of going dead.
            raise InvalidCredentials(f"the tracking API refused the write key ({answer(result)})")
        return None  # 2xx delivered; 429/5xx retrying (Retry-After); 400 dead

    def part_of_request(self, partner: Partner, spec: dict):
        return spec


def error_details(result) -> tuple[str | None, str | None]:
    """Segment answers errors with `{"code": ..., "message": ...}`; fields of another shape
    are read as text, and an answer that is not JSON (a proxy's page) is its own message."""
    if not result.status or result.status < 400:
        return None, None
    body = result.body
    if isinstance(body, dict):
        code, message = readable(body.get("code"), CODE_KEYS), readable(body.get("message"), MESSAGE_KEYS)
    else:
        code, message = None, readable(body.strip() if isinstance(body, str) else body, MESSAGE_KEYS)
    return code, message


def answer(result) -> str:
    """An answer in one phrase: `HTTP 400 invalid_request: <message>`, or why there was none."""
    if result.status is None:
        return result.error or "no response"
    code, message = error_details(result)
    code, message = code and cut(code, MAX_CODE), message and cut(message, MAX_MESSAGE)
    return " ".join(p for p in (f"HTTP {result.status}", code and f"{code}:", message) if p).rstrip(":")


def is_spec_message(payload: dict) -> bool:
    return payload.get("type") in EVENT_TYPES and isinstance(payload.get("messageId"), str)


def state_key(partner_id: str, event: InboundEvent) -> str | None:
    """The contact_key that orders a state change: partner, environment, the contact (its
    anonymousId) and the traits it sets; None for facts."""
    if event.type not in STATE_CHANGES:
        return None
    traits = event.payload.get("traits")
    names = sorted(k for k in traits if k != "email") if isinstance(traits, dict) else []
    contact = event.payload.get("anonymousId") or event.payload.get("userId") or event.email
    key = "|".join([partner_id, event.environment, str(contact), ",".join(names)])
    if len(key) > MAX_CONTACT_KEY:
        key = f"{partner_id}|{event.environment}|sha1:{hashlib.sha1(key.encode()).hexdigest()}"
    return key


class SegmentDestination(Destination):
    name = "segment"
    config_schema = SegmentPartnerSchema

    def __init__(self):
        self.actions = {TrackBatch.name: TrackBatch()}

    def plan(self, event: InboundEvent, partner: Partner) -> list[PlannedDelivery]:
        """One delivery per event, its payload as it is; facts unordered, state changes
        ordered per contact (`state_key`)."""
        key_id = partner.key_for(event.environment)
        skip = None
        if not is_spec_message(event.payload):
            skip = f"not a Segment spec message (needs a messageId and a type: {', '.join(EVENT_TYPES)})"
        elif key_id is None:
            skip = f"{event.environment} event and no {event.environment} key is configured"
        return [
            PlannedDelivery(
                action=TrackBatch.name,
                spec=event.payload,
                partner_key_id=key_id,
                contact_key=state_key(partner.id, event),
                batch_key=f"{partner.id}|{event.environment}",
                skip_reason=skip,
            )
        ]

    def error_details(self, result):
        return error_details(result)

    def check(self, partner: Partner, config: Configuration) -> list[str]:
        problems = []
        for environment, key_id in partner.keys.configured().items():
            key = config.keys.get(key_id) if key_id else None
            if key is not None and key["algorithm"] != SegmentWriteKeyAlgorithm.name:
                problems.append(
                    f"keys.{environment}: key {key_id!r} is {key['algorithm']}; "
                    f"the tracking API takes a {SegmentWriteKeyAlgorithm.name} key"
                )
        return problems

    def verify(self, partner: Partner, http: Http, credentials: CredentialsFor) -> list[tuple[bool, str]]:
        """An empty batch per write key, which creates no data. What it proves is limited and
        the lines say so: Segment's API answers 200 to write keys it does not know (it checks
        them later, out of band) and 400 to an empty or malformed one; only a look-alike or a
        proxy in front of it answers 401 for an unknown key."""
        url = f"{partner.settings['api_url']}/v1/batch"
        checks = []
        for environment, key_id in partner.keys.configured().items():
            if not key_id:
                continue
            label = f"write key {key_id} ({environment})"
            request = OutboundRequest(
                "POST", url, json={"batch": []}, headers={"Content-Type": "application/json"}
            )
            result = http.send(request, credentials(key_id))
            if result.ok:
                line = (
                    f"{label}: an empty batch to {url} was accepted (HTTP {result.status}): the API is "
                    "reachable and takes the request; Segment accepts unknown write keys here, so "
                    "this does not prove the key belongs to a source"
                )
            elif result.status in (401, 403):
                line = f"{label}: refused by {url}: {answer(result)}"
            else:
                line = f"{label}: an empty batch to {url} failed: {answer(result)}"
            checks.append((result.ok, line))
        return checks
