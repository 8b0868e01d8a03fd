"""Prometheus metrics. Counters live in each process (set PROMETHEUS_MULTIPROC_DIR to merge
gunicorn workers); queue figures are read from the store at scrape time, so every process
reports the same truth."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from connector.store import PENDING, breakers, deliveries

EVENTS_RECEIVED = Counter(
    "connector_events_received_total", "Inbound events by source and result", ["source", "result"]
)
ATTEMPTS = Counter(
    "connector_attempts_total", "Delivery attempts by partner and outcome", ["partner", "outcome"]
)
ATTEMPT_LATENCY = Histogram(
    "connector_attempt_latency_seconds", "Latency of requests to partners", ["partner"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKEN_FETCHES = Counter(
    "connector_token_fetches_total", "OAuth token fetches by key and result", ["key", "result"]
)


class StoreCollector:
    """Deliveries by partner and outcome, queue depth, oldest due age, paused keys."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        by_outcome = GaugeMetricFamily("connector_deliveries", "Deliveries by partner and outcome",
                                       labels=["partner", "outcome"])
        depth = GaugeMetricFamily("connector_queue_depth", "Deliveries waiting to be sent",
                                  labels=["partner"])
        oldest = GaugeMetricFamily("connector_oldest_due_seconds",
                                   "Age of the oldest delivery that is due now")
        paused = GaugeMetricFamily("connector_paused_keys", "Keys paused by refused credentials")
        circuits = GaugeMetricFamily("connector_open_circuits", "Open (partner, key) circuits")
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.partner_id, deliveries.c.state,
                                       func.count()).group_by(deliveries.c.partner_id,
                                                              deliveries.c.state))
            pending: dict[str, int] = {}
            for partner, state, count in rows:
                by_outcome.add_metric([partner, state], count)
                if state in PENDING:
                    pending[partner] = pending.get(partner, 0) + count
            for partner, count in pending.items():
                depth.add_metric([partner], count)
            due = conn.execute(select(func.min(deliveries.c.next_attempt_at)).where(
                deliveries.c.state.in_(PENDING), deliveries.c.next_attempt_at <= now)).scalar()
            oldest.add_metric([], max(0.0, now - due) if due else 0.0)
            states = [r.state for r in conn.execute(select(breakers.c.state))]
        paused.add_metric([], states.count("paused"))
        circuits.add_metric([], states.count("open"))
        yield from (by_outcome, depth, oldest, paused, circuits)
