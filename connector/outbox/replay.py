"""Replay: finished deliveries queued again, through the consent rule: one older than a live
change for its contact becomes superseded instead."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, select, update

from connector.contract import FINISHED, State
from connector.outbox import consent, contacts
from connector.outbox.consent import Change
from connector.outbox.engine import now
from connector.outbox.storing import stored_event
from connector.outbox.tables import deliveries, events


def replay(
    engine,
    delivery_ids=None,
    dead: bool = False,
    partner: str | None = None,
    since: float | None = None,
    runtime=None,
) -> dict[str, int]:
    """Queue matching finished deliveries again. Explicit ids may be any finished state;
    otherwise `dead=True` selects dead ones (and skipped ones are never picked implicitly).
    With a runtime, a delivery skipped at intake (e.g. no staging key then) is planned anew
    with the current config. Returns counts: queued, superseded, unchanged."""
    counts = {"queued": 0, "superseded": 0, "unchanged": 0}
    at = now()
    updates: dict[Any, list[dict[str, Any]]] = {}  # each row's UPDATE, by statement (`_apply`)
    with engine.begin() as conn:
        rows = list(conn.execute(_finished(delivery_ids, dead, partner, since)))
        for row in rows:
            values: dict[str, Any] = {"delivery_id": row.id, "at": at}
            replanned = None
            if row.state == State.SKIPPED and row.attempts == 0 and runtime is not None:
                replanned = _replan(conn, runtime, row)
                if replanned is None or replanned.skip_reason:
                    counts["unchanged"] += 1
                    continue
                values.update(partner_key_id=replanned.partner_key_id, spec=json.dumps(replanned.spec))
            change = Change(row.id, row.contact_key, row.event_time, row.state)
            decision = consent.Decision(goes=change)
            if row.contact_key:
                # The rule reads the contact as this replay has left it so far: an earlier row
                # of the same contact, queued again, is a live change now.
                _apply(conn, updates)
                stored = contacts.live_changes(conn, [row.contact_key]).get(row.contact_key, [])
                decision = consent.decide(stored, [change], at)
            if decision.goes is None:
                (refused,) = decision.superseded
                values.update(winner=refused.by, reason=f"replay refused: {refused.reason}")
                statement = _REFUSE if replanned is None else _REFUSE_REPLANNED
                counts["superseded"] += 1
            else:
                if row.contact_key:
                    contacts.supersede(conn, list(decision.superseded), at)
                    contacts.remember(conn, [change], at)
                statement = _REQUEUE if replanned is None else _REQUEUE_REPLANNED
                counts["queued"] += 1
            updates.setdefault(statement, []).append(values)
        _apply(conn, updates)
    return counts


def _apply(conn, updates: dict[Any, list[dict[str, Any]]]) -> None:
    """Run the UPDATEs gathered so far, one executemany per statement (each row is updated
    once, so their order does not matter). `replay` runs them before it reads a contact, so
    the rule sees every row replayed before; nothing else it reads (events) depends on them."""
    for statement, rows in updates.items():
        conn.execute(statement, rows)
    updates.clear()


def _replan(conn, runtime, row):
    partner = runtime.config.partners.get(row.partner_id)
    event_row = conn.execute(_EVENT, {"event_pk": row.event_pk}).first()
    if partner is None or event_row is None:
        return None
    event = stored_event(event_row)
    for planned in runtime.destination(partner).plan(event, partner):
        if planned.action == row.action:
            return planned
    return None


# -- the statements, each named once ----------------------------------------------------------
def _finished(delivery_ids, dead: bool, partner: str | None, since: float | None):
    """The finished deliveries a replay picks, in event order: the ones of `delivery_ids`
    (any finished state), else with `dead` the dead ones (else none); then only `partner`'s,
    and only those updated `since`."""
    conditions: list[ColumnElement[bool]] = []
    if delivery_ids:
        conditions.append(deliveries.c.id.in_(list(delivery_ids)))
        conditions.append(deliveries.c.state.in_(FINISHED))
    else:
        conditions.append(deliveries.c.state == State.DEAD if dead else deliveries.c.state.in_(()))
    if partner:
        conditions.append(deliveries.c.partner_id == partner)
    if since is not None:
        conditions.append(deliveries.c.updated_at >= since)
    return select(deliveries).where(and_(*conditions)).order_by(deliveries.c.event_time, deliveries.c.id)


_EVENT = select(events).where(events.c.id == bindparam("event_pk"))
#: Queued again as new: no attempts, due now, no lease.
_REQUEUE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("delivery_id"))
    .values(
        state=State.QUEUED,
        superseded_by=None,
        reason="replayed",
        attempts=0,
        next_attempt_at=bindparam("at"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("at"),
    )
)
#: Refused by the consent rule: superseded by the newer change `winner`.
_REFUSE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("delivery_id"))
    .values(
        state=State.SUPERSEDED,
        superseded_by=bindparam("winner"),
        reason=bindparam("reason"),
        updated_at=bindparam("at"),
    )
)
#: A delivery skipped at intake and planned anew keeps its new key and spec either way.
_REPLANNED: dict[str, Any] = {"partner_key_id": bindparam("partner_key_id"), "spec": bindparam("spec")}
_REQUEUE_REPLANNED = _REQUEUE.values(_REPLANNED)
_REFUSE_REPLANNED = _REFUSE.values(_REPLANNED)
