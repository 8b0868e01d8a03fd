"""Storing events with their deliveries, for intake's two ways in (a worker planning what
webhooks accepted, a pull source's page): the rows, built before the write transaction, and
their insert with the consent rule applied to what arrives (`consent.py`): a new delivery older
than a live one for its contact (or than its mark) is `superseded` at once; older pending ones
for that contact lose to it, and the one left queued becomes the contact's mark.

A pull source's worker may take the facts it stores at once (`Lease`): they are stored leased
to it and handed to its delivery loop, never claimed (a page is a burst of its own; claiming
them back cost a read, a decode and an update per delivery)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, update

from connector.contract import Delivery, InboundEvent, PlannedDelivery, State
from connector.fields import has_control_characters
from connector.outbox import attempts, consent, contacts, postgresql
from connector.outbox.consent import Change, Superseded
from connector.outbox.engine import dumps
from connector.outbox.statements import insert_new_rows, insert_rows
from connector.outbox.tables import deliveries, events


@dataclass(frozen=True)
class Lease:
    """Deliveries a worker takes as it stores them: queued facts (no contact key: no consent
    order) that `takes(partner_id, planned)` accepts, leased to `owner` for `seconds`."""

    owner: str
    seconds: float
    takes: Callable[[str, PlannedDelivery], bool]


def event_row(source_id: str, event: InboundEvent, received_at: float, payload: str | None = None) -> dict:
    """An event's row; `payload` is its payload as stored already (an accepted event's)."""
    # An address holding a control character is no one's (and PostgreSQL cannot store U+0000
    # in a text column): the event is stored without one; its payload keeps what was sent.
    email = event.email if event.email and not has_control_characters(event.email) else None
    return {
        "source_id": source_id,
        "event_id": event.event_id,
        "type": event.type,
        "environment": event.environment,
        "email": email,
        "event_time": event.event_time.timestamp(),
        "received_at": received_at,
        "payload": dumps(event.payload) if payload is None else payload,
        "warnings": dumps(event.warnings) if event.warnings else None,
        "phone": event.phone,
    }


def stored_event(row) -> InboundEvent:
    """The event a row of `events` or a waiting row of `seen_events` holds (`event_row`'s
    columns), as a source gave it."""
    return InboundEvent(
        row.event_id,
        row.type,
        datetime.fromtimestamp(row.event_time, UTC),
        row.environment,
        row.email,
        json.loads(row.payload),
        tuple(json.loads(row.warnings)) if row.warnings else (),
        row.phone,
    )


def rows(
    items: Sequence[tuple[str, InboundEvent, list, float, str | None]],
    at: float,
    due_delay: dict,
    lease: Lease | None = None,
) -> list[tuple[dict, list[dict], list]]:
    """(event row, its delivery rows without their event's id, the specs of those `lease`
    takes (else None)) for each of [(source_id, event, planned, received_at, payload as
    stored already or None)]."""
    prepared = []
    for source_id, event, planned, received_at, payload in items:
        event_row_ = event_row(source_id, event, received_at, payload)
        delivery_rows, taken = [], []
        for partner_id, plan in planned:
            queued = not plan.skip_reason
            took = lease is not None and queued and not plan.contact_key and lease.takes(partner_id, plan)
            held = lease if took else None
            if not queued:
                due_at = None
            elif held:  # due again when its lease ends (should its worker die): claims pass it by
                due_at = at + held.seconds
            else:  # when planned, or at the end of its action's gathering window (batching)
                delay = due_delay.get(plan.action, 0.0)
                due_at = received_at + delay if delay else at
            delivery_rows.append(
                {
                    "partner_id": partner_id,
                    "action": plan.action,
                    "environment": event.environment,
                    "partner_key_id": plan.partner_key_id,
                    "contact_key": plan.contact_key,
                    "batch_key": plan.batch_key,
                    "event_time": event_row_["event_time"],
                    # A spec that is the event's payload (forwarded as it is) is written once.
                    "spec": event_row_["payload"] if plan.spec is event.payload else dumps(plan.spec),
                    "state": State.QUEUED if queued else State.SKIPPED,
                    "reason": plan.skip_reason,
                    "attempts": 0,
                    "next_attempt_at": due_at,
                    "lease_owner": held.owner if held else None,
                    "lease_expires_at": at + held.seconds if held else None,
                    "created_at": at,
                    "updated_at": at,
                    "superseded_by": None,
                }
            )
            taken.append(plan.spec if took else None)
        prepared.append((event_row_, delivery_rows, taken))
    return prepared


def store(
    conn,
    prepared: list[tuple[dict, list[dict], list]],
    at: float,
    remembered: Callable[[object, list[str]], set[str]] | None = None,
) -> tuple[int, list[Delivery]]:
    """Store events with their deliveries (`rows`) unless an event is stored already, or its
    id is among those `remembered(conn, event ids)` finds (a purged event's); how many were
    stored, and the deliveries stored leased to the worker that takes them."""
    pks = {
        (source, event_id): pk
        for pk, source, event_id in insert_new_rows(
            conn,
            events,
            [event_row_ for event_row_, _, _ in prepared],
            ("source_id", "event_id"),
            [events.c.id, events.c.source_id, events.c.event_id],
        )
    }
    if remembered is not None and pks:
        # Read after the insert: on PostgreSQL a purge committing between a read before it
        # and the insert (its id remembered, its event deleted) would let a repeat through.
        again = remembered(conn, [event_id for _, event_id in pks])
        repeats = [pks.pop(key) for key in list(pks) if key[1] in again]
        if repeats:
            conn.execute(_NOT_STORED_AFTER_ALL, [{"pk": pk} for pk in repeats])
    delivery_rows, taken = [], []
    for event_row_, planned, specs in prepared:
        pk = pks.get((event_row_["source_id"], event_row_["event_id"]))
        if pk is not None:
            for row in planned:
                row["event_pk"] = pk
            delivery_rows += planned
            taken += specs
    if not delivery_rows:
        return len(pks), []
    lost, beaten_by_arrival = _apply_consent_order(conn, delivery_rows, at)
    attempts.record_decided(  # skipped or superseded on arrival: charted like any outcome
        conn, at, [(row["partner_id"], row["state"]) for row in delivery_rows if row["state"] != State.QUEUED]
    )
    changes = [
        i for i, row in enumerate(delivery_rows) if row["contact_key"] and row["state"] == State.QUEUED
    ]
    leased = [i for i, spec in enumerate(taken) if spec is not None]
    ids = insert_rows(
        conn, deliveries, delivery_rows, ids=bool(changes or leased or lost or beaten_by_arrival)
    )
    # Only now do the winners among the arriving rows have ids to be named by.
    for winner, losers in lost.items():
        contacts.supersede(conn, [Superseded(loser.id, ids[winner], loser.reason) for loser in losers], at)
    if beaten_by_arrival:
        conn.execute(
            _NAME_WINNER,
            [{"loser": ids[loser], "winner": ids[winner]} for loser, winner in beaten_by_arrival.items()],
        )
    contacts.remember(
        conn,
        [
            Change(ids[i], delivery_rows[i]["contact_key"], delivery_rows[i]["event_time"], State.QUEUED)
            for i in changes
        ],
        at,
    )
    return len(pks), [_leased(ids[i], delivery_rows[i], taken[i]) for i in leased]


def _leased(id: int, row: dict, spec) -> Delivery:
    return Delivery(
        id,
        row["event_pk"],
        row["partner_id"],
        row["action"],
        row["environment"],
        row["partner_key_id"],
        row["contact_key"],
        row["batch_key"],
        row["event_time"],
        spec,
        0,
        State.QUEUED,
        leased_until=row["lease_expires_at"],
    )


#: Deliveries of this request get stamps after every stored id, in arrival order.
_ARRIVING = 2**62


def _apply_consent_order(
    conn, rows: list[dict], at: float
) -> tuple[dict[int, list[Superseded]], dict[int, int]]:
    """The consent rule (`consent.decide`) on a request's new deliveries, per contact: the
    rows it supersedes are marked so; what waits for the rows' ids is returned: the stored
    pending deliveries each arriving row beats ({row index: [losers]}), and the rows beaten by
    another arriving row ({row index: winner's row index})."""
    arriving = [
        Change(_ARRIVING + i, r["contact_key"], r["event_time"], State.QUEUED)
        for i, r in enumerate(rows)
        if r["contact_key"] and r["state"] == State.QUEUED
    ]
    lost: dict[int, list[Superseded]] = {}
    beaten_by_arrival: dict[int, int] = {}
    if not arriving:
        return lost, beaten_by_arrival
    keys = {c.contact_key for c in arriving}
    postgresql.indexes_only(conn)
    postgresql.lock_contacts(conn, keys)
    stored = contacts.live_changes(conn, keys)
    by_contact: dict[str, list[Change]] = {}
    for change in arriving:
        by_contact.setdefault(change.contact_key, []).append(change)
    for key, changes in by_contact.items():
        for loser in consent.decide(stored.get(key, []), changes, at).superseded:
            if loser.id < _ARRIVING:  # a stored pending delivery, beaten by the row that goes
                lost.setdefault(loser.by - _ARRIVING, []).append(loser)
                continue
            row = rows[loser.id - _ARRIVING]
            row.update(state=State.SUPERSEDED, next_attempt_at=None, reason=str(loser.reason))
            if loser.by >= _ARRIVING:
                beaten_by_arrival[loser.id - _ARRIVING] = loser.by - _ARRIVING
            else:
                row["superseded_by"] = loser.by
    return lost, beaten_by_arrival


_NOT_STORED_AFTER_ALL = delete(events).where(events.c.id == bindparam("pk"))
_NAME_WINNER = (
    update(deliveries).where(deliveries.c.id == bindparam("loser")).values(superseded_by=bindparam("winner"))
)
