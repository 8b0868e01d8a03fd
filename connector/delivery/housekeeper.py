"""A worker's chores for everyone: sample the queue once a minute (the Live View's queue
chart) and purge past retention every `retention.every`, one worker at a time across all
workers (the purge works in short transactions: see `outbox/retention.py`)."""

from __future__ import annotations

import logging
import threading

from connector.outbox import retention, rollups

log = logging.getLogger("connector.housekeeper")
TICK = 1.0


class Housekeeper:
    def __init__(self, runtime, owner: str):
        self.runtime = runtime
        self.owner = owner
        self.lease = runtime.config.settings["worker"]["lease"]
        self.retention = runtime.config.settings["retention"]
        self.stop_event = threading.Event()

    def run(self) -> None:
        """The worker's housekeeping thread: a tick a second until stopped."""
        while not self.stop_event.is_set():
            self.tick()
            self.stop_event.wait(TICK)

    def tick(self) -> dict | None:
        """Sample the queue if this minute has no sample yet; purge if it is due and no other
        worker is purging. Returns what a purge removed, or None when none ran. The store
        being busy or gone is logged and tried again next tick."""
        engine = self.runtime.engine
        try:
            rollups.sample_queue(engine)
        except Exception:
            log.exception("sampling the queue failed")
        every = self.retention["every"]
        if not every:
            return None
        try:
            result = retention.run(engine, self.retention, self.owner, self.lease, every)
        except Exception:
            log.exception("the scheduled purge failed; the next is due in %.0fs", every)
            return None
        if result is not None:
            log.info(
                "purged %d deliveries, %d attempts, %d events in %d transactions (longest %.1f ms)",
                result["deliveries"],
                result["attempts"],
                result["events"],
                result["transactions"],
                result["longest_transaction_ms"],
            )
        return result
