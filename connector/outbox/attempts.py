"""Recording outcomes, the one place that adds them to the per-minute rollups (`rollups.py`,
the overview's charts): how attempts ended (each delivery's new state and one attempt-log row
per delivery per try, for many requests in one transaction, with their outcomes and latencies
in the same transaction), and outcomes decided without a request (`record_decided`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import bindparam, null, select, update

from connector.contract import Attempt, Result
from connector.outbox import rollups
from connector.outbox.engine import dumps, now
from connector.outbox.statements import Prepared, insert_rows
from connector.outbox.tables import attempts, deliveries
from connector.storable import MAX_MESSAGE, cut

_PAGE = 500  # ids per statement, far below every driver's limit on bound parameters
#: What results alike share (`record_many`'s keys): everything but the delivery.
_SHARED = (
    "s_state",
    "s_reason",
    "s_next_attempt_at",
    "s_counted",
    "s_owner",
    "s_status",
    "s_error_code",
    "s_error_message",
    "s_latency_ms",
    "s_updated_at",
)
_ALIKE = 8


def record_many(engine, owner: str, items: list[tuple[list[Result], Attempt]]) -> int:
    """Apply the results of several attempts (each one delivery or a batch) in one
    transaction and log every attempt. Only rows this owner still leases change, and only
    those count in the rollups (each attempt's latency once, under its partner)."""
    at = now()
    attempt_rows: list[dict[str, Any]] = []
    # Results that leave their deliveries alike (the same new state and answer: a batch that
    # went through), as {what they share: [delivery ids]}; `_settle` updates each in pages.
    alike: dict[tuple, list[int]] = {}
    for results, attempt in items:
        request = dumps(attempt.request) if attempt.request else None
        response = dumps(attempt.response) if attempt.response else None
        with_body = _with_body(attempt.request) if attempt.body_by_delivery else None
        answer = (owner, attempt.status, attempt.error_code, attempt.error_message, attempt.latency_ms, at)
        for result in results:
            shared = (result.state, result.reason, result.next_attempt_at, 1 if result.count_attempt else 0)
            alike.setdefault(shared + answer, []).append(result.delivery_id)
            own_request = attempt.request_by_delivery.get(result.delivery_id)
            own_body = attempt.body_by_delivery.get(result.delivery_id)
            logged_request: str | None
            if own_request:
                logged_request = dumps(own_request)
            elif own_body is not None and with_body is not None:
                logged_request = with_body(own_body)
            else:
                logged_request = request
            attempt_rows.append(
                {
                    "delivery_id": result.delivery_id,
                    "started_at": attempt.started_at,
                    "outcome": result.state,
                    "status": attempt.status,
                    "error_code": attempt.error_code,
                    "error_message": attempt.error_message or cut(result.reason or "", MAX_MESSAGE) or None,
                    "latency_ms": attempt.latency_ms,
                    "batch_size": len(results),
                    "request": logged_request,
                    "response": response,
                }
            )
    if not attempt_rows:
        return 0
    with engine.begin() as conn:
        partner_of = _settle(conn, owner, alike)
        insert_rows(conn, attempts, attempt_rows, ids=False)
        rollups.add(conn, _tally(items, partner_of))
    return len(partner_of)


def _settle(conn, owner: str, alike: dict[tuple, list[int]]) -> dict[int, str]:
    """Each group of results alike (`record_many`) on the deliveries this owner still leases:
    one UPDATE per page of ids for a group of `_ALIKE` or more (which names the rows it
    changed), the others one row at a time. {delivery id: partner} of the rows changed."""
    changed: dict[int, str] = {}
    one_by_one = []
    for shared, ids in alike.items():
        values = dict(zip(_SHARED, shared, strict=True))
        if len(ids) < _ALIKE:
            one_by_one += [{**values, "s_id": id} for id in ids]
            continue
        for start in range(0, len(ids), _PAGE):
            changed.update(conn.execute(_SETTLE_ALIKE, {**values, "s_ids": ids[start : start + _PAGE]}).all())
    if one_by_one:
        # The rows this owner still leases (locked on PostgreSQL until commit, so no other
        # worker takes one over between this read and the update).
        leased = _LEASED_LOCKED if conn.dialect.name == "postgresql" else _LEASED
        ids = sorted(row["s_id"] for row in one_by_one)
        for start in range(0, len(ids), _PAGE):
            changed.update(conn.execute(leased, {"ids": ids[start : start + _PAGE], "owner": owner}).all())
        _SETTLE.many(conn, one_by_one)
    return changed


def record_decided(conn, at: float, outcomes: Iterable[tuple[str, str]]) -> int:
    """Outcomes decided without a request, (partner id, state) each: skipped or superseded on
    arrival, superseded by a claim or a replay. Charted like an attempt's, in the caller's
    transaction. How many."""
    tally = rollups.Tally()
    count = 0
    for partner_id, state in outcomes:
        tally.outcome(at, partner_id, state)
        count += 1
    rollups.add(conn, tally)
    return count


def _with_body(request: dict | None) -> Callable[[object], str]:
    """body → the JSON of `request` with that body (a batch's request, once per delivery):
    the rest is encoded once, not once per delivery."""
    head = dumps({**{k: v for k, v in (request or {}).items() if k != "body"}, "body": None})
    head = head.removesuffix("null}")
    return lambda body: f"{head}{dumps(body)}}}"


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


# -- the statements, each named once ----------------------------------------------------------
# Built once: a recorder writes hundreds of results a second, and building (and keying) a
# statement per result cost more than running it.
#: Those of `ids` that `owner` still leases, with their partners.
_LEASED = (
    select(deliveries.c.id, deliveries.c.partner_id)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.lease_owner == bindparam("owner")
    )
    .order_by(deliveries.c.id)
)
#: PostgreSQL: locked until the commit, so no other worker takes one over before the update.
_LEASED_LOCKED = _LEASED.with_for_update()
_SETTLE_VALUES = dict(  # a delivery's new state, its lease ended
    state=bindparam("s_state"),
    reason=bindparam("s_reason"),
    next_attempt_at=bindparam("s_next_attempt_at"),
    lease_owner=null(),
    lease_expires_at=null(),
    last_status=bindparam("s_status"),
    last_error_code=bindparam("s_error_code"),
    last_error_message=bindparam("s_error_message"),
    last_latency_ms=bindparam("s_latency_ms"),
    updated_at=bindparam("s_updated_at"),
    attempts=deliveries.c.attempts + bindparam("s_counted"),
)
#: One result: its delivery's new state, if this owner still leases it.
_SETTLE = Prepared(
    lambda _: (
        update(deliveries)
        .where(deliveries.c.id == bindparam("s_id"), deliveries.c.lease_owner == bindparam("s_owner"))
        .values(_SETTLE_VALUES)
    )
)
#: Results alike (`_settle`): one statement for a page of deliveries, naming those it changed
#: (on PostgreSQL the UPDATE itself locks them until commit).
_SETTLE_ALIKE = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("s_ids", expanding=True)),
        deliveries.c.lease_owner == bindparam("s_owner"),
    )
    .values(_SETTLE_VALUES)
    .returning(deliveries.c.id, deliveries.c.partner_id)
)
