"""Prometheus metrics. Counters live in each process (set PROMETHEUS_MULTIPROC_DIR to merge
gunicorn workers); queue figures are read from the store at scrape time, so every process
reports the same truth."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from connector.contract import PENDING, STATES, CircuitScope, KeyScope, parse_scope
from connector.outbox.engine import reading
from connector.outbox.tables import breakers, deliveries, pollers

EVENTS_RECEIVED = Counter(
    "connector_events_received_total", "Inbound events by source and result", ["source", "result"]
)
ATTEMPTS = Counter(
    "connector_attempts_total", "Delivery attempts by partner and outcome", ["partner", "outcome"]
)
ATTEMPT_LATENCY = Histogram(
    "connector_attempt_latency_seconds",
    "Latency of requests to partners",
    ["partner"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
POLLS = Counter("connector_polls_total", "Polls of pull sources by source and result", ["source", "result"])
POLL_ROWS = Counter("connector_poll_rows_total", "Rows read from partners by pull sources", ["source"])
TOKEN_FETCHES = Counter(
    "connector_token_fetches_total", "OAuth token fetches by key and result", ["key", "result"]
)


class StoreCollector:
    """Deliveries by partner and outcome, queue depth, oldest due age, paused keys and open
    circuits (counts, and one series per key / circuit so an alert can name it)."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        by_outcome = GaugeMetricFamily(
            "connector_deliveries", "Deliveries by partner and outcome", labels=["partner", "outcome"]
        )
        depth = GaugeMetricFamily(
            "connector_queue_depth", "Deliveries waiting to be sent", labels=["partner"]
        )
        oldest = GaugeMetricFamily(
            "connector_oldest_due_seconds", "Age of the oldest delivery that is due now"
        )
        paused = GaugeMetricFamily("connector_paused_keys", "Keys paused by refused credentials")
        circuits = GaugeMetricFamily("connector_open_circuits", "Open (partner, key) circuits")
        key_paused = GaugeMetricFamily("connector_key_paused", "1 while this key is paused", labels=["key"])
        circuit_open = GaugeMetricFamily(
            "connector_circuit_open", "1 while this circuit is open", labels=["partner", "key"]
        )
        last_ok = GaugeMetricFamily(
            "connector_poll_last_success_timestamp_seconds",
            "When each pull source last polled without error (0: never)",
            labels=["source"],
        )
        last_rows = GaugeMetricFamily(
            "connector_poll_rows_read", "Rows the latest poll read", labels=["source"]
        )
        last_events = GaugeMetricFamily(
            "connector_poll_events_produced", "Events the latest poll produced", labels=["source"]
        )
        poll_failures = GaugeMetricFamily(
            "connector_poll_consecutive_failures", "Failed polls since the last good one", labels=["source"]
        )
        now = time.time()
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(deliveries.c.partner_id, deliveries.c.state, func.count()).group_by(
                    deliveries.c.partner_id, deliveries.c.state
                )
            )
            counts: dict[str, dict[str, int]] = {}
            for partner, state, count in rows:
                counts.setdefault(partner, dict.fromkeys(STATES, 0))[state] = count
            # Every outcome of every partner, zeros included, so a drained queue reads 0.
            for partner, by_state in sorted(counts.items()):
                for state, count in by_state.items():
                    by_outcome.add_metric([partner, state], count)
                depth.add_metric([partner], sum(by_state[s] for s in PENDING))
            due = conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.state.in_(PENDING), deliveries.c.next_attempt_at <= now
                )
            ).scalar()
            oldest.add_metric([], max(0.0, now - due) if due else 0.0)
            open_rows = list(
                conn.execute(select(breakers.c.scope, breakers.c.state).where(breakers.c.state != "closed"))
            )
            poll_rows = list(
                conn.execute(
                    select(
                        pollers.c.source_id,
                        pollers.c.last_ok_at,
                        pollers.c.rows_read,
                        pollers.c.events_produced,
                        pollers.c.failures,
                    )
                )
            )
        for stored, _state in open_rows:
            scope = parse_scope(stored)
            if isinstance(scope, KeyScope):
                key_paused.add_metric([scope.partner_key_id], 1)
            elif isinstance(scope, CircuitScope):
                circuit_open.add_metric([scope.partner_id, scope.partner_key_id or "-"], 1)
        for source_id, last_ok_at, rows_read, events_produced, failures in poll_rows:
            last_ok.add_metric([source_id], last_ok_at or 0.0)
            last_rows.add_metric([source_id], rows_read)
            last_events.add_metric([source_id], events_produced)
            poll_failures.add_metric([source_id], failures)
        states = [state for _, state in open_rows]
        paused.add_metric([], states.count("paused"))
        circuits.add_metric([], states.count("open"))
        yield from (
            by_outcome,
            depth,
            oldest,
            paused,
            circuits,
            key_paused,
            circuit_open,
            last_ok,
            last_rows,
            last_events,
            poll_failures,
        )
