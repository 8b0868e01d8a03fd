"""Prometheus metrics. Counters live in each process (set PROMETHEUS_MULTIPROC_DIR to merge
gunicorn workers); queue figures are read from the store (at most every few seconds per
process), so every process reports the same truth."""

from __future__ import annotations

import threading
import time

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import select

from connector.contract import PENDING, CircuitScope, KeyScope, parse_scope
from connector.outbox import intake, retention, rollups
from connector.outbox.engine import reading
from connector.outbox.tables import breakers, pollers

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


#: Store-derived figures are read at most this often per process, however often it is scraped.
STORE_TTL = 5.0
#: `connector_outcomes_last_hour` sums the rollups of this many seconds.
OUTCOME_WINDOW = 3600.0


class StoreCollector:
    """Figures read from the store: the queue (pending deliveries by partner and state, the
    age of the oldest due one), outcomes of the last hour (from the per-minute rollups),
    paused keys and open circuits (counts, and one series per key / circuit so an alert can
    name it), each pull source's latest poll, the last purge, and the accepted events no worker
    has planned yet.

    Nothing here reads the attempt log or counts finished deliveries: the queue is read from
    its index alone (its cost follows the backlog, not the history), the rest from tables of
    a few rows. And the figures are read at most every STORE_TTL seconds per process; scrapes
    in between get the same figures."""

    def __init__(self, engine, partners: tuple[str, ...] = (), ttl: float = STORE_TTL):
        self.engine = engine
        self.partners = partners  # listed with zeros when none of theirs waits
        self.ttl = ttl
        self._families: list | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def collect(self):
        with self._lock:
            at = time.time()
            if self._families is None or not 0 <= at - self._read_at < self.ttl:
                self._families = self._read(at)
                self._read_at = at
            families = self._families
        yield from families

    def _read(self, now: float) -> list:
        waiting = GaugeMetricFamily(
            "connector_deliveries",
            "Deliveries waiting to be sent, by partner and state (queued, retrying, paused)",
            labels=["partner", "outcome"],
        )
        depth = GaugeMetricFamily(
            "connector_queue_depth", "Deliveries waiting to be sent", labels=["partner"]
        )
        oldest = GaugeMetricFamily(
            "connector_oldest_due_seconds", "Age of the oldest delivery that is due now"
        )
        outcomes = GaugeMetricFamily(
            "connector_outcomes_last_hour",
            "Deliveries that reached each outcome in the last hour, by partner",
            labels=["partner", "outcome"],
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
        purged_at = GaugeMetricFamily(
            "connector_purge_last_finished_timestamp_seconds", "When the last purge finished (0: never)"
        )
        to_plan = GaugeMetricFamily(
            "connector_events_waiting_to_plan",
            "Accepted events no worker has planned yet (alert when it grows: is a worker running?)",
        )
        to_plan.add_metric([], intake.waiting_count(self.engine))
        queue = rollups.queue_now(self.engine, now)
        for partner in self.partners:
            queue.setdefault(partner, {**dict.fromkeys(PENDING, 0), "oldest_due_seconds": 0.0})
        for partner, figures in sorted(queue.items()):
            for state in PENDING:  # every pending state, zeros included, so a drained queue reads 0
                waiting.add_metric([partner, state], figures[state])
            depth.add_metric([partner], sum(figures[state] for state in PENDING))
        oldest.add_metric([], max((f["oldest_due_seconds"] for f in queue.values()), default=0.0))
        for (partner, outcome), count in sorted(
            rollups.outcome_totals(self.engine, now - OUTCOME_WINDOW).items()
        ):
            outcomes.add_metric([partner, outcome], count)
        with reading(self.engine) as conn:
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
        purged_at.add_metric([], (retention.last_run(self.engine) or {}).get("finished_at") or 0.0)
        return [
            waiting,
            depth,
            oldest,
            outcomes,
            paused,
            circuits,
            key_paused,
            circuit_open,
            last_ok,
            last_rows,
            last_events,
            poll_failures,
            purged_at,
            to_plan,
        ]


class RefusalCollector:
    """`connector_inbound_refused_total` by source and reason, read from the store at each
    scrape (every web process's refusals, not only the scraped one's): `counts()` gives
    {(source, reason): count}."""

    def __init__(self, counts):
        self.counts = counts

    def collect(self):
        family = CounterMetricFamily(
            "connector_inbound_refused",
            "Inbound requests refused (4xx), by source ((unknown) for none configured) and reason",
            labels=["source", "reason"],
        )
        for (source, reason), count in sorted(self.counts().items()):
            family.add_metric([source, reason], count)
        yield family
