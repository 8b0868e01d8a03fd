"""Recording how attempts ended: each delivery's new state and one attempt-log row per
delivery per try, for many requests in one transaction."""

from __future__ import annotations

from sqlalchemy import insert, update

from connector.contract import Attempt, Result
from connector.outbox.engine import dumps, now
from connector.outbox.tables import attempts, deliveries


def record_many(engine, owner: str, items: list[tuple[list[Result], Attempt]]) -> int:
    """Apply the results of several attempts (each one delivery or a batch) in one
    transaction and log every attempt. Only rows this owner still leases change. Results that
    set the same values (a whole batch delivered) share one UPDATE."""
    at = now()
    changed = 0
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
                changed += conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(ids[start : start + 500]), deliveries.c.lease_owner == owner)
                    .values(**values)
                ).rowcount
        if attempt_rows:
            conn.execute(insert(attempts), attempt_rows)
    return changed
