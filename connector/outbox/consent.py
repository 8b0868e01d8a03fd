"""The consent-order rule, written once; intake, claims and replay all apply it from here.

For one contact (a delivery's `contact_key`: partner, environment, list, email), changes are
ordered by (event_time, delivery id): on equal times the later arrival wins, except against a
contact's mark whose delivery was purged, which wins every tie (below). A change is sent
only while no *live* change for that contact (pending, or already delivered) is newer; the older
one is `superseded` and never sent, so a late opt-in cannot undo a newer opt-out. Deliveries
without a contact key (facts, not consent) are never ordered.

Each contact's newest change ever queued is also remembered in `consent_marks`, which purge
never deletes: the mark counts as a live change, so an event older than what the contact said
last never changes the partner, even once every delivery that said it has been purged (a
captured request sent again much later). On equal times such a purged mark beats any arrival:
once its id is forgotten a captured request is a new arrival, and the later-arrival rule would
let an opt-in replayed after its tied opt-out resubscribe the contact.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select, text, update

from connector.contract import PENDING, State
from connector.outbox import rollups
from connector.outbox.engine import dialect_insert
from connector.outbox.statements import Prepared
from connector.outbox.tables import consent_marks, deliveries, one_of, unindexed

#: Changes that still count for a contact: pending ones and delivered ones.
LIVE = (*PENDING, State.DELIVERED)
_PAGE = 500
#: A purged mark's place among equal times: after every stored id and every arriving stamp
#: (intake numbers a request's new deliveries from 2**62).
_AFTER_EVERY_ARRIVAL = 2**63


@dataclass(frozen=True)
class Change:
    """One live delivery for a contact, as the rule sees it."""

    id: int
    contact_key: str
    event_time: float
    state: str
    lease_expires_at: float | None = None
    #: A contact's mark: its newest change ever queued, which may be purged since.
    remembered: bool = False
    #: The mark's delivery is gone from the store: it wins every tie (see the module's doc).
    purged: bool = False

    @property
    def stamp(self) -> tuple[float, int]:
        return (self.event_time, _AFTER_EVERY_ARRIVAL if self.purged else self.id)

    def in_flight(self, at: float) -> bool:
        """Claimed by a worker whose lease still runs: it may be on the wire right now."""
        return (
            self.state != State.DELIVERED
            and self.lease_expires_at is not None
            and self.lease_expires_at >= at
        )

    def supersedable(self, at: float) -> bool:
        return self.state != State.DELIVERED and not self.in_flight(at)


def newer_than(change: Change, others: list[Change]) -> Change | None:
    """The newest of the other live changes for the contact, if it is newer than this one."""
    newest = max((o for o in others if o.id != change.id), key=lambda o: o.stamp, default=None)
    return newest if newest is not None and newest.stamp > change.stamp else None


def is_newest(change: Change, others: list[Change]) -> bool:
    """No other live change for the contact is newer than this one."""
    return newer_than(change, others) is None


#: Why a change lost to a contact's mark rather than to a stored delivery.
REMEMBERED = "a newer event for this contact was received before (remembered after its purge)"


def superseded_because(newer: Change, stored: str) -> str:
    """The reason to record for a change that lost to `newer`; `stored` when it is a delivery
    still in the store."""
    return REMEMBERED if newer.remembered else stored


def older_pending(change: Change, others: list[Change], at: float) -> list[int]:
    """Ids of pending changes that lose to `change` and may be superseded now (not in flight)."""
    return [o.id for o in others if o.id != change.id and o.stamp < change.stamp and o.supersedable(at)]


_LIVE = select(
    deliveries.c.id,
    deliveries.c.contact_key,
    deliveries.c.event_time,
    deliveries.c.state,
    deliveries.c.lease_expires_at,
).where(one_of(unindexed(deliveries.c.state), LIVE))  # read on the contact index, never on a state one
_LIVE_FOR_CONTACTS = _LIVE.where(deliveries.c.contact_key.in_(bindparam("keys", expanding=True)))
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


def _upsert_marks(dialect: str):
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


def supersede(conn, ids, at: float, reason: str, by: int | None = None) -> int:
    """Mark these pending, unleased deliveries superseded (one in flight is left to finish) by
    the change with id `by`; they count in the per-minute rollups like any outcome."""
    ids = list(ids)
    tally = rollups.Tally()
    for start in range(0, len(ids), _PAGE):
        for partner_id in conn.execute(
            update(deliveries)
            .where(
                and_(
                    deliveries.c.id.in_(ids[start : start + _PAGE]),
                    deliveries.c.state.in_(PENDING),
                    or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < at),
                )
            )
            .values(
                state=State.SUPERSEDED, reason=reason, superseded_by=by, next_attempt_at=None, updated_at=at
            )
            .returning(deliveries.c.partner_id)
        ).scalars():
            tally.outcome(at, partner_id, State.SUPERSEDED)
    rollups.add(conn, tally)
    return sum(int(row["deliveries"]) for row in tally.rows.values())


# PostgreSQL, for the rest of the transaction: read through the indexes. Without statistics (a
# table filled since its last ANALYZE) the planner would rather scan and sort the whole queue,
# inside the claim's or the intake's transaction.
# JIT off too: with scans and sorts priced out, a plan that still needs one (the contact locks'
# ORDER BY, the breakers' few rows) costs enough to be compiled, ~28 ms each time.
_INDEXES_ONLY = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true),"
    " set_config('jit', 'off', true)"
)


def indexes_only(conn) -> None:
    """Claims and intake read the queue in order and each contact by its key, never a scan."""
    if conn.dialect.name == "postgresql":
        conn.execute(_INDEXES_ONLY)


# PostgreSQL: intake and claims of one contact take turns on an advisory lock, so the rule
# reads a contact nobody else is changing. Sorted order, so two holders never deadlock.
_LOCK_CONTACTS = text(
    "SELECT count(pg_advisory_xact_lock(hashtext(k))) "
    "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s"
)
_TRY_LOCK_CONTACTS = text(
    "SELECT k FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s "
    "WHERE pg_try_advisory_xact_lock(hashtext(k))"
)


def lock_contacts(conn, keys) -> None:
    """Wait for these contacts (intake: a short wait behind a claim is fine)."""
    if conn.dialect.name == "postgresql" and keys:
        conn.execute(_LOCK_CONTACTS, {"keys": sorted(set(keys))})


def try_lock_contacts(conn, keys) -> set[str]:
    """The contacts this transaction could lock without waiting (claims never wait: their
    rows are FOR UPDATE SKIP LOCKED already, so claims cannot deadlock with intake). On
    SQLite the write gate already serialises every writer: all of them."""
    keys = sorted(set(keys))
    if conn.dialect.name != "postgresql" or not keys:
        return set(keys)
    return set(conn.execute(_TRY_LOCK_CONTACTS, {"keys": keys}).scalars())
