"""The delivery worker: plans the events webhooks accepted (connector.delivery.planner), claims
due deliveries, hands each claimed group to the boundary on a pool of threads (many requests in
flight), polls pull sources when they are due, and does its share of the housekeeping (queue
samples, the scheduled purge)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from queue import Empty, SimpleQueue

from connector.contract import Attempt, Delivery, Partner, Result
from connector.delivery.boundary import Boundary, Breakers
from connector.delivery.housekeeper import Housekeeper
from connector.delivery.planner import Planner
from connector.delivery.recorder import Recorder, record_all
from connector.delivery.scheduler import Scheduler
from connector.delivery.summary import SettledLog
from connector.outbox import breakers, claims
from connector.outbox.storing import Lease

log = logging.getLogger("connector.worker")
#: Rows of batchable deliveries claimed in one round at most.
MAX_BATCH_ROWS = 10_000
#: How often the worker reads the breakers other workers may have tripped.
BREAKERS_EVERY = 1.0


class Worker:
    def __init__(self, runtime, owner: str | None = None):
        self.runtime = runtime
        self.settings = runtime.config.settings["worker"]
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stop_event = threading.Event()
        self.policy = breakers.BreakerPolicy(**runtime.config.settings["breaker"])
        self.breakers = Breakers(self.policy)
        self.settled = SettledLog()
        self.boundary = Boundary(
            runtime, self.owner, self.settings, self.breakers, self._record_now, self.settled
        )
        self.batchable = {
            action.name: action
            for destination in runtime.registry.destinations.values()
            for action in destination.actions.values()
            if action.max_batch > 1
        }
        self.scheduler = Scheduler(runtime, self.owner)
        self.housekeeper = Housekeeper(runtime, self.owner)
        self.planner = Planner(runtime)
        #: Deliveries the scheduler stored leased to this worker (a page's facts), for the loop.
        self.taken: SimpleQueue[list[Delivery]] = SimpleQueue()
        self._waiting: deque[list[Delivery]] = deque()  # claimed or taken, not started yet
        #: What wakes the loop: 1 for a group a delivery thread finished, 0 for deliveries taken.
        self._wake: SimpleQueue[int] = SimpleQueue()
        self._breakers_read_at = float("-inf")

    # -- loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        threads = self.settings["threads"]
        # More groups under way than requests on the wire (the boundary holds those to
        # `threads`): one group's preparing and settling overlaps the others' requests.
        under_way = threads + max(1, threads // 2)
        log.info("worker %s started: %d requests in flight at most", self.owner, threads)
        recorder = Recorder(self.runtime.engine, self.owner)
        self.boundary.record = recorder.put
        recorder.start()
        polling = None
        if self.runtime.config.pull_sources:
            polling = threading.Thread(target=self.scheduler.run, name="scheduler", daemon=True)
            polling.start()
        housekeeping = threading.Thread(target=self.housekeeper.run, name="housekeeper", daemon=True)
        housekeeping.start()
        waiting = self._waiting
        # Long-lived delivery threads fed through one queue, each telling the loop through
        # another when it finishes a group. Both are C-level queues: an executor's Future per
        # group (its condition, callbacks and idle semaphore, all Python-level) cost about
        # 25 µs of CPU a group, and the loop's condition more under 48 threads.
        todo: SimpleQueue[list[Delivery] | None] = SimpleQueue()
        wake = self._wake
        inflight = 0
        self.scheduler.taker = self

        def deliver_loop() -> None:
            while (group := todo.get()) is not None:
                try:
                    self.deliver_group(group)
                except Exception:
                    log.exception("delivery task failed")
                finally:
                    wake.put(1)

        delivering = [
            threading.Thread(target=deliver_loop, name=f"deliver_{i}", daemon=True) for i in range(under_way)
        ]
        for thread in delivering:
            thread.start()
        try:
            plan_at = 0.0
            try:
                while not self.stop_event.is_set():
                    planned = 0
                    # What webhooks accepted since, planned before the claim that sends it: at
                    # once while a batch comes full, else once a poll interval (the loop turns
                    # at every finished delivery; a look for waiting events each time cost a
                    # read a delivery).
                    if time.monotonic() >= plan_at:
                        try:
                            planned = self.planner.plan_some()
                        except Exception:
                            log.exception("planning failed; retrying shortly")
                        plan_at = time.monotonic() + self.settings["poll_interval"]
                    more_to_plan = planned >= self.planner.batch  # then no pause below
                    if more_to_plan:
                        plan_at = 0.0
                    while not self.taken.empty():
                        waiting.extend(self._split(self.taken.get_nowait()))
                    # Keep one claim ahead of the threads so none idles while we claim.
                    if len(waiting) < threads:
                        try:
                            waiting.extend(self.claim_groups(2 * threads - len(waiting)))
                        except Exception:
                            log.exception("claim failed; retrying shortly")
                    while waiting and inflight < under_way:
                        inflight += 1
                        todo.put(waiting.popleft())
                    pause = None
                    if inflight == under_way and not more_to_plan:
                        pause = 1.0  # until a slot frees
                    elif not more_to_plan and self.taken.empty():
                        pause = self.settings["poll_interval"]  # claim again soon
                    inflight -= _finished(wake, pause)
                    self.settled.flush_if_due()
            finally:
                # Groups handed over still go (as an executor's shutdown would run them).
                for _ in delivering:
                    todo.put(None)
                for thread in delivering:
                    thread.join()
        finally:
            self.scheduler.taker = None
            # Never started: back to the queue now, not after the lease.
            self._release([d for group in waiting for d in group])
            recorder.stop()
            self.boundary.record = self._record_now
            if polling is not None:
                self.scheduler.stop_event.set()
                polling.join(timeout=self.settings["lease"])
            self.housekeeper.stop_event.set()
            housekeeping.join(timeout=self.settings["lease"])
            while not self.taken.empty():  # what a last poll took while the loop stopped
                self._release(self.taken.get_nowait())
            self.settled.flush()
        log.info("worker %s stopped", self.owner)

    def run_once(self) -> int:
        """Plan what webhooks accepted, poll the pull sources that are due, then claim and
        deliver everything due now, synchronously (tests, `connector worker --once`)."""
        self.planner.plan_all()
        self.scheduler.poll_due()
        count = 0
        while True:
            groups = self.claim_groups(self.settings["threads"])
            if not groups:
                self.settled.flush()
                return count
            for group in groups:
                self.deliver_group(group)
                count += len(group)

    # -- what the scheduler takes for this worker ----------------------------------------------
    def page_lease(self) -> Lease | None:
        """Whether the page the scheduler stores now may give its facts straight to this worker
        (when it has room for them), and which: those of a batchable action whose lane is not
        held back."""
        if not self.batchable or len(self._waiting) >= self.settings["threads"]:
            return None
        return Lease(self.owner, self.settings["lease"], self._takes)

    def _takes(self, partner_id: str, planned) -> bool:
        if planned.action not in self.batchable:
            return False
        held = self.breakers.open  # nearly always empty: no scope built, none hashed
        return not held or held.isdisjoint(breakers.scopes_of(partner_id, planned.partner_key_id))

    def take(self, deliveries: list[Delivery]) -> None:
        """Deliveries the scheduler stored leased to this worker: sent like claimed ones."""
        self.taken.put(deliveries)
        self._wake.put(0)

    def _release(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            claims.release(self.runtime.engine, self.owner, [d.id for d in deliveries])

    def claim_groups(self, free: int) -> list[list[Delivery]]:
        engine, lease = self.runtime.engine, self.settings["lease"]
        # What other workers tripped, once a second at most (the claim itself reads the
        # breakers in its transaction; this is for the groups claimed ahead and the resets).
        if time.monotonic() >= self._breakers_read_at + BREAKERS_EVERY:
            self.breakers.refresh(breakers.breaker_states(engine))
            self._breakers_read_at = time.monotonic()
        groups: list[list[Delivery]] = [
            [c]
            for c in claims.claim(
                engine,
                self.owner,
                free,
                lease,
                policy=self.policy,
                exclude_actions=list(self.batchable) or None,
            )
        ]
        free -= len(groups)
        if free > 0 and self.batchable:
            # Bounded, whatever threads × batch size: memory per round stays small, and every
            # statement stays under the drivers' limit on bound parameters (65,535).
            biggest = max(action.max_batch for action in self.batchable.values())
            rows = min(free * biggest, MAX_BATCH_ROWS)
            batches = self._split(
                claims.claim(
                    engine, self.owner, rows, lease, actions=list(self.batchable), policy=self.policy
                )
            )
            # Claiming by rows can yield more groups than free threads (many lists): give the
            # surplus back at once rather than let its leases run down in the queue.
            groups.extend(batches[:free])
            surplus = [c.id for group in batches[free:] for c in group]
            if surplus:
                claims.release(engine, self.owner, surplus)
        return groups

    def _split(self, deliveries: list[Delivery]) -> list[list[Delivery]]:
        """Deliveries of batchable actions as the requests they go in: by partner, action and
        batch key, then as each action splits them."""
        batch: dict[tuple, list[Delivery]] = {}
        for c in deliveries:
            batch.setdefault((c.partner_id, c.action, c.batch_key), []).append(c)
        batches = []
        for (partner_id, action, _), items in batch.items():
            partner = self.runtime.config.partners.get(partner_id) or Partner(partner_id)
            try:
                split = self.batchable[action].batches(partner, [c.spec for c in items])
            except Exception:  # a plugin bug: one request each, the boundary records it
                log.exception("splitting a batch of %s failed", action)
                split = [[i] for i in range(len(items))]
            batches += [[items[i] for i in indexes] for indexes in split]
        return batches

    def deliver_group(self, group: list[Delivery]) -> None:
        self.boundary.deliver(group)

    def _record_now(self, results: list[Result], attempt: Attempt) -> None:
        """Record at once (no Recorder thread): a row the store refuses is set aside as the
        Recorder does; a store that is down raises to the caller."""
        record_all(self.runtime.engine, self.owner, [(results, attempt)], _store_down)


def _finished(wake: SimpleQueue[int], pause: float | None) -> int:
    """How many groups the delivery threads finished since last asked, waiting up to `pause`
    seconds for the first word (None: not at all)."""
    done = 0
    try:
        if pause is not None:
            done += wake.get(timeout=pause)
        while True:
            done += wake.get_nowait()
    except Empty:
        return done


def _store_down(failures: int, exc: BaseException) -> bool:
    raise exc


def run_forever(runtime) -> None:
    worker = Worker(runtime)

    def stop(*_):
        worker.stop_event.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    worker.run()
