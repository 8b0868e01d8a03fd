"""The figures behind the Live View's charts, for a window of the last hour, day or week,
overall or for one partner: deliveries per slot by outcome, request latency p50/p95 per slot,
the queue's depth and the age of its oldest due delivery, each pull source's polls, and the
last purge. Every figure is a sum over the per-minute rollups (`outbox/rollups.py`), grouped
in SQL into at most ~100 slots: nothing here reads the attempt log."""

from __future__ import annotations

import math
import time

from connector.outbox import retention, rollups
from connector.outbox.tables import LATENCY_COLUMNS
from connector.web.readmodel import iso

#: window → (length, slot) in seconds: 60 slots of a minute, 96 of 15 minutes, 84 of 2 hours.
WINDOWS = {"1h": (3600.0, 60.0), "24h": (86400.0, 900.0), "7d": (7 * 86400.0, 7200.0)}
DEFAULT_WINDOW = "1h"
#: Outcomes bottom-up in the stacked bars (what attempts, intake and claims decide).
OUTCOMES = ("delivered", "retrying", "paused", "dead", "skipped", "superseded")
STEP_NAMES = {60.0: "minute", 900.0: "15 minutes", 7200.0: "2 hours"}


def frame(window: str, at: float) -> tuple[float, float, list[float]]:
    """(since, step, each slot's start): whole slots, the last one holding `at`."""
    length, step = WINDOWS[window]
    last = math.floor(at / step) * step
    count = int(length // step)
    starts = [last - step * (count - 1 - i) for i in range(count)]
    return starts[0], step, starts


def overview(
    engine, window: str, partner: str | None, pull_sources: list[dict], at: float | None = None
) -> dict:
    """Every chart's figures for `window` (one of WINDOWS), one partner's or everyone's.
    `pull_sources` are the read model's pull-source states (their last good poll)."""
    at = time.time() if at is None else at
    since, step, starts = frame(window, at)
    slots = len(starts)

    by_slot = rollups.outcomes(engine, since, step, partner)
    stacks = [by_slot.get(i, {}) for i in range(slots)]
    totals = {outcome: sum(stack.get(outcome, 0) for stack in stacks) for outcome in OUTCOMES}
    for stack in stacks:  # an outcome this page does not know yet still shows, last
        for outcome, count in stack.items():
            totals.setdefault(outcome, 0)
            if outcome not in OUTCOMES:
                totals[outcome] += count

    histograms = rollups.latency_histograms(engine, since, step, partner)
    window_buckets = [sum(h[i] for h in histograms.values()) for i in range(len(LATENCY_COLUMNS))]
    latency = {
        "p50": [rollups.percentile(histograms.get(i, []), 0.5) for i in range(slots)],
        "p95": [rollups.percentile(histograms.get(i, []), 0.95) for i in range(slots)],
    }

    samples = rollups.queue_samples(engine, since, step, partner)
    queue = {
        "depth": [samples[i]["depth"] if i in samples else None for i in range(slots)],
        "oldest_due_seconds": [
            samples[i]["oldest_due_seconds"] if i in samples else None for i in range(slots)
        ],
    }
    latest = samples[max(samples)] if samples else None

    polls = []
    for source in pull_sources:
        per_slot = rollups.polls(engine, source["source"], since, step)
        polls.append(
            {
                "source": source["source"],
                "last_ok_at": source["last_ok_at"],
                "last_error": source["last_error"],
                "polls": sum(p["polls"] for p in per_slot.values()),
                "failed": sum(p["failed"] for p in per_slot.values()),
                "stopped_early": sum(p["stopped_early"] for p in per_slot.values()),
                "rows_read": sum(p["rows_read"] for p in per_slot.values()),
                "events_produced": sum(p["events_produced"] for p in per_slot.values()),
                # per poll: a slot's sums over its polls
                "rows_per_poll": [_per_poll(per_slot.get(i), "rows_read") for i in range(slots)],
                "events_per_poll": [_per_poll(per_slot.get(i), "events_produced") for i in range(slots)],
            }
        )

    return {
        "window": window,
        "partner": partner,
        "starts": starts,
        "step": step,
        "step_name": STEP_NAMES[step],
        "stacks": stacks,
        "totals": totals,
        "latency": latency,
        "latency_window": {
            "p50": rollups.percentile(window_buckets, 0.5),
            "p95": rollups.percentile(window_buckets, 0.95),
            "requests": sum(window_buckets),
        },
        "queue": queue,
        "queue_latest": latest,
        "polls": polls,
        "last_purge": last_purge(engine),
    }


def _per_poll(figures: dict | None, name: str) -> float | None:
    if not figures or not figures["polls"]:
        return None
    return figures[name] / figures["polls"]


def last_purge(engine) -> dict | None:
    """The last purge as pages and the API show it: times in ISO-8601, what it removed."""
    run = retention.last_run(engine)
    if run is None:
        return None
    result = run["result"] or {}
    return {
        "started_at": iso(run["started_at"]),
        "finished_at": iso(run["finished_at"]),
        "running": run["running"],
        "next_run_at": iso(run["next_run_at"]),
        "error": run["error"],
        "removed": {
            name: result.get(name, 0) for name in ("deliveries", "attempts", "events", "event_ids", "figures")
        },
        "transactions": result.get("transactions", 0),
        "longest_transaction_ms": result.get("longest_transaction_ms", 0.0),
        "seconds": result.get("seconds", 0.0),
    }
