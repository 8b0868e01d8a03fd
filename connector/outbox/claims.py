"""Claims: leasing due deliveries to one worker, and giving them back untouched.

A claim leases at most one delivery per contact, none whose contact has a change in flight
(the consent rule decides the rest), none behind a paused key or an open circuit, except one
probe per breaker whose probe time has come."""

from __future__ import annotations

import heapq
import json
from itertools import islice

from sqlalchemy import and_, func, or_, select, update

from connector.contract import PENDING, Delivery, KeyScope, parse_scope
from connector.outbox import consent
from connector.outbox.breakers import DEFAULT_POLICY, BreakerPolicy
from connector.outbox.consent import Change
from connector.outbox.engine import now
from connector.outbox.tables import breakers, deliveries, unindexed

_PAGE = 1000  # ids per statement, far below every driver's limit on bound parameters
_SPARE = 100
#: What a claim reads of a delivery: the Delivery's fields in its order, then what the claim
#: orders and the consent rule decides by.
_CLAIMED = (
    deliveries.c.id,
    deliveries.c.event_pk,
    deliveries.c.partner_id,
    deliveries.c.action,
    deliveries.c.environment,
    deliveries.c.partner_key_id,
    deliveries.c.contact_key,
    deliveries.c.batch_key,
    deliveries.c.event_time,
    deliveries.c.spec,
    deliveries.c.attempts,
    deliveries.c.state,
    deliveries.c.next_attempt_at,
    deliveries.c.lease_expires_at,
)


def _in_scope(scope):
    """The deliveries a breaker scope holds back."""
    if isinstance(scope, KeyScope):
        return deliveries.c.partner_key_id == scope.partner_key_id
    key_match = (
        deliveries.c.partner_key_id.is_(None)
        if scope.partner_key_id is None
        else deliveries.c.partner_key_id == scope.partner_key_id
    )
    return and_(deliveries.c.partner_id == scope.partner_id, key_match)


def _holds_back(scope, partner_id: str, partner_key_id: str | None) -> bool:
    """`_in_scope` for one lane, in Python."""
    if isinstance(scope, KeyScope):
        return partner_key_id == scope.partner_key_id
    return partner_id == scope.partner_id and partner_key_id == scope.partner_key_id


_LANE = (deliveries.c.partner_id, deliveries.c.partner_key_id, deliveries.c.action)


def _lanes(conn, postgres: bool) -> list[tuple[str, str | None, str]]:
    """Every (partner, key, action) in the table, in one statement that seeks
    `ix_deliveries_lane` once per lane (a DISTINCT would read every row). A lane's successor
    is the first row past it in the index's order, whose NULL keys come first on SQLite and
    last on PostgreSQL."""
    row = deliveries.alias("lane_row")
    columns = (row.c.id, row.c.partner_id, row.c.partner_key_id, row.c.action)
    first = select(deliveries.c.id).order_by(*_LANE).limit(1).scalar_subquery()
    lanes = select(*columns).where(row.c.id == first).cte("lanes", recursive=True)
    partner, key, action = lanes.c.partner_id, lanes.c.partner_key_id, lanes.c.action
    same = deliveries.c.partner_id == partner
    null_key = deliveries.c.partner_key_id.is_(None)

    def seek(*where, by):
        return select(deliveries.c.id).where(*where).order_by(*by).limit(1).scalar_subquery()

    by_key = (deliveries.c.partner_key_id, deliveries.c.action)
    successor = func.coalesce(
        seek(same, deliveries.c.partner_key_id == key, deliveries.c.action > action, by=by_key),
        seek(key.is_(None), same, null_key, deliveries.c.action > action, by=by_key),
        seek(same, deliveries.c.partner_key_id > key, by=by_key),
        seek(key.is_not(None), same, null_key, by=by_key)
        if postgres
        else seek(key.is_(None), same, ~null_key, by=by_key),
        seek(deliveries.c.partner_id > partner, by=_LANE),
    )
    lanes = lanes.union_all(select(*columns).select_from(lanes).join(row, row.c.id == successor))
    return [
        tuple(lane)
        for lane in conn.execute(select(lanes.c.partner_id, lanes.c.partner_key_id, lanes.c.action))
    ]


