"""Writes attempt results in one transaction per few milliseconds instead of one per request:
at hundreds of deliveries per second the store's write lock is the bottleneck."""

from __future__ import annotations

import logging
import threading
import time
from queue import Empty, SimpleQueue

from connector.contract import Attempt, Result
from connector.outbox.attempts import record_many

log = logging.getLogger("connector.worker")


class Recorder(threading.Thread):
    def __init__(self, engine, owner: str, interval: float = 0.02):
        super().__init__(name="recorder", daemon=True)
        self.engine, self.owner, self.interval = engine, owner, interval
        self.items: SimpleQueue = SimpleQueue()
        self._stopping = threading.Event()

    def put(self, results: list[Result], attempt: Attempt) -> None:
        self.items.put((results, attempt))

    def run(self) -> None:
        while not (self._stopping.is_set() and self.items.empty()):
            try:
                batch = [self.items.get(timeout=self.interval)]
            except Empty:
                continue
            while len(batch) < 500:
                try:
                    batch.append(self.items.get_nowait())
                except Empty:
                    break
            failures = 0
            while True:  # never drop a result; the leases keep the rows ours meanwhile
                try:
                    record_many(self.engine, self.owner, batch)
                    break
                except Exception:
                    failures += 1
                    log.exception("recording %d results failed (try %d)", len(batch), failures)
                    time.sleep(min(5.0, 0.2 * failures))

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)
