"""The worker's planning step: events a webhook request committed (connector.outbox.intake's
`accept`) get their deliveries here, a batch per transaction, before each claim.

An event whose planning raises (a plugin's bug) is never dropped: it keeps waiting, the error
is logged, and this process tries it again later (1 s, doubling to an hour) while planning
the rest. If a batch fails as a whole (storing what was planned raised), its events are
planned one at a time, so the one at fault waits alone. A retried event counts as arriving when
it is planned, as a request that failed and was sent again did."""

from __future__ import annotations

import logging
import time

from connector.outbox import intake

log = logging.getLogger("connector.planner")
#: Events planned per transaction.
BATCH = 500
RETRY_FIRST, RETRY_MOST = 1.0, 3600.0


class Planner:
    def __init__(self, runtime, batch: int = BATCH, clock=time.monotonic):
        self.runtime, self.batch, self.clock = runtime, batch, clock
        self.failed: dict[tuple[str, str], tuple[float, float]] = {}  # key → (retry at, wait)

    def plan_some(self) -> int:
        """Plan one batch; how many events it planned."""
        self._forget_old_failures()
        limit = self.batch + len(self.failed)
        try:
            return intake.plan_accepted(self.runtime.engine, self._plan, self.runtime.due_delays, limit)
        except Exception:
            log.exception("planning a batch failed: planning its events one at a time")
        planned = 0
        for key in intake.waiting_keys(self.runtime.engine, limit):
            try:
                planned += intake.plan_accepted(
                    self.runtime.engine, self._plan, self.runtime.due_delays, 1, only=key
                )
            except Exception:
                self._failed(key, "storing it")
        return planned

    def plan_all(self) -> int:
        """Plan until nothing waits that can be planned now."""
        total = 0
        while planned := self.plan_some():
            total += planned
        return total

    def _plan(self, source_id: str, event):
        key = (source_id, event.event_id)
        retry = self.failed.get(key)
        if retry is not None and retry[0] > self.clock():
            return None
        try:
            planned = self.runtime.plan(source_id, event)
        except Exception:
            self._failed(key, "planning it")
            return None
        self.failed.pop(key, None)
        return planned

    def _failed(self, key: tuple[str, str], doing: str) -> None:
        retry = self.failed.get(key)
        wait = RETRY_FIRST if retry is None else min(2 * retry[1], RETRY_MOST)
        self.failed[key] = (self.clock() + wait, wait)
        log.exception(
            "%s failed for event %s from %s: it stays accepted and waits; next try in %.0f s",
            doing,
            key[1],
            key[0],
            wait,
        )

    def _forget_old_failures(self) -> None:
        """An event retried long ago and never seen since was planned elsewhere (another
        worker): its entry would only make every batch bigger."""
        stale = self.clock() - 2 * RETRY_MOST
        for key in [key for key, (retry_at, _) in self.failed.items() if retry_at < stale]:
            del self.failed[key]