def claim(
    engine,
    owner: str,
    limit: int,
    lease: float,
    actions: list[str] | None = None,
    exclude_actions: list[str] | None = None,
    policy: BreakerPolicy = DEFAULT_POLICY,
) -> list[Delivery]:
    """Lease up to `limit` due deliveries (see the module docstring)."""
    at = now()
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        consent.indexes_only(conn)
        held_back, probes = [], []
        for row in conn.execute(select(breakers).where(breakers.c.state != "closed")):
            held_back.append(parse_scope(row.scope))
            if row.probe_at is not None and row.probe_at <= at:
                probes.append(row)

        due = and_(  # read in claim order on ix_deliveries_due_order, never sorting the backlog
            unindexed(deliveries.c.state).in_(PENDING),
            deliveries.c.next_attempt_at <= at,
            or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < at),
        )
        # Spare rows for the ones the consent rule or a contact lock leaves out: as many again
        # for a small claim, a few for a big one (a page of batch rows seldom loses any).
        query = select(*_CLAIMED).where(due).limit(limit + min(limit, _SPARE))
        if postgres:
            query = query.with_for_update(skip_locked=True)
        in_order = (deliveries.c.next_attempt_at, deliveries.c.id)
        if held_back:
            # One read per lane not held back (ix_deliveries_lane), merged here: read in the
            # queue's order, the held back backlog would be walked at every claim.
            reads = [
                query.where(
                    deliveries.c.partner_id == partner_id,
                    deliveries.c.partner_key_id.is_(None)
                    if partner_key_id is None
                    else deliveries.c.partner_key_id == partner_key_id,
                    deliveries.c.action == action,
                ).order_by(*_LANE, *in_order)  # the index's whole order: PostgreSQL sorts nothing
                for partner_id, partner_key_id, action in _lanes(conn, postgres)
                if (not actions or action in actions)
                and action not in (exclude_actions or ())
                and not any(_holds_back(scope, partner_id, partner_key_id) for scope in held_back)
            ]
        elif actions:
            # One read per action in its order (ix_deliveries_due_action), merged here: with
            # `action IN (...)` PostgreSQL walks the whole queue in order instead.
            reads = [
                query.where(deliveries.c.action == action).order_by(*in_order)
                for action in sorted(set(actions))
            ]
        elif exclude_actions:
            reads = [query.where(deliveries.c.action.not_in(exclude_actions)).order_by(*in_order)]
        else:
            reads = [query.order_by(*in_order)]
        pages = (conn.execute(read) for read in reads)
        rows = list(islice(heapq.merge(*pages, key=_claim_order), limit + min(limit, _SPARE)))

        probe_ids: set[int] = set()
        for probe in probes:
            # If the probe never reports back (worker died), the next one still comes, later.
            # Only the claimer that moves probe_at on sends the probe (several may race here).
            moved = conn.execute(
                update(breakers)
                .where(breakers.c.scope == probe.scope, breakers.c.probe_at == probe.probe_at)
                .values(
                    opened=probe.opened + 1, updated_at=at, probe_at=at + policy.interval(probe.opened + 1)
                )
            )
            if moved.rowcount != 1:
                continue
            probe_query = (
                select(*_CLAIMED)
                .where(due, _in_scope(parse_scope(probe.scope)))
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                .limit(1)
            )
            if postgres:
                probe_query = probe_query.with_for_update(skip_locked=True)
            one = conn.execute(probe_query).first()
            if one is not None:
                rows.insert(0, one)
                probe_ids.add(one.id)

        held = consent.try_lock_contacts(conn, (r.contact_key for r in rows if r.contact_key))
        rows = [r for r in rows if not r.contact_key or r.contact_key in held]
        picked = _one_per_contact(conn, rows, at)[:limit]
        if not picked:
            return []
        ids = [r.id for r in picked]
        for start in range(0, len(ids), _PAGE):
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids[start : start + _PAGE]))
                .values(lease_owner=owner, lease_expires_at=at + lease)
            )
        leased_until = at + lease
        return [
            Delivery(
                *fields,
                json.loads(spec),
                attempts,
                state,
                probe=fields[0] in probe_ids,
                leased_until=leased_until,
            )
            for *fields, spec, attempts, state, _, _ in picked
        ]


def _claim_order(row) -> tuple[float, int]:
    return (row.next_attempt_at, row.id)


def _one_per_contact(conn, rows, at: float):
    """The consent rule on claim candidates: a candidate that lost to a newer change is
    superseded; one whose contact has a change in flight waits; older pending ones lose."""
    stored = consent.live_changes(conn, (r.contact_key for r in rows if r.contact_key))
    picked, picked_ids, taken = [], set(), set()
    superseded: dict[tuple[str, int], list[int]] = {}  # (reason, winner) → losers
    newer_reason = "a newer event for this contact is queued or delivered"
    for row in rows:
        if row.id in picked_ids:  # a probe can also come up in the main query
            continue
        if row.contact_key:
            if row.contact_key in taken:
                continue
            change = Change(row.id, row.contact_key, row.event_time, row.state, row.lease_expires_at)
            others = [o for o in stored.get(row.contact_key, []) if o.id != row.id]
            newer = consent.newer_than(change, others)
            if newer is not None:
                reason = consent.superseded_because(newer, newer_reason)
                superseded.setdefault((reason, newer.id), []).append(row.id)
                continue
            if any(o.in_flight(at) for o in others):
                continue  # an earlier change for this contact is on the wire
            # Older changes still pending (one that failed in flight while this one arrived)
            # lose to this one now, instead of holding it back until their retry time.
            superseded.setdefault((newer_reason, row.id), []).extend(
                consent.older_pending(change, others, at)
            )
            taken.add(row.contact_key)
        picked.append(row)
        picked_ids.add(row.id)
    for (reason, winner), ids in superseded.items():
        consent.supersede(conn, ids, at, reason, by=winner)
    return picked


def release(engine, owner: str, delivery_ids: list[int]) -> None:
    """Give claimed deliveries back untouched (not sent: their circuit opened, or the lease
    ran too short to send safely)."""
    with engine.begin() as conn:
        for start in range(0, len(delivery_ids), _PAGE):
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id.in_(delivery_ids[start : start + _PAGE]),
                    deliveries.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_expires_at=None)
            )
