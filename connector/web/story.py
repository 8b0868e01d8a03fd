"""One person's consent story, behind the Live View's contact page and
`GET /admin/api/contacts/<address>`: it answers "why is this person (un)subscribed?".

For an email address or a phone number: every consent event that carries it (from any source,
for any channel), in event-time order, each change it asked of a partner with its outcome in
words (delivered; superseded, and by which newer event; skipped, and why; dead; still pending);
per contact (partner, environment, place), the connector's last word (its consent mark: the
newest change it ever queued there, which outlives purges); and what each partner holds now,
read live, on demand, through the destinations' `read_contact` (the core never names one).
Nothing here writes to the store.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from sqlalchemy import select

from connector.contract import ContactAddress, ContactState, State
from connector.fields import has_control_characters, phone_digits, valid_email
from connector.outbox.engine import reading
from connector.outbox.tables import consent_marks, deliveries, events
from connector.web.readmodel import event_fields, iso

#: The newest events a story shows (older ones are left out, and the story says so).
MAX_EVENTS = 500
_PAGE = 500
#: Live reads of all partners together may take this long at most (a web request waits).
MAX_LIVE_SECONDS = 20.0
#: How many of the person's other addresses (in the story's events) are read live too.
MAX_RELATED_READS = 3


class AddressError(ValueError):
    """Not an email address nor a phone number; the message says what is wanted."""


def parse_address(text: str) -> ContactAddress:
    """An email address (normalised) or a phone number (its digits with the country code)."""
    text = text.strip()
    if not text or len(text) > 320 or has_control_characters(text):
        raise AddressError("address: an email address, or a phone number with its country code")
    if "@" in text:
        email = valid_email(text)
        if email is None:
            raise AddressError("address: not a valid email address")
        return ContactAddress("email", email)
    phone = phone_digits(text)
    if phone is None:
        raise AddressError(
            "address: neither an email address nor a phone number (one of 8–15 digits with its "
            "country code, e.g. +1 555 555 5555)"
        )
    return ContactAddress("phone", phone)


# -- reading the store ---------------------------------------------------------------------------


class _Actions:
    """What each delivery's action says about itself: whether it is consent, and its place
    and change in words (from the partner's plugin, even for a partner configured no more)."""

    def __init__(self, runtime):
        self.runtime = runtime

    def action(self, partner_id: str, name: str):
        partner = self.runtime.config.partners.get(partner_id)
        if partner is not None:
            return self.runtime.destination(partner).actions.get(name)
        for destination in self.runtime.registry.destinations.values():
            if name in destination.actions:
                return destination.actions[name]
        return None

    def consent(self, row) -> bool:
        action = self.action(row.partner_id, row.action)
        return action is not None and action.consent

    def described(self, row) -> tuple[str, str]:
        action = self.action(row.partner_id, row.action)
        try:
            found = action.describe(json.loads(row.spec)) if action is not None else None
        except (KeyError, TypeError, ValueError):  # a spec from an older version of the plugin
            found = None
        return found or (row.action, row.action)


def _explained(row, winner: dict | None) -> str:
    """A delivery's outcome in an operator's words."""
    reason = row.reason or ""
    if row.state == State.DELIVERED:
        said = f"delivered{f' (HTTP {row.last_status})' if row.last_status else ''} at {iso(row.updated_at)}"
        return f"{said}: {reason}" if reason and reason != "replayed" else said
    if row.state == State.SUPERSEDED:
        if winner is not None:
            event = winner["event"]
            return (
                f"superseded by event {event['event_id']} ({event['type']} at {event['event_time']}), "
                "which is newer: not sent"
            )
        return f"superseded: {reason or 'a newer event for this contact'}: not sent"
    if row.state == State.SKIPPED:
        return f"skipped: {reason}: not sent"
    if row.state == State.DEAD:
        code = f", {row.last_error_code}" if row.last_error_code else ""
        status = f" (HTTP {row.last_status}{code})" if row.last_status else ""
        return f"dead after {row.attempts} attempt(s){status}: {reason}; replayable"
    if row.state in (State.RETRYING, State.PAUSED):
        return f"{row.state}: {reason}; next attempt at {iso(row.next_attempt_at)}"
    return "queued: not sent yet"


def _read_store(engine, address: ContactAddress, actions: _Actions) -> dict:
    column = events.c.email if address.kind == "email" else events.c.phone
    with reading(engine) as conn:
        found = list(
            conn.execute(
                select(events)
                .where(column == address.value)
                .order_by(events.c.event_time.desc(), events.c.id.desc())
                .limit(MAX_EVENTS + 1)
            )
        )
        truncated = len(found) > MAX_EVENTS
        found = found[:MAX_EVENTS][::-1]
        by_event: dict[int, list] = {row.id: [] for row in found}
        ids = list(by_event)
        for start in range(0, len(ids), _PAGE):
            query = select(deliveries).where(deliveries.c.event_pk.in_(ids[start : start + _PAGE]))
            for row in conn.execute(query.order_by(deliveries.c.id)):
                if actions.consent(row):
                    by_event[row.event_pk].append(row)
        keys = sorted({d.contact_key for rows in by_event.values() for d in rows if d.contact_key})
        marks: dict[str, Any] = {}
        for start in range(0, len(keys), _PAGE):
            page = keys[start : start + _PAGE]
            marks |= {
                m.contact_key: m
                for m in conn.execute(select(consent_marks).where(consent_marks.c.contact_key.in_(page)))
            }
        named = {d.superseded_by for rows in by_event.values() for d in rows if d.superseded_by}
        named |= {m.delivery_id for m in marks.values()}
        others = _deliveries_with_events(conn, named)
    return {"events": found, "by_event": by_event, "marks": marks, "others": others, "truncated": truncated}


def _deliveries_with_events(conn, ids) -> dict[int, dict]:
    """{delivery id: {"delivery": row, "event": event dict}} for the ids still stored."""
    ids = sorted(ids)
    rows = []
    for start in range(0, len(ids), _PAGE):
        rows += conn.execute(select(deliveries).where(deliveries.c.id.in_(ids[start : start + _PAGE]))).all()
    pks = sorted({row.event_pk for row in rows})
    found_events = {}
    for start in range(0, len(pks), _PAGE):
        for event in conn.execute(select(events).where(events.c.id.in_(pks[start : start + _PAGE]))):
            found_events[event.id] = event_fields(event)
    return {
        row.id: {"delivery": row, "event": found_events[row.event_pk]}
        for row in rows
        if row.event_pk in found_events
    }


# -- the story -----------------------------------------------------------------------------------
def story(runtime, address: ContactAddress, live: bool = True) -> dict:
    actions = _Actions(runtime)
    stored = _read_store(runtime.engine, address, actions)
    others, marks = stored["others"], stored["marks"]
    places: dict[str, dict] = {}  # contact key → its place, filled as deliveries name them
    told = []
    for row in stored["events"]:
        changes = []
        for d in stored["by_event"][row.id]:
            place, change = actions.described(d)
            places.setdefault(
                d.contact_key or f"delivery:{d.id}",
                {"partner": d.partner_id, "environment": d.environment, "place": place},
            )
            winner = others.get(d.superseded_by) if d.state == State.SUPERSEDED and d.superseded_by else None
            changes.append(
                {
                    "delivery": d.id,
                    "partner": d.partner_id,
                    "environment": d.environment,
                    "place": place,
                    "change": change,
                    "contact_key": d.contact_key,
                    "outcome": d.state,
                    "reason": d.reason,
                    "attempts": d.attempts,
                    "last_status": d.last_status,
                    "superseded_by": _winner(winner) if winner else None,
                    "explanation": _explained(d, winner),
                    "updated_at": iso(d.updated_at),
                }
            )
        if changes:
            told.append(event_fields(row) | {"changes": changes})
    related = _related(address, told)
    # The person's other addresses in these events are read too (a few): their events are in
    # this story, so is where they stand.
    also = [ContactAddress(r["kind"], r["value"]) for r in related[:MAX_RELATED_READS]]
    now = _read_live(runtime, [address, *also]) if live else None
    contacts = _contacts(places, marks, others, now or [], actions)
    return {
        "address": {"kind": address.kind, "value": address.value},
        "events": told,
        "truncated": stored["truncated"],
        "contacts": contacts,
        "partner_state": now,
        "related": related,
    }


def _winner(found: dict) -> dict:
    return {"delivery": found["delivery"].id, "event": found["event"]}


def _contacts(places: dict, marks: dict, others: dict, now: list[dict], actions: _Actions) -> list[dict]:
    """Per contact the story touches: the connector's last word there (its consent mark) and
    what the partner holds now, matched by contact key."""
    held = {item["contact_key"]: item for item in now if item.get("contact_key")}
    out = []
    for key, where in sorted(places.items(), key=lambda item: (item[1]["partner"], item[1]["place"])):
        mark = marks.get(key)
        last = None
        if mark is not None:
            found = others.get(mark.delivery_id)
            last = {"event_time": iso(mark.event_time), "delivery": mark.delivery_id, "event": None}
            if found is not None:
                delivery = found["delivery"]
                last |= {
                    "event": found["event"],
                    "change": actions.described(delivery)[1],
                    "outcome": delivery.state,
                }
        now_there = held.get(key)
        verdict = _verdict(last, now_there, read=bool(now))
        out.append(
            where | {"contact_key": key, "last_word": last, "partner_now": now_there, "verdict": verdict}
        )
    return out


PENDING_WORDS = {State.QUEUED: "queued", State.RETRYING: "being retried", State.PAUSED: "paused"}


def _verdict(last: dict | None, now: dict | None, read: bool) -> str:
    """Why the person stands where they stand at this contact, in a sentence or two."""
    if last is None:
        return "The connector never sent a change here (every event was skipped)."
    if last["event"] is None:
        said = f"The connector's last word here came from an event at {last['event_time']}, purged since."
    else:
        event = last["event"]
        said = (
            f"The connector last asked to {last['change']} "
            f"({event['type']} {event['event_id']} at {event['event_time']})"
        )
        outcome = last["outcome"]
        if outcome in PENDING_WORDS:
            return f"{said}; that change is {PENDING_WORDS[outcome]}, not in the partner yet."
        if outcome == State.DEAD:
            return (
                f"{said}; that change failed (dead) and never reached the partner: replay it from its event."
            )
        if outcome != State.DELIVERED:
            return f"{said}; that change is {outcome}."
        said += ", delivered."
    if not read:
        return said
    if now is None:
        return f"{said} The partner was not read for this place."
    if now["error"]:
        return f"{said} The partner could not be read: {now['error']}."
    wanted = {"subscribe": True, "unsubscribe": False}.get(last.get("change") or "")
    if now.get("subscribed") is None or wanted is None:
        return f"{said} The partner shows {now['state']}."
    if now["subscribed"] == wanted:
        return f"{said} The partner agrees: {now['state']}."
    return (
        f"{said} The partner differs: it shows {now['state']}, so it changed there afterwards (a "
        "STOP reply, an unsubscribe link, an edit in the partner's own tools or another integration)."
    )


def _related(address: ContactAddress, told: list[dict]) -> list[dict]:
    """The person's other addresses in these events (a story of their own)."""
    other = "phone" if address.kind == "email" else "email"
    values = sorted({event[other] for event in told if event.get(other)})
    return [{"kind": other, "value": value} for value in values[:10]]


def _read_live(runtime, addresses: list[ContactAddress]) -> list[dict]:
    """Each enabled partner's `read_contact` of each address, side by side, within
    MAX_LIVE_SECONDS (a read that takes longer is reported, not waited for)."""
    asks = [(p, a) for a in addresses for p in runtime.config.partners.values() if p.enabled]
    if not asks:
        return []
    deadline = min(MAX_LIVE_SECONDS, 3 * runtime.http.timeout)
    pool = ThreadPoolExecutor(max_workers=min(8, len(asks)), thread_name_prefix="story")
    try:
        futures = {
            pool.submit(
                runtime.destination(partner).read_contact, partner, address, runtime.http, runtime.credentials
            ): (partner, address)
            for partner, address in asks
        }
        wait(futures, timeout=deadline)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    out = []
    for future, (partner, address) in futures.items():
        if future.cancelled() or not future.done():
            states = [ContactState(partner.id, None, None, error=f"no answer within {deadline:.0f} s")]
        elif future.exception() is not None:
            exc = future.exception()
            states = [ContactState(partner.id, None, None, error=f"{type(exc).__name__}: {exc}")]
        else:
            states = future.result()
        out += [_state_dict(partner.id, address, state, runtime.redactor) for state in states]
    return out


def _state_dict(partner_id: str, address: ContactAddress, state: ContactState, redactor) -> dict:
    def clean(value):
        return redactor.text(value) if isinstance(value, str) else value

    return {
        "partner": partner_id,
        "address": address.value,
        "place": state.place,
        "contact_key": state.contact_key,
        "state": state.state,
        "facts": {str(k): clean(v) for k, v in state.facts.items()},
        "error": clean(state.error),
        "request": clean(state.request),
        "subscribed": state.subscribed,
    }
