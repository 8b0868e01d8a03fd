"""What the webhooks took, logged as a summary: one INFO line per source every few seconds
while events arrive, from each web process, instead of a line per request (thousands a second
under load; a line per event made 29 MB of log for 200,000 events). Each request and event is
at DEBUG (`logging.level: DEBUG` in connector.yaml); refusals are counted in /metrics. What
came in during a process's last few seconds is in /metrics, not in a last line (a line written
at exit would go to whatever the log's stream is by then)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict

log = logging.getLogger("connector.webhooks")
#: How often a web process writes what it took since its last line.
SUMMARY_SECONDS = 5.0


class IntakeLog:
    def __init__(self, every: float = SUMMARY_SECONDS):
        self.every = every
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # requests, events, dups
        self._since = time.monotonic()
        self._pid: int | None = None

    def took(self, source_id: str, accepted: int, duplicates: int) -> None:
        with self._lock:
            counts = self._counts[source_id]
            counts[0] += 1
            counts[1] += accepted
            counts[2] += duplicates
            if self._pid != os.getpid():  # first request of this process (gunicorn forks)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="intake-log", daemon=True).start()

    def flush(self) -> None:
        if not self._counts:
            return
        with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: [0, 0, 0])
            since, self._since = self._since, time.monotonic()
        seconds = max(self._since - since, 0.001)
        for source_id, (requests, accepted, duplicates) in sorted(counts.items()):
            log.info(
                "%s: %d events accepted, %d duplicates (%d request%s in %.1f s)",
                source_id,
                accepted,
                duplicates,
                requests,
                "" if requests == 1 else "s",
                seconds,
            )

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            if self._counts:
                self.flush()


INTAKE_LOG = IntakeLog()
