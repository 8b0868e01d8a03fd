"""The consent-order rule, written once; intake, claims and replay all apply it from here.

For one contact (a delivery's `contact_key`: partner, environment, list, email), changes are
ordered by (event_time, delivery id): on equal times the later arrival wins. A change is sent
only while no *live* change for that contact (pending, or already delivered) is newer; the older
one is `superseded` and never sent, so a late opt-in cannot undo a newer opt-out. Deliveries
without a contact key (facts, not consent) are never ordered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select, text, update

from connector.contract import PENDING, State
from connector.outbox.tables import deliveries

#: Changes that still count for a contact: pending ones and delivered ones.
LIVE = (*PENDING, State.DELIVERED)
_PAGE = 500


@dataclass(frozen=True)
class Change:
    """One live delivery for a contact, as the rule sees it."""

    id: int
    contact_key: str
    event_time: float
    state: str
    lease_expires_at: float | None = None

    @property
    def stamp(self) -> tuple[float, int]:
        return (self.event_time, self.id)

    def in_flight(self, at: float) -> bool:
        """Claimed by a worker whose lease still runs: it may be on the wire right now."""
        return (
            self.state != State.DELIVERED
            and self.lease_expires_at is not None
            and self.lease_expires_at >= at
        )

    def supersedable(self, at: float) -> bool:
        return self.state != State.DELIVERED and not self.in_flight(at)


def is_newest(change: Change, others: list[Change]) -> bool:
    """No other live change for the contact is newer than this one."""
    return not any(o.stamp > change.stamp for o in others if o.id != change.id)


def older_pending(change: Change, others: list[Change], at: float) -> list[int]:
    """Ids of pending changes that lose to `change` and may be superseded now (not in flight)."""
    return [o.id for o in others if o.id != change.id and o.stamp < change.stamp and o.supersedable(at)]


_LIVE_FOR_CONTACTS = select(
    deliveries.c.id,
    deliveries.c.contact_key,
    deliveries.c.event_time,
    deliveries.c.state,
    deliveries.c.lease_expires_at,
).where(deliveries.c.contact_key.in_(bindparam("keys", expanding=True)), deliveries.c.state.in_(LIVE))


def live_changes(conn, keys) -> dict[str, list[Change]]:
    """Every live change stored for these contacts (read on the contact index)."""
    keys = sorted(set(keys))
    found: dict[str, list[Change]] = {}
    for start in range(0, len(keys), _PAGE):
        for row in conn.execute(_LIVE_FOR_CONTACTS, {"keys": keys[start : start + _PAGE]}):
            found.setdefault(row.contact_key, []).append(
                Change(row.id, row.contact_key, row.event_time, row.state, row.lease_expires_at)
            )
    return found


def supersede(conn, ids, at: float, reason: str) -> int:
    """Mark these pending, unleased deliveries superseded (one in flight is left to finish)."""
    ids = list(ids)
    changed = 0
    for start in range(0, len(ids), _PAGE):
        changed += conn.execute(
            update(deliveries)
            .where(
                and_(
                    deliveries.c.id.in_(ids[start : start + _PAGE]),
                    deliveries.c.state.in_(PENDING),
                    or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < at),
                )
            )
            .values(state=State.SUPERSEDED, reason=reason, next_attempt_at=None, updated_at=at)
        ).rowcount
    return changed


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
