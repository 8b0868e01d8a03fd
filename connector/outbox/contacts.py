"""A contact's changes in the store, for the consent rule (`consent.py`): what it reads (each
contact's live changes and its mark) and what applying its decision writes (superseded
deliveries, new marks)."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, or_, select, update

from connector.contract import PENDING, State
from connector.outbox import attempts
from connector.outbox.consent import LIVE, Change, Superseded
from connector.outbox.engine import dialect_insert
from connector.outbox.statements import Prepared
from connector.outbox.tables import consent_marks, deliveries, one_of, unindexed

_PAGE = 500


def live_changes(conn, keys) -> dict[str, list[Change]]:
    """Every live change stored for these contacts (read on the contact index), and each
    contact's mark unless the delivery it names is among them."""
    keys = sorted(set(keys))
    if conn.dialect.name == "sqlite":
        one_each = [{"key": key} for key in keys]
        live, marks = _LIVE_FOR_CONTACT.rows(conn, one_each), _MARK_FOR_CONTACT.rows(conn, one_each)
    else:
        live, marks = [], []
        for start in range(0, len(keys), _PAGE):
            page = {"keys": keys[start : start + _PAGE]}
            live += conn.execute(_LIVE_FOR_CONTACTS, page).all()
            marks += conn.execute(_MARKS_FOR_CONTACTS, page).all()
    found: dict[str, list[Change]] = {}
    for id, contact_key, event_time, state, lease_expires_at in live:
        found.setdefault(contact_key, []).append(Change(id, contact_key, event_time, state, lease_expires_at))
    for contact_key, event_time, delivery_id, purged in marks:
        changes = found.setdefault(contact_key, [])
        if all(c.id != delivery_id for c in changes):
            changes.append(
                Change(delivery_id, contact_key, event_time, State.DELIVERED, None, True, bool(purged))
            )
    return found


def remember(conn, changes, at: float) -> None:
    """Each change becomes its contact's mark unless the mark is newer already (one change
    per contact; run in the transaction that queues them)."""
    rows = [
        {"contact_key": c.contact_key, "event_time": c.event_time, "delivery_id": c.id, "updated_at": at}
        for c in changes
    ]
    _UPSERT_MARKS.many(conn, rows)


def supersede(conn, superseded: list[Superseded], at: float) -> int:
    """Apply the rule's losers: pending, unleased deliveries become superseded (one in flight
    is left to finish), each naming its winner and reason; recorded as outcomes
    (`attempts.record_decided`). How many changed."""
    by_winner: dict[tuple, list[int]] = {}
    for lost in superseded:
        by_winner.setdefault((lost.by, lost.reason), []).append(lost.id)
    changed: list[str] = []
    for (winner, reason), ids in by_winner.items():
        for start in range(0, len(ids), _PAGE):
            given = {"ids": ids[start : start + _PAGE], "at": at, "reason": str(reason), "winner": winner}
            changed += conn.execute(_SUPERSEDE, given).scalars()
    return attempts.record_decided(conn, at, [(partner_id, State.SUPERSEDED) for partner_id in changed])


# -- the statements, each named once ----------------------------------------------------------
#: Live changes, read on the contact index (never on a state one).
_LIVE = select(
    deliveries.c.id,
    deliveries.c.contact_key,
    deliveries.c.event_time,
    deliveries.c.state,
    deliveries.c.lease_expires_at,
).where(one_of(unindexed(deliveries.c.state), LIVE))
_LIVE_FOR_CONTACTS = _LIVE.where(deliveries.c.contact_key.in_(bindparam("keys", expanding=True)))
#: Marks, each saying whether the delivery it names was purged since.
_MARKS = select(
    consent_marks.c.contact_key,
    consent_marks.c.event_time,
    consent_marks.c.delivery_id,
    deliveries.c.id.is_(None).label("purged"),
).select_from(consent_marks.outerjoin(deliveries, deliveries.c.id == consent_marks.c.delivery_id))
_MARKS_FOR_CONTACTS = _MARKS.where(consent_marks.c.contact_key.in_(bindparam("keys", expanding=True)))
# SQLite: one contact a statement, on the driver's cursor (a few µs each, no round trips).
_LIVE_FOR_CONTACT = Prepared(lambda _: _LIVE.where(deliveries.c.contact_key == bindparam("key")))
_MARK_FOR_CONTACT = Prepared(lambda _: _MARKS.where(consent_marks.c.contact_key == bindparam("key")))


def _upsert_marks(dialect: str):
    """A change becomes its contact's mark unless the mark is newer already."""
    mark = consent_marks.c
    new = dialect_insert(dialect)(consent_marks).values({name: bindparam(name) for name in _MARK_COLUMNS})
    newer = or_(
        new.excluded.event_time > mark.event_time,
        and_(new.excluded.event_time == mark.event_time, new.excluded.delivery_id > mark.delivery_id),
    )
    return new.on_conflict_do_update(
        index_elements=[mark.contact_key],
        set_={
            "event_time": new.excluded.event_time,
            "delivery_id": new.excluded.delivery_id,
            "updated_at": new.excluded.updated_at,
        },
        where=newer,
    )


_MARK_COLUMNS = ("contact_key", "event_time", "delivery_id", "updated_at")
_UPSERT_MARKS = Prepared(_upsert_marks)
#: Pending, unleased deliveries of `ids` superseded by `winner`; their partners, to chart.
_SUPERSEDE = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.state.in_(PENDING),
        or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < bindparam("at")),
    )
    .values(
        state=State.SUPERSEDED,
        reason=bindparam("reason"),
        superseded_by=bindparam("winner"),
        next_attempt_at=None,
        updated_at=bindparam("at"),
    )
    .returning(deliveries.c.partner_id)
)
