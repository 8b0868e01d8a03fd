"""Breakers: a key whose credentials were refused is paused; a (partner, key) failing
continuously opens a circuit. Either holds its deliveries back, with a probe now and then
whose wait doubles up to a ceiling."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update

from connector.contract import CircuitScope, KeyScope, Scope, parse_scope
from connector.outbox.engine import now, reading
from connector.outbox.tables import breakers


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive transient failures that open a circuit
    probe_interval: float = 15.0  # first wait before probing a paused key / open circuit
    max_probe_interval: float = 300.0  # probes never further apart than this

    def interval(self, opened: int) -> float:
        return min(self.max_probe_interval, self.probe_interval * 2 ** max(0, opened - 1))


DEFAULT_POLICY = BreakerPolicy()


@functools.lru_cache(maxsize=1024)  # asked for each delivery a worker stores or sends
def scopes_of(partner_id: str, partner_key_id: str | None) -> tuple[CircuitScope, KeyScope]:
    """The breakers that hold back a lane's deliveries (a partner and its key): the circuit of
    that partner with that key, and the pause of that key. The one place a scope is matched:
    claims, the boundary and the worker all ask here."""
    return CircuitScope(partner_id, partner_key_id), KeyScope(partner_key_id or "-")


def trip(
    engine, scope: Scope, state: str, reason: str, threshold: int = 1, policy: BreakerPolicy = DEFAULT_POLICY
) -> bool:
    """Count a failure on a scope; at `threshold` consecutive failures it opens (or pauses).
    Returns True when the breaker is (now) open."""
    at = now()
    stored = str(scope)
    with engine.begin() as conn:
        row = conn.execute(_BREAKER, {"breaker": stored}).first()
        failures = (row.failures if row else 0) + 1
        is_open = failures >= threshold
        # `opened` counts probes since the breaker opened: each failed probe doubles the wait.
        opened = row.opened if row is not None and row.state != "closed" else 1
        values = {
            "breaker": stored,
            "state": state if is_open else "closed",
            "reason": reason,
            "failures": failures,
            "opened": opened if is_open else 0,
            "updated_at": at,
            "probe_at": at + policy.interval(opened) if is_open else None,
        }
        conn.execute(_ADD if row is None else _SET, values)
        return is_open


def reset(engine, scopes: list[Scope]) -> None:
    with engine.begin() as conn:
        conn.execute(_RESET, {"breakers": [str(s) for s in scopes]})


def breaker_states(engine) -> dict[Scope, str]:
    """Every breaker's state by scope (a small table: read once per claim round)."""
    with reading(engine) as conn:
        return {parse_scope(scope): state for scope, state in conn.execute(_STATES)}


def open_breakers(engine) -> list[dict]:
    """Paused keys and open circuits, each with its `scope` record, why, and the next probe."""
    with reading(engine) as conn:
        return [dict(r._mapping) | {"scope": parse_scope(r.scope)} for r in conn.execute(_OPEN)]


# -- the statements, each named once ----------------------------------------------------------
_BREAKER = select(breakers).where(breakers.c.scope == bindparam("breaker"))
#: What `trip` writes of a breaker, new (`_ADD`) or stored (`_SET`).
_TRIPPED = ("state", "reason", "failures", "opened", "updated_at", "probe_at")
_ADD = insert(breakers).values(scope=bindparam("breaker"), **{name: bindparam(name) for name in _TRIPPED})
_SET = (
    update(breakers)
    .where(breakers.c.scope == bindparam("breaker"))
    .values({name: bindparam(name) for name in _TRIPPED})
)
_RESET = delete(breakers).where(breakers.c.scope.in_(bindparam("breakers", expanding=True)))
_STATES = select(breakers.c.scope, breakers.c.state)
#: Paused keys and open circuits, by scope.
_OPEN = select(breakers).where(breakers.c.state != "closed").order_by(breakers.c.scope)
