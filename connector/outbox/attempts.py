"""Recording how attempts ended: each delivery's new state and one attempt-log row per
delivery per try, for many requests in one transaction, with the per-minute rollups of
outcomes and latencies (`rollups.py`) in the same transaction."""

from __future__ import annotations

from sqlalchemy import insert, update

from connector.contract import Attempt, Result
from connector.outbox import rollups
from connector.outbox.engine import dumps, now
from connector.outbox.tables import attempts, deliveries


def record_many(engine, owner: str, items: list[tuple[list[Result], Attempt]]) -> int:
    """Apply the results of several attempts (each one delivery or a batch) in one
    transaction and log every attempt. Only rows this owner still leases change, and only
    those count in the rollups (each attempt's latency once, under its partner). Results that
    set the same values (a whole batch delivered) share one UPDATE."""
    at = now()
    attempt_rows = []
    same_values: dict[tuple, list[int]] = {}
    for results, attempt in items:
        shared = (attempt.status, attempt.error_code, attempt.error_message, attempt.latency_ms)
        request = dumps(attempt.request) if attempt.request else None
        response = dumps(attempt.response) if attempt.response else None
        for result in results:
            key = (result.state, result.reason, result.next_attempt_at, result.count_attempt, *shared)
            same_values.setdefault(key, []).append(result.delivery_id)
            own_request = attempt.request_by_delivery.get(result.delivery_id)
            attempt_rows.append(
                {
                    "delivery_id": result.delivery_id,
                    "started_at": attempt.started_at,
                    "outcome": result.state,
                    "status": attempt.status,
                    "error_code": attempt.error_code,
                    "error_message": attempt.error_message or result.reason,
                    "latency_ms": attempt.latency_ms,
                    "batch_size": len(results),
                    "request": dumps(own_request) if own_request else request,
                    "response": response,
                }
            )
    partner_of: dict[int, str] = {}
    with engine.begin() as conn:
        for key, ids in same_values.items():
            state, reason, next_attempt_at, count_attempt, status, code, message, latency = key
            values = {
                "state": state,
                "reason": reason,
                "next_attempt_at": next_attempt_at,
                "lease_owner": None,
                "lease_expires_at": None,
                "last_status": status,
                "last_error_code": code,
                "last_error_message": message,
                "last_latency_ms": latency,
                "updated_at": at,
            }
            if count_attempt:
                values["attempts"] = deliveries.c.attempts + 1
            for start in range(0, len(ids), 500):
                partner_of.update(
                    conn.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.id.in_(ids[start : start + 500]), deliveries.c.lease_owner == owner
                        )
                        .values(**values)
                        .returning(deliveries.c.id, deliveries.c.partner_id)
                    ).all()
                )
        if attempt_rows:
            conn.execute(insert(attempts), attempt_rows)
        rollups.add(conn, _tally(items, partner_of))
    return len(partner_of)


def _tally(items: list[tuple[list[Result], Attempt]], partner_of: dict[int, str]) -> rollups.Tally:
    tally = rollups.Tally()
    for results, attempt in items:
        changed = [r for r in results if r.delivery_id in partner_of]
        for result in changed:
            tally.outcome(attempt.started_at, partner_of[result.delivery_id], result.state)
        if changed and attempt.latency_ms is not None:
            first = changed[0]
            tally.latency(attempt.started_at, partner_of[first.delivery_id], first.state, attempt.latency_ms)
    return tally
