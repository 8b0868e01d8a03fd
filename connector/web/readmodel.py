"""The read model: the queries behind the Live View and the admin API. Recent events with
their deliveries (paged, newest first, filtered), counts per outcome, one event with every
attempt, and the paused keys and open circuits. Nothing here writes to the store."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from connector.contract import STATES, KeyScope
from connector.outbox.breakers import open_breakers
from connector.outbox.engine import reading
from connector.outbox.pollers import states as poller_states
from connector.outbox.tables import attempts, deliveries, events

MAX_PAGE = 200
DEFAULT_PAGE = 50
_TEXT_FILTERS = ("source", "partner", "environment", "type", "email")


@dataclass(frozen=True)
class Filters:
    """What the listing and the counts are narrowed to; `arguments.py` makes one from query
    arguments and `as_args` gives them back (for links that keep the filters)."""

    source: str | None = None
    partner: str | None = None
    environment: str | None = None
    type: str | None = None
    email: str | None = None
    outcome: tuple[str, ...] = ()

    def as_args(self) -> dict[str, str]:
        args = {name: getattr(self, name) for name in _TEXT_FILTERS if getattr(self, name)}
        if self.outcome:
            args["outcome"] = ",".join(self.outcome)
        return args

    def event_conditions(self) -> list:
        conditions = []
        if self.source:
            conditions.append(events.c.source_id == self.source)
        if self.environment:
            conditions.append(events.c.environment == self.environment)
        if self.type:
            conditions.append(events.c.type == self.type)
        if self.email:
            # A full address uses the index; a fragment ("jane", "@example.com") searches.
            if "@" in self.email and not self.email.startswith("@"):
                conditions.append(events.c.email == self.email)
            else:
                pattern = self.email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                conditions.append(events.c.email.like(f"%{pattern}%", escape="\\"))
        return conditions

    def delivery_conditions(self, with_outcome: bool = True) -> list:
        conditions = []
        if self.partner:
            conditions.append(deliveries.c.partner_id == self.partner)
        if self.outcome and with_outcome:
            conditions.append(deliveries.c.state.in_(self.outcome))
        return conditions


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # a time no calendar holds: show the number
        return str(seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_fields(row) -> dict:
    """What the admin API says of every event row it shows (a `events` row)."""
    return {
        "id": row.id,
        "source": row.source_id,
        "event_id": row.event_id,
        "type": row.type,
        "environment": row.environment,
        "email": row.email,
        "phone": row.phone,
        "event_time": iso(row.event_time),
        "received_at": iso(row.received_at),
    }


def _event_dict(row) -> dict:
    return event_fields(row) | {"warnings": _warnings(row.warnings)}


def _warnings(stored: str | None) -> list[str]:
    """An event's warnings as stored (a JSON list of text), [] for none or for anything else."""
    if not stored:
        return []
    try:
        warnings = json.loads(stored)
    except ValueError:
        return []
    return [_shown(w) for w in warnings if isinstance(w, str)] if isinstance(warnings, list) else []


