"""Claiming due deliveries under a lease, recording attempts, and the breakers that pause a
refused key or open a circuit for a failing (partner, key)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select, text, update

from connector.store import attempts, breakers, deliveries, dumps, now, reading


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5          # consecutive transient failures that open a circuit
    probe_interval: float = 15.0  # first wait before probing a paused key / open circuit
    max_probe_interval: float = 300.0  # probes never further apart than this

    def interval(self, opened: int) -> float:
        return min(self.max_probe_interval, self.probe_interval * 2 ** max(0, opened - 1))


DEFAULT_POLICY = BreakerPolicy()


@dataclass
class Claimed:
    id: int
    event_pk: int
    partner_id: str
    action: str
    environment: str
    partner_key_id: str | None
    contact_key: str | None
    batch_key: str | None
    event_time: float
    spec: dict
    attempts: int
    state: str
    probe: bool = False  # sent to test a paused key or an open circuit
    leased_until: float = 0.0


def key_scope(partner_key_id: str) -> str:
    return f"key:{partner_key_id}"


def circuit_scope(partner_id: str, partner_key_id: str | None) -> str:
    return f"circuit:{partner_id}|{partner_key_id or '-'}"


def claim(engine, owner: str, limit: int, lease: float, actions: list[str] | None = None,
          exclude_actions: list[str] | None = None,
          policy: BreakerPolicy = DEFAULT_POLICY) -> list[Claimed]:
    """Lease up to `limit` due deliveries, at most one per contact, none whose contact has an
    earlier delivery pending or in flight, none behind a paused key or an open circuit (but one
    probe each when a probe is due)."""
    at = now()
    with engine.begin() as conn:
        blocked_keys, blocked_circuits, probes = [], [], []
        for row in conn.execute(select(breakers).where(breakers.c.state != "closed")):
            if row.probe_at is not None and row.probe_at <= at:
                probes.append(row)
            elif row.scope.startswith("key:"):
                blocked_keys.append(row.scope[4:])
            else:
                blocked_circuits.append(row.scope[8:])

        due = and_(
            deliveries.c.state.in_(("queued", "retrying", "paused")),
            deliveries.c.next_attempt_at <= at,
            or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < at),
        )
        conditions = [due]
        if actions:
            conditions.append(deliveries.c.action.in_(actions))
        if exclude_actions:
            conditions.append(deliveries.c.action.not_in(exclude_actions))
        for scope in [p.scope for p in probes] + [f"key:{k}" for k in blocked_keys]:
            if scope.startswith("key:"):
                conditions.append(or_(deliveries.c.partner_key_id.is_(None),
                                      deliveries.c.partner_key_id != scope[4:]))
        for scope in [p.scope[8:] for p in probes if p.scope.startswith("circuit:")] + blocked_circuits:
            partner_id, key_id = scope.split("|", 1)
            conditions.append(~and_(deliveries.c.partner_id == partner_id,
                                    deliveries.c.partner_key_id == (None if key_id == "-" else key_id)))

        postgres = engine.dialect.name == "postgresql"
        query = (select(deliveries).where(*conditions)
                 .order_by(deliveries.c.next_attempt_at, deliveries.c.id).limit(limit * 2))
        if postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(conn.execute(query))

        # One probe delivery per breaker whose probe time has come; push its next probe out.
        probe_ids: set[int] = set()
        for probe in probes:
            if probe.scope.startswith("key:"):
                match = deliveries.c.partner_key_id == probe.scope[4:]
            else:
                partner_id, key_id = probe.scope[8:].split("|", 1)
                match = and_(deliveries.c.partner_id == partner_id,
                             deliveries.c.partner_key_id == (None if key_id == "-" else key_id))
            # If the probe never reports back (worker died), the next one still comes, later.
            # Only the claimer that moves probe_at on sends the probe (several may race here).
            moved = conn.execute(update(breakers).where(breakers.c.scope == probe.scope,
                                                        breakers.c.probe_at == probe.probe_at)
                                 .values(opened=probe.opened + 1, updated_at=at,
                                         probe_at=at + policy.interval(probe.opened + 1)))
            if moved.rowcount != 1:
                continue
            probe_query = (select(deliveries).where(due, match)
                           .order_by(deliveries.c.next_attempt_at, deliveries.c.id).limit(1))
            if postgres:
                probe_query = probe_query.with_for_update(skip_locked=True)
            one = conn.execute(probe_query).first()
            if one is not None:
                rows.insert(0, one)
                probe_ids.add(one.id)

        if postgres:
            rows = _hold_contacts(conn, rows)
        picked = _one_per_contact(conn, rows, at)[:limit]
        if not picked:
            return []
        ids = [r.id for r in picked]
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(lease_owner=owner, lease_expires_at=at + lease)
        )
        return [Claimed(r.id, r.event_pk, r.partner_id, r.action, r.environment, r.partner_key_id,
                        r.contact_key, r.batch_key, r.event_time, json.loads(r.spec), r.attempts,
                        r.state, probe=r.id in probe_ids, leased_until=at + lease)
                for r in picked]


_TRY_LOCK_CONTACTS = text(
    "SELECT k FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s "
    "WHERE pg_try_advisory_xact_lock(hashtext(k))")
LOCK_CONTACTS = text(
    "SELECT count(pg_advisory_xact_lock(hashtext(k))) "
    "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS s")


def _hold_contacts(conn, rows):
    """PostgreSQL: keep only candidates whose contact this claim can hold (advisory lock; an
    intake or another claimer may hold it), so the consent-order checks below read a contact
    nobody else is changing at this moment. Never waits: the rows are FOR UPDATE SKIP LOCKED
    already and the contact lock is a try, so claims cannot deadlock with intake."""
    keys = sorted({r.contact_key for r in rows if r.contact_key})
    held = set(conn.execute(_TRY_LOCK_CONTACTS, {"keys": keys}).scalars()) if keys else set()
    return [r for r in rows if not r.contact_key or r.contact_key in held]


def _one_per_contact(conn, rows, at: float):
    keys = sorted({r.contact_key for r in rows if r.contact_key})
    blockers: dict[str, list] = {}
    for start in range(0, len(keys), 500):
        for other in conn.execute(
            select(deliveries.c.id, deliveries.c.contact_key, deliveries.c.event_time,
                   deliveries.c.state, deliveries.c.lease_expires_at)
            .where(deliveries.c.contact_key.in_(keys[start:start + 500]),
                   deliveries.c.state.in_(("queued", "retrying", "paused", "delivered")))
        ):
            blockers.setdefault(other.contact_key, []).append(other)

    picked, picked_ids, taken, superseded = [], set(), set(), []
    for row in rows:
        if row.contact_key:
            if row.contact_key in taken or row.id in picked_ids:  # a set: claims page thousands
                continue
            others = [o for o in blockers.get(row.contact_key, []) if o.id != row.id]
            if any((o.event_time, o.id) > (row.event_time, row.id) for o in others):
                superseded.append(row.id)
                continue
            if any(o.state != "delivered" and o.lease_expires_at is not None
                   and o.lease_expires_at >= at for o in others):
                continue  # an earlier change for this contact is in flight
            # Older changes still pending (one that failed in flight while this one arrived)
            # lose to this one now, instead of holding it back until their retry time.
            superseded.extend(o.id for o in others if o.state != "delivered")
            taken.add(row.contact_key)
        picked.append(row)
        picked_ids.add(row.id)
    if superseded:
        conn.execute(update(deliveries)
                     .where(deliveries.c.id.in_(superseded),
                            deliveries.c.state.in_(("queued", "retrying", "paused")),
                            or_(deliveries.c.lease_expires_at.is_(None),
                                deliveries.c.lease_expires_at < at))
                     .values(state="superseded", next_attempt_at=None, updated_at=at,
                             reason="a newer event for this contact is queued or delivered"))
    return picked


@dataclass
class Result:
    """The end of one attempt for one delivery."""

    delivery_id: int
    state: str                       # delivered | skipped | retrying | dead | paused
    reason: str | None = None
    next_attempt_at: float | None = None
    count_attempt: bool = True


def record_many(engine, owner: str, items: list[tuple[list[Result], dict]]) -> int:
    """Apply the results of several HTTP attempts (each one delivery or a batch) in one
    transaction and log every attempt. Only rows this owner still leases change. Results that
    set the same values (a whole batch delivered) share one UPDATE."""
    at = now()
    changed = 0
    attempt_rows = []
    same_values: dict[tuple, list[int]] = {}
    for results, attempt in items:
        shared = (attempt.get("status"), attempt.get("error_code"),
                  attempt.get("error_message"), attempt.get("latency_ms"))
        requests = attempt.get("request_by_delivery") or {}
        request = dumps(attempt["request"]) if attempt.get("request") else None
        response = dumps(attempt["response"]) if attempt.get("response") else None
        for result in results:
            key = (result.state, result.reason, result.next_attempt_at, result.count_attempt,
                   *shared)
            same_values.setdefault(key, []).append(result.delivery_id)
            own_request = requests.get(result.delivery_id)
            attempt_rows.append({
                "delivery_id": result.delivery_id,
                "started_at": attempt["started_at"],
                "outcome": result.state,
                "status": attempt.get("status"),
                "error_code": attempt.get("error_code"),
                "error_message": attempt.get("error_message") or result.reason,
                "latency_ms": attempt.get("latency_ms"),
                "batch_size": len(results),
                "request": dumps(own_request) if own_request else request,
                "response": response,
            })
    with engine.begin() as conn:
        for key, ids in same_values.items():
            state, reason, next_attempt_at, count_attempt, status, code, message, latency = key
            values = {
                "state": state, "reason": reason, "next_attempt_at": next_attempt_at,
                "lease_owner": None, "lease_expires_at": None, "last_status": status,
                "last_error_code": code, "last_error_message": message,
                "last_latency_ms": latency, "updated_at": at,
            }
            if count_attempt:
                values["attempts"] = deliveries.c.attempts + 1
            for start in range(0, len(ids), 500):
                changed += conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(ids[start:start + 500]),
                           deliveries.c.lease_owner == owner)
                    .values(**values)
                ).rowcount
        if attempt_rows:
            conn.execute(insert(attempts), attempt_rows)
    return changed


def trip(engine, scope: str, state: str, reason: str, threshold: int = 1,
         policy: BreakerPolicy = DEFAULT_POLICY) -> bool:
    """Count a failure on a scope; at `threshold` consecutive failures it opens (or pauses).
    Returns True when the breaker is (now) open."""
    at = now()
    with engine.begin() as conn:
        row = conn.execute(select(breakers).where(breakers.c.scope == scope)).first()
        failures = (row.failures if row else 0) + 1
        is_open = failures >= threshold
        # `opened` counts probes since the breaker opened: each failed probe doubles the wait.
        opened = row.opened if row is not None and row.state != "closed" else 1
        values = {"state": state if is_open else "closed", "reason": reason, "failures": failures,
                  "opened": opened if is_open else 0, "updated_at": at,
                  "probe_at": at + policy.interval(opened) if is_open else None}
        if row is None:
            conn.execute(insert(breakers).values(scope=scope, **values))
        else:
            conn.execute(update(breakers).where(breakers.c.scope == scope).values(**values))
        return is_open


def reset(engine, scopes: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(breakers).where(breakers.c.scope.in_(scopes)))


def release(engine, owner: str, delivery_ids: list[int]) -> None:
    """Give claimed deliveries back untouched (their circuit opened before they were sent)."""
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id.in_(delivery_ids),
                                              deliveries.c.lease_owner == owner)
                     .values(lease_owner=None, lease_expires_at=None))


def breaker_states(engine) -> list[dict]:
    """Every breaker row's scope and state (a small table: read once per claim round)."""
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(select(breakers.c.scope, breakers.c.state))]


def open_breakers(engine) -> list[dict]:
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(breakers).where(breakers.c.state != "closed").order_by(breakers.c.scope))]
