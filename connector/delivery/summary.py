"""What a worker settled, logged as one INFO line every few seconds (per partner: deliveries by
outcome and the requests they took) instead of a line per delivery: hundreds of deliveries a
second made the logging handler's lock a fifth of the worker's time. Each delivery is a DEBUG
line (`logging.level: DEBUG` in connector.yaml); /metrics counts them all."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

log = logging.getLogger("connector.worker")
#: How often a worker writes what it settled since its last line (when it settled anything).
SUMMARY_SECONDS = 5.0


class SettledLog:
    def __init__(self, every: float = SUMMARY_SECONDS, clock=time.monotonic):
        self.every, self.clock = every, clock
        self._lock = threading.Lock()
        self._outcomes: dict[str, Counter] = {}
        self._requests: Counter = Counter()
        self._since = clock()

    def add(self, partner_id: str, outcomes: Counter, requests: int) -> None:
        """`outcomes`: deliveries by state, settled by `requests` requests to the partner."""
        with self._lock:
            self._outcomes.setdefault(partner_id, Counter()).update(outcomes)
            self._requests[partner_id] += requests

    def flush_if_due(self) -> None:
        if self.clock() - self._since >= self.every:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, {}
            requests, self._requests = self._requests, Counter()
            since, self._since = self._since, self.clock()
        if not outcomes:
            return
        parts = [
            f"{partner_id} "
            + ", ".join(f"{count:,} {state}" for state, count in sorted(counts.items()))
            + f" ({requests[partner_id]:,} request{'' if requests[partner_id] == 1 else 's'})"
            for partner_id, counts in sorted(outcomes.items())
        ]
        log.info("settled in %.1f s: %s", max(self._since - since, 0.001), "; ".join(parts))