def _delivery_dict(row) -> dict:
    return {
        "id": row.id,
        "event": row.event_pk,
        "partner": row.partner_id,
        "action": row.action,
        "environment": row.environment,
        "partner_key_id": row.partner_key_id,
        "outcome": row.state,
        "reason": row.reason,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error_code": row.last_error_code,
        "last_error_message": row.last_error_message,
        "last_latency_ms": row.last_latency_ms,
        "next_attempt_at": iso(row.next_attempt_at)
        if row.state in ("retrying", "paused", "queued")
        else None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def recent_events(engine, filters: Filters, before: int | None = None, limit: int = DEFAULT_PAGE) -> dict:
    """One page of events, newest first, each with its deliveries (those matching the
    partner/outcome filters). `next_before` pages on to older events, or is None."""
    query = select(events).where(*filters.event_conditions())
    delivery_filter = filters.delivery_conditions()
    if filters.outcome and "delivered" not in filters.outcome:
        # Rare outcomes (dead, retrying, ...): start from the deliveries' state index instead
        # of walking every event.
        query = query.where(events.c.id.in_(select(deliveries.c.event_pk).where(*delivery_filter)))
    elif delivery_filter:
        query = query.where(
            select(deliveries.c.id).where(deliveries.c.event_pk == events.c.id, *delivery_filter).exists()
        )
    if before is not None:
        query = query.where(events.c.id < before)
    query = query.order_by(events.c.id.desc()).limit(limit + 1)
    with reading(engine) as conn:
        rows = list(conn.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        page = [_event_dict(r) | {"deliveries": []} for r in rows]
        by_pk = {e["id"]: e for e in page}
        if by_pk:
            for d in conn.execute(
                select(deliveries)
                .where(deliveries.c.event_pk.in_(list(by_pk)), *delivery_filter)
                .order_by(deliveries.c.id)
            ):
                by_pk[d.event_pk]["deliveries"].append(_delivery_dict(d))
    return {"events": page, "next_before": rows[-1].id if more and rows else None}


def outcome_counts(engine, filters: Filters) -> dict[str, int]:
    """Deliveries per outcome under the filters (all outcomes listed, zeros included; the
    outcome filter itself is ignored so the counts show what else there is)."""
    query = select(deliveries.c.state, func.count()).where(*filters.delivery_conditions(with_outcome=False))
    event_filter = filters.event_conditions()
    if event_filter:
        query = query.join(events, events.c.id == deliveries.c.event_pk).where(*event_filter)
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    with reading(engine) as conn:
        for state, count in conn.execute(query.group_by(deliveries.c.state)):
            counts[state] = count
    return counts


def _load_json(text: str | None, redactor) -> object:
    """A stored JSON column as pages show it (see `_shown`); text that is not JSON as is."""
    if not text:
        return None
    if redactor is not None:
        text = redactor.text(text)  # stored redacted already; this is a second guard
    try:
        return _shown(json.loads(text))
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return _shown(text)


#: Deeper than this, a stored value is shown as a note: pages render it recursively.
MAX_SHOWN_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOO_DEEP = f"(nested deeper than {MAX_SHOWN_DEPTH} levels: not shown)"


def _shown(value, depth: int = 0):
    """What any page can render and encode: lone UTF-16 surrogates (a JSON escape stored
    before input refused them) become U+FFFD, numbers JSON cannot hold (an Infinity stored
    before input refused 1e400) become text, and nesting stops at MAX_SHOWN_DEPTH."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list | dict) and depth >= MAX_SHOWN_DEPTH:
        return _TOO_DEEP
    if isinstance(value, list):
        return [_shown(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_shown(key): _shown(item, depth + 1) for key, item in value.items()}
    return value


def _exchange(value) -> dict | None:
    """A recorded request or response in the shape the page reads (method, url, params,
    headers, status, body), whatever was stored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return {"body": value}
    shaped: dict[str, Any] = {
        name: {} for name in ("params", "headers") if name in value and not isinstance(value[name], dict)
    }
    if isinstance(value.get("body"), str):
        shaped["body"] = _json_text(value["body"])
    return value | shaped


def _json_text(text: str) -> str:
    """A body recorded as text, which pages parse again to indent it: as is when that is
    safe, else as the JSON of what `_shown` makes of it."""
    try:
        parsed = json.loads(text)
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return text
    shown = _shown(parsed)
    return text if shown == parsed else json.dumps(shown)


def _attempt_dict(row, redactor) -> dict:
    return {
        "id": row.id,
        "started_at": iso(row.started_at),
        "outcome": row.outcome,
        "status": row.status,
        "error_code": row.error_code,
        "error_message": row.error_message,
        "latency_ms": row.latency_ms,
        "batch_size": row.batch_size,
        "request": _exchange(_load_json(row.request, redactor)),
        "response": _exchange(_load_json(row.response, redactor)),
    }


def event_detail(engine, event_pk: int, redactor=None) -> dict | None:
    """An event with its payload and every delivery with every attempt, oldest first."""
    with reading(engine) as conn:
        row = conn.execute(select(events).where(events.c.id == event_pk)).first()
        if row is None:
            return None
        event = _event_dict(row) | {"payload": _load_json(row.payload, redactor)}
        event["deliveries"] = [
            _delivery_dict(d) | {"spec": _load_json(d.spec, redactor), "attempt_log": []}
            for d in conn.execute(
                select(deliveries).where(deliveries.c.event_pk == event_pk).order_by(deliveries.c.id)
            )
        ]
        by_id = {d["id"]: d for d in event["deliveries"]}
        if by_id:
            for a in conn.execute(
                select(attempts).where(attempts.c.delivery_id.in_(list(by_id))).order_by(attempts.c.id)
            ):
                by_id[a.delivery_id]["attempt_log"].append(_attempt_dict(a, redactor))
    return event


def delivery_event_pk(engine, delivery_id: int) -> int | None:
    with reading(engine) as conn:
        return conn.execute(select(deliveries.c.event_pk).where(deliveries.c.id == delivery_id)).scalar()


def breakers(engine) -> dict[str, list[dict]]:
    """Paused keys (credentials refused) and open circuits (a partner failing), with why and
    when the next probe goes out."""
    paused, circuits = [], []
    for row in open_breakers(engine):
        scope = row["scope"]
        item = {
            "state": row["state"],
            "reason": row["reason"],
            "failures": row["failures"],
            "next_probe_at": iso(row["probe_at"]),
            "updated_at": iso(row["updated_at"]),
        }
        if isinstance(scope, KeyScope):
            paused.append({"key": scope.partner_key_id} | item)
        else:
            circuits.append({"partner": scope.partner_id, "key": scope.partner_key_id} | item)
    return {"paused_keys": paused, "open_circuits": circuits}


def pull_sources(engine, source_ids: list[str]) -> list[dict]:
    """Each configured pull source's latest poll: when, how it went, what it read, and who is
    polling it right now (a source never polled yet shows as such)."""
    by_id = {row["source_id"]: row for row in poller_states(engine)}
    at = time.time()
    found = []
    for source_id in source_ids:
        row = by_id.get(source_id, {})
        leased = row.get("lease_expires_at") is not None and row["lease_expires_at"] >= at
        found.append(
            {
                "source": source_id,
                "last_poll_at": iso(row.get("last_poll_at")),
                "last_ok_at": iso(row.get("last_ok_at")),
                "next_poll_at": iso(row.get("next_poll_at")) if row else None,
                "rows_read": row.get("rows_read", 0),
                "events_produced": row.get("events_produced", 0),
                "summary": row.get("summary"),
                "failures": row.get("failures", 0),
                "last_error": row.get("last_error"),
                "stopped_early": row.get("last_note"),
                "polling_now": row.get("lease_owner") if leased else None,
            }
        )
    return found
