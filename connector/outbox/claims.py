"""Claims: leasing due deliveries to one worker, and giving them back untouched.

A claim leases at most one delivery per contact, none whose contact has a change in flight
(the consent rule decides the rest), none behind a paused key or an open circuit, except one
probe per breaker whose probe time has come."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from itertools import islice

from sqlalchemy import Row, and_, bindparam, case, func, null, or_, select, update

from connector.contract import PENDING, Delivery, parse_scope
from connector.outbox import consent, contacts, postgresql
from connector.outbox.breakers import DEFAULT_POLICY, BreakerPolicy, scopes_of
from connector.outbox.consent import Change
from connector.outbox.engine import now, reading
from connector.outbox.tables import breakers, deliveries, unindexed

_PAGE = 1000  # ids per statement, far below every driver's limit on bound parameters
_SPARE = 100


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
    reads = _READS_LOCKED if postgres else _READS
    # Spare rows for the ones the consent rule or a contact lock leaves out: as many again
    # for a small claim, a few for a big one (a page of batch rows seldom loses any).
    wanted = limit + min(limit, _SPARE)
    due = {"at": at, "n": wanted}
    with reading(engine) as conn:
        # Nothing due, no write transaction: on SQLite it would wait for the write gate
        # behind a pull source's page being stored, and the loop that claims with it.
        if conn.execute(_ANY_DUE, due).first() is None:
            return []
    with engine.begin() as conn:
        postgresql.indexes_only(conn)
        held_back, probes = set(), []
        for row in conn.execute(_HELD_BACK):
            held_back.add(parse_scope(row.scope))
            if row.probe_at is not None and row.probe_at <= at:
                probes.append(row)

        pages: Iterator[Iterable[Row]]
        if held_back:
            # One read per lane not held back (ix_deliveries_lane), merged here: read in the
            # queue's order, the held back backlog would be walked at every claim.
            pages = (
                _read_lane(conn, reads, lane, due)
                for lane in _lanes(conn, postgres)
                if (not actions or lane[2] in actions)
                and lane[2] not in (exclude_actions or ())
                and not set(scopes_of(*lane[:2])) & held_back
            )
        elif actions:
            # One read per action in its order (ix_deliveries_due_action), merged here: with
            # `action IN (...)` PostgreSQL walks the whole queue in order instead.
            pages = (conn.execute(reads["action"], {**due, "action": a}) for a in sorted(set(actions)))
        elif exclude_actions:
            pages = iter([conn.execute(reads["other_actions"], {**due, "excluded": list(exclude_actions)})])
        else:
            pages = iter([conn.execute(reads["queue"], due)])
        rows = list(islice(heapq.merge(*pages, key=_claim_order), wanted))

        probe_ids: set[int] = set()
        for probe in probes:
            # If the probe never reports back (worker died), the next one still comes, later.
            # Only the claimer that moves probe_at on sends the probe (several may race here).
            moved = conn.execute(
                _MOVE_PROBE,
                {
                    "probed_scope": probe.scope,
                    "was": probe.probe_at,
                    "times": probe.opened + 1,
                    "at": at,
                    "next": at + policy.interval(probe.opened + 1),
                },
            )
            if moved.rowcount != 1:
                continue
            # The first due delivery of the lanes this breaker holds back.
            scope = parse_scope(probe.scope)
            firsts = (
                _read_lane(conn, reads, lane, {"at": at, "n": 1})
                for lane in _lanes(conn, postgres)
                if scope in scopes_of(*lane[:2])
            )
            one = next(heapq.merge(*firsts, key=_claim_order), None)
            if one is not None:
                rows.insert(0, one)
                probe_ids.add(one.id)

        held = postgresql.try_lock_contacts(conn, (r.contact_key for r in rows if r.contact_key))
        rows = [r for r in rows if not r.contact_key or r.contact_key in held]
        picked = _one_per_contact(conn, rows, at, limit)
        if not picked:
            return []
        ids = [r.id for r in picked]
        leased_until = at + lease
        for start in range(0, len(ids), _PAGE):
            conn.execute(_LEASE, {"ids": ids[start : start + _PAGE], "owner": owner, "until": leased_until})
        return [
            Delivery(
                r.id,
                r.event_pk,
                r.partner_id,
                r.action,
                r.environment,
                r.partner_key_id,
                r.contact_key,
                r.batch_key,
                r.event_time,
                json.loads(r.spec),
                r.attempts,
                r.state,
                probe=r.id in probe_ids,
                leased_until=leased_until,
            )
            for r in picked
        ]


def _read_lane(conn, reads: dict, lane: tuple[str, str | None, str], due: dict):
    partner_id, partner_key_id, action = lane
    if partner_key_id is None:
        return conn.execute(reads["lane_without_key"], {**due, "partner": partner_id, "action": action})
    return conn.execute(
        reads["lane"], {**due, "partner": partner_id, "key": partner_key_id, "action": action}
    )


def _lanes(conn, postgres: bool) -> list[tuple[str, str | None, str]]:
    """Every (partner, key, action) with pending deliveries (`_every_lane`)."""
    return [tuple(lane) for lane in conn.execute(_LANES_NULLS_LAST if postgres else _LANES_NULLS_FIRST)]


def _claim_order(row) -> tuple[float, int]:
    return (row.next_attempt_at, row.id)


def _one_per_contact(conn, rows, at: float, limit: int):
    """The consent rule (`consent.decide`) on claim candidates, in claim order until `limit`
    are picked: a candidate it supersedes is, one whose contact has a change in flight waits
    (nothing goes or loses for that contact yet), and older pending changes lose to one that
    goes. Contacts are read a chunk of candidates at a time, so the spare candidates of a
    claim cost nothing unless they are needed."""
    picked: list[Row] = []
    picked_ids: set[int] = set()
    taken: set[str] = set()
    losers: list[consent.Superseded] = []
    start = 0
    while start < len(rows) and len(picked) < limit:
        chunk = rows[start : start + limit - len(picked)]
        start += len(chunk)
        stored = contacts.live_changes(conn, (r.contact_key for r in chunk if r.contact_key))
        for row in chunk:
            if row.id in picked_ids:  # a probe can also come up in the main query
                continue
            if row.contact_key:
                if row.contact_key in taken:
                    continue
                candidate = Change(row.id, row.contact_key, row.event_time, row.state, row.lease_expires_at)
                decision = consent.decide(stored.get(row.contact_key, []), [candidate], at)
                if decision.goes is not None and decision.waits:
                    continue
                losers += decision.superseded
                if decision.goes is None:
                    continue
                taken.add(row.contact_key)
            picked.append(row)
            picked_ids.add(row.id)
    contacts.supersede(conn, losers, at)
    return picked


def release(engine, owner: str, delivery_ids: list[int]) -> None:
    """Give leased deliveries back unsent (their circuit opened, the lease ran too short to
    send safely, or the worker stops): no longer leased, and due now (one a page stored leased
    was due when its lease would end)."""
    at = now()
    with engine.begin() as conn:
        for start in range(0, len(delivery_ids), _PAGE):
            conn.execute(_RELEASE, {"ids": delivery_ids[start : start + _PAGE], "owner": owner, "at": at})


# -- the statements, each named once ----------------------------------------------------------
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
#: A lane of the queue (ix_deliveries_lane's leading columns).
_LANE = (deliveries.c.partner_id, deliveries.c.partner_key_id, deliveries.c.action)


def _every_lane(postgres: bool):
    """Every (partner, key, action) with pending deliveries, in one statement that seeks
    `ix_deliveries_lane` once per lane (a DISTINCT would read every row). A lane's successor
    is the first row past it in the index's order, whose NULL keys come first on SQLite and
    last on PostgreSQL."""
    row = deliveries.alias("lane_row")
    columns = (row.c.id, row.c.partner_id, row.c.partner_key_id, row.c.action)
    # Lanes of pending deliveries only, the rows the index holds (a lane of finished ones has
    # nothing to claim).
    pending = deliveries.c.next_attempt_at.is_not(None)
    first = select(deliveries.c.id).where(pending).order_by(*_LANE).limit(1).scalar_subquery()
    lanes = select(*columns).where(row.c.id == first).cte("lanes", recursive=True)
    partner, key, action = lanes.c.partner_id, lanes.c.partner_key_id, lanes.c.action
    same = deliveries.c.partner_id == partner
    null_key = deliveries.c.partner_key_id.is_(None)

    def seek(*where, by):
        return select(deliveries.c.id).where(pending, *where).order_by(*by).limit(1).scalar_subquery()

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
    return select(lanes.c.partner_id, lanes.c.partner_key_id, lanes.c.action)


# Two statements, not a Prepared one: SQLite's compiler binds an OFFSET 0 to each LIMIT, a
# constant its cursor statements refuse.
_LANES_NULLS_FIRST = _every_lane(postgres=False)  # SQLite
_LANES_NULLS_LAST = _every_lane(postgres=True)  # PostgreSQL
#: Pending, due, and not leased (or its lease ran out): read in claim order, never by state.
_DUE = and_(
    unindexed(deliveries.c.state).in_(PENDING),
    deliveries.c.next_attempt_at <= bindparam("at"),
    or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < bindparam("at")),
)
_IN_ORDER = (deliveries.c.next_attempt_at, deliveries.c.id)
_DUE_ROWS = select(*_CLAIMED).where(_DUE).limit(bindparam("n"))
_ANY_DUE = select(deliveries.c.id).where(_DUE).order_by(*_IN_ORDER).limit(1)
_IN_LANE = (deliveries.c.partner_id == bindparam("partner"), deliveries.c.action == bindparam("action"))
#: Each read in its index's order: the queue (ix_deliveries_due_order), one action
#: (ix_deliveries_due_action), all but some actions, one lane, with or without a key
#: (ix_deliveries_lane: its whole order, so PostgreSQL sorts nothing).
_READS = {
    "queue": _DUE_ROWS.order_by(*_IN_ORDER),
    "action": _DUE_ROWS.where(deliveries.c.action == bindparam("action")).order_by(*_IN_ORDER),
    "other_actions": _DUE_ROWS.where(
        deliveries.c.action.not_in(bindparam("excluded", expanding=True))
    ).order_by(*_IN_ORDER),
    "lane": _DUE_ROWS.where(*_IN_LANE, deliveries.c.partner_key_id == bindparam("key")).order_by(
        *_LANE, *_IN_ORDER
    ),
    "lane_without_key": _DUE_ROWS.where(*_IN_LANE, deliveries.c.partner_key_id.is_(None)).order_by(
        *_LANE, *_IN_ORDER
    ),
}
#: PostgreSQL: rows another claim holds are skipped, never waited for.
_READS_LOCKED = {name: read.with_for_update(skip_locked=True) for name, read in _READS.items()}
_HELD_BACK = select(breakers).where(breakers.c.state != "closed")
#: The claimer that moves a breaker's probe time on sends its probe.
_MOVE_PROBE = (
    update(breakers)
    .where(breakers.c.scope == bindparam("probed_scope"), breakers.c.probe_at == bindparam("was"))
    .values(opened=bindparam("times"), updated_at=bindparam("at"), probe_at=bindparam("next"))
)
_LEASE = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("until"))
)
_RELEASE = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.lease_owner == bindparam("owner")
    )
    # Due now: one a page stored leased was due at the end of its lease (storing.py).
    .values(
        lease_owner=null(),
        lease_expires_at=null(),
        next_attempt_at=case(
            (deliveries.c.next_attempt_at > bindparam("at"), bindparam("at")),
            else_=deliveries.c.next_attempt_at,
        ),
    )
)
