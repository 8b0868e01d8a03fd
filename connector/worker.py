"""The delivery worker: claims due deliveries, sends them through the partner's action with
many requests in flight, and records every attempt. Retry policy lives here, not in plugins."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from queue import Empty, SimpleQueue

from connector import metrics, queue
from connector.contract import InvalidCredentials, Outcome
from connector.http import HttpResult
from connector.queue import Claimed, Result
from connector.store import now

log = logging.getLogger("connector.worker")
RETRIABLE_STATUS = {408, 425, 429}
MAX_RETRY_AFTER = 86400.0


def default_outcome(result: HttpResult) -> Outcome:
    if result.ok:
        return Outcome("delivered")
    if result.status is None or result.status in RETRIABLE_STATUS or result.status >= 500:
        return Outcome("retry", result.error or f"HTTP {result.status}")
    if result.status == 401:
        return Outcome("retry", "unauthorized after a fresh token")
    return Outcome("dead", f"HTTP {result.status}")


def retry_delay(schedule: list[float], attempt_number: int, retry_after: float | None) -> float | None:
    """Seconds until the next try, or None when the schedule has run out."""
    if attempt_number > len(schedule):
        return None
    delay = schedule[attempt_number - 1] * random.uniform(0.8, 1.2)
    if retry_after is not None:
        # A floor, not a replacement: "Retry-After: 1" must not burn the schedule in seconds.
        return max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


class Worker:
    def __init__(self, runtime, owner: str | None = None):
        self.runtime = runtime
        self.settings = runtime.config.settings["worker"]
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stop_event = threading.Event()
        self.policy = queue.BreakerPolicy(**runtime.config.settings["breaker"])
        self._record = self._record_now
        self._breaker_scopes: set[str] = set()  # every breaker row: a success resets them
        self._open_scopes: set[str] = set()     # paused keys and open circuits: hold back
        batchable = {}
        for destination in runtime.registry.destinations.values():
            for action in destination.actions.values():
                if action.max_batch > 1:
                    batchable[action.name] = action.max_batch
        self.batchable = batchable

    # -- loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        threads = self.settings["threads"]
        log.info("worker %s started with %d threads", self.owner, threads)
        recorder = Recorder(self.runtime.engine, self.owner)
        self._record = recorder.put
        recorder.start()
        waiting: deque[list[Claimed]] = deque()
        try:
            with ThreadPoolExecutor(threads, thread_name_prefix="deliver") as pool:
                inflight: set = set()
                while not self.stop_event.is_set():
                    # Keep one claim ahead of the threads so none idles while we claim.
                    if len(waiting) < threads:
                        try:
                            waiting.extend(self.claim_groups(2 * threads - len(waiting)))
                        except Exception:
                            log.exception("claim failed; retrying shortly")
                    while waiting and len(inflight) < threads:
                        inflight.add(pool.submit(self.deliver_group, waiting.popleft()))
                    if not inflight:
                        self.stop_event.wait(self.settings["poll_interval"])
                        continue
                    idle = len(inflight) < threads and not waiting
                    done, inflight = wait(inflight, return_when=FIRST_COMPLETED,
                                          timeout=self.settings["poll_interval"] if idle else 1.0)
                    for future in done:
                        if future.exception():
                            log.error("delivery task failed", exc_info=future.exception())
                wait(inflight)
        finally:
            if waiting:  # claimed but never started: back to the queue now, not after the lease
                queue.release(self.runtime.engine, self.owner,
                              [c.id for group in waiting for c in group])
            recorder.stop()
            self._record = self._record_now
        log.info("worker %s stopped", self.owner)

    def run_once(self) -> int:
        """Claim and deliver everything due now, synchronously (tests, `connector worker --once`)."""
        count = 0
        while True:
            groups = self.claim_groups(self.settings["threads"])
            if not groups:
                return count
            for group in groups:
                self.deliver_group(group)
                count += len(group)

    def claim_groups(self, free: int) -> list[list[Claimed]]:
        engine, lease = self.runtime.engine, self.settings["lease"]
        rows = queue.breaker_states(engine)
        self._breaker_scopes = {b["scope"] for b in rows}
        self._open_scopes = {b["scope"] for b in rows if b["state"] != "closed"}
        groups: list[list[Claimed]] = [
            [c] for c in queue.claim(engine, self.owner, free, lease, policy=self.policy,
                                     exclude_actions=list(self.batchable) or None)
        ]
        free -= len(groups)
        if free > 0 and self.batchable:
            biggest = max(self.batchable.values())
            batch: dict[tuple, list[Claimed]] = {}
            for c in queue.claim(engine, self.owner, free * biggest, lease,
                                 actions=list(self.batchable), policy=self.policy):
                batch.setdefault((c.partner_id, c.action, c.batch_key), []).append(c)
            batches = [items[i:i + self.batchable[action]]
                       for (_, action, _), items in batch.items()
                       for i in range(0, len(items), self.batchable[action])]
            # Claiming by rows can yield more groups than free threads (many lists): give the
            # surplus back at once rather than let its leases run down in the queue.
            groups.extend(batches[:free])
            surplus = [c.id for group in batches[free:] for c in group]
            if surplus:
                queue.release(engine, self.owner, surplus)
        return groups

    # -- one request ----------------------------------------------------------------------------
    def deliver_group(self, group: list[Claimed]) -> None:
        first = group[0]
        started_at = now()
        scopes = {queue.circuit_scope(first.partner_id, first.partner_key_id),
                  queue.key_scope(first.partner_key_id or "-")}
        if scopes & self._open_scopes and not first.probe:
            # Claimed ahead, but the circuit opened (or the key paused) since: not a request
            # more to a failing partner; the deliveries wait for the probe's verdict.
            queue.release(self.runtime.engine, self.owner, [c.id for c in group])
            return
        if started_at > first.leased_until - 2 * self.settings["http_timeout"]:
            # Waited so long for a thread that the lease could run out mid-request and let
            # another worker (or a newer change for the contact) go at the same time.
            queue.release(self.runtime.engine, self.owner, [c.id for c in group])
            return
        partner = self.runtime.config.partners.get(first.partner_id)
        if partner is None or not partner["enabled"]:
            self._finish(group, [Outcome("dead", "partner is no longer configured or enabled")],
                         {"started_at": started_at})
            return
        destination = self.runtime.destination(partner)
        action = destination.actions[first.action]
        specs = [c.spec for c in group]
        try:
            request = action.build_request(partner, specs)
            credentials = (self.runtime.credentials(first.partner_key_id)
                           if first.partner_key_id else None)
            result = self.runtime.http.send(request, credentials)
        except InvalidCredentials as exc:
            self._pause_key(group, str(exc), started_at)
            return
        except Exception as exc:  # a plugin bug must not kill the worker or lose the delivery
            log.exception("building or sending delivery %s failed", first.id)
            result = HttpResult(status=None, latency_ms=0.0, error=f"internal: {exc}")
        outcomes = action.interpret(partner, specs, result)
        if outcomes is None:
            outcomes = [default_outcome(result)] * len(group)
        code, message = destination.error_details(result)
        attempt = {
            "started_at": started_at,
            "status": result.status,
            "error_code": code,
            "error_message": self.runtime.redactor.text(message or result.error or "") or None,
            "latency_ms": round(result.latency_ms, 1),
            "request": result.request_record,
            "response": result.response_record,
        }
        if len(group) > 1 and result.request_record:
            # Each delivery of a batch keeps its own part of the body, not 500 copies of all.
            attempt["request_by_delivery"] = {
                c.id: {**result.request_record, "batch_size": len(group),
                       "body": self.runtime.redactor.text(
                           json.dumps(action.build_request(partner, [c.spec]).json))}
                for c in group}
        self._finish(group, outcomes, attempt, result)

    def _finish(self, group, outcomes, attempt, result: HttpResult | None = None) -> None:
        engine = self.runtime.engine
        results, transient = [], False
        schedule = self.runtime.config.retry_schedule(group[0].partner_id)
        for claimed, outcome in zip(group, outcomes, strict=True):
            if outcome.kind == "retry":
                transient = True
                delay = retry_delay(schedule, claimed.attempts + 1,
                                    result.retry_after if result else None)
                if delay is None:
                    results.append(Result(claimed.id, "dead",
                                          f"retry schedule ran out: {outcome.reason}"))
                else:
                    results.append(Result(claimed.id, "retrying", outcome.reason, now() + delay))
            elif outcome.kind in ("delivered", "skipped", "dead"):
                results.append(Result(claimed.id, outcome.kind, outcome.reason))
            else:
                raise ValueError(f"unknown outcome {outcome.kind!r}")
        self._record(results, attempt)
        partner_id, status, latency = group[0].partner_id, attempt.get("status"), attempt.get(
            "latency_ms")
        if attempt.get("request") and latency is not None:
            metrics.ATTEMPT_LATENCY.labels(partner=partner_id).observe(latency / 1000)
        for claimed, r in zip(group, results, strict=True):
            metrics.ATTEMPTS.labels(partner=partner_id, outcome=r.state).inc()
            log.info("delivery %s to %s, attempt %d: %s%s%s%s", r.delivery_id, partner_id,
                     claimed.attempts + 1, r.state, f", HTTP {status}" if status else "",
                     f", {latency:.0f} ms" if latency is not None else "",
                     f" ({r.reason})" if r.reason else "")
        first = group[0]
        circuit = queue.circuit_scope(first.partner_id, first.partner_key_id)
        if transient and all(r.state in ("retrying", "dead") for r in results):
            if queue.trip(engine, circuit, "open", attempt.get("error_message") or "failing",
                          threshold=self.policy.threshold, policy=self.policy):
                self._open_scopes.add(circuit)
                log.warning("circuit open for %s", circuit)
        else:
            scopes = [s for s in (circuit, queue.key_scope(first.partner_key_id or "-"))
                      if s in self._breaker_scopes]
            if scopes:
                queue.reset(engine, scopes)
                self._breaker_scopes -= set(scopes)
                self._open_scopes -= set(scopes)

    def _record_now(self, results: list[Result], attempt: dict) -> None:
        queue.record_many(self.runtime.engine, self.owner, [(results, attempt)])

    def _pause_key(self, group, reason: str, started_at: float) -> None:
        key_id = group[0].partner_key_id
        message = f"credentials refused for key {key_id}: {reason}"
        self._record([Result(c.id, "paused", message, now(), count_attempt=False) for c in group],
                     {"started_at": started_at, "error_code": "INVALID_CREDENTIALS",
                      "error_message": message})
        queue.trip(self.runtime.engine, queue.key_scope(key_id), "paused", message,
                   policy=self.policy)
        self._open_scopes.add(queue.key_scope(key_id))
        log.warning("key %s paused: %s", key_id, reason)


class Recorder(threading.Thread):
    """Writes attempt results in one transaction per few milliseconds instead of one per
    request: at hundreds of deliveries per second the store's write lock is the bottleneck."""

    def __init__(self, engine, owner: str, interval: float = 0.02):
        super().__init__(name="recorder", daemon=True)
        self.engine, self.owner, self.interval = engine, owner, interval
        self.items: SimpleQueue = SimpleQueue()
        self._stopping = threading.Event()

    def put(self, results: list[Result], attempt: dict) -> None:
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
                    queue.record_many(self.engine, self.owner, batch)
                    break
                except Exception:
                    failures += 1
                    log.exception("recording %d results failed (try %d)", len(batch), failures)
                    time.sleep(min(5.0, 0.2 * failures))

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)


def run_forever(runtime) -> None:
    worker = Worker(runtime)

    def stop(*_):
        worker.stop_event.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    worker.run()
