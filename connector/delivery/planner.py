"""The worker's planning step: events a webhook request committed (connector.outbox.intake's
`accept`) get their deliveries here, a batch per transaction, before each claim.

An event whose planning raises (a plugin's bug) is never dropped: it keeps waiting, the error
is logged, and this process tries it again later (1 s, doubling to an hour) while planning
the rest."""

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
        return intake.plan_accepted(
            self.runtime.engine, self._plan, self.runtime.due_delays, self.batch + len(self.failed)
        )

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
            wait = RETRY_FIRST if retry is None else min(2 * retry[1], RETRY_MOST)
            self.failed[key] = (self.clock() + wait, wait)
            log.exception(
                "planning event %s from %s failed: it stays accepted and waits; next try in %.0f s",
                event.event_id,
                source_id,
                wait,
            )
            return None
        self.failed.pop(key, None)
        return planned
