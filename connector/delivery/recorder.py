"""Writes attempt results in one transaction per few milliseconds instead of one per request:
at hundreds of deliveries per second the store's write lock is the bottleneck.

One result must never hold up the others. When a batch cannot be stored, the store tells why:
a store that is down (an OperationalError: locked, unreachable, restarting) is waited for and
the same batch tried again; any other refusal is about the data of some row, so the batch is
split in halves until the attempt at fault stands alone, and that one is set aside: its
deliveries still get their outcomes (a delivery the partner took is never sent again), with an
attempt-log row that says what was set aside and why instead of what the partner answered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue

from sqlalchemy import exc as db

from connector import storable
from connector.contract import Attempt, Result
from connector.outbox.attempts import record_many

log = logging.getLogger("connector.worker")

Item = tuple[list[Result], Attempt]
SET_ASIDE = "SET_ASIDE"
#: After stop(), how long a store that is down is still waited for before the results left
#: are given up (their leases run out and they are tried again): SIGTERM must end promptly.
STOP_GRACE = 3.0
LONGEST_WAIT = 5.0


def store_is_down(exc: BaseException) -> bool:
    """A failure of the store itself (worth waiting for), not of the rows it was given."""
    if isinstance(exc, db.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, db.OperationalError | db.DisconnectionError | db.TimeoutError)


def why(exc: BaseException) -> str:
    """The driver's own words, on one line (SQLAlchemy's text adds the statement and its
    parameters: partner text, which is what could not be stored)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return storable.cut(storable.clean(f"{type(cause).__name__}: {first}".rstrip(": ")), 300)


def set_aside(item: Item, exc: BaseException) -> Item:
    """The attempt with nothing of the answer left but its status and latency, and the
    reason it was set aside: what any store takes."""
    results, attempt = item
    note = f"the attempt's record could not be stored and was set aside ({why(exc)}); the outcome stands"
    plain = Attempt(
        started_at=attempt.started_at,
        status=attempt.status if type(attempt.status) is int else None,
        error_code=SET_ASIDE,
        error_message=note,
        latency_ms=attempt.latency_ms if type(attempt.latency_ms) in (int, float) else None,
    )
    return [Result(r.delivery_id, r.state, note, r.next_attempt_at, r.count_attempt) for r in results], plain


Wait = Callable[[int, BaseException], bool]


def record_all(engine, owner: str, items: list[Item], wait: Wait) -> list[Item]:
    """Record `items`, isolating and setting aside any attempt the store refuses. While the
    store is down, `wait(failures, exc)` is called before each new try; when it returns
    False the items not recorded yet are returned (else [])."""
    pending: list[tuple[list[Item], bool]] = [(items, False)]  # (part, already set aside)
    failures = 0
    while pending:
        part, plain = pending.pop()
        try:
            record_many(engine, owner, part)
            failures = 0
        except Exception as exc:
            if store_is_down(exc):
                failures += 1
                pending.append((part, plain))
                if not wait(failures, exc):
                    return [item for left, _ in reversed(pending) for item in left]
            elif len(part) > 1:
                half = len(part) // 2
                pending += [(part[half:], plain), (part[:half], plain)]  # the first half next
            elif not plain:
                (item,) = part
                ids = [r.delivery_id for r in item[0]]
                log.error("attempt of deliveries %s set aside: the store refused it (%s)", ids, why(exc))
                pending.append(([set_aside(item, exc)], True))
            else:  # even the plain record is refused (its delivery is gone): nothing to keep
                ids = [r.delivery_id for r in part[0][0]]
                log.error("results of deliveries %s not recorded: %s", ids, why(exc))
    return []


class Recorder(threading.Thread):
    def __init__(self, engine, owner: str, interval: float = 0.02):
        super().__init__(name="recorder", daemon=True)
        self.engine, self.owner, self.interval = engine, owner, interval
        self.items: SimpleQueue = SimpleQueue()
        self._stopping = threading.Event()
        self._give_up_at = float("inf")

    def put(self, results: list[Result], attempt: Attempt) -> None:
        self.items.put((results, attempt))

    def run(self) -> None:
        while not (self._stopping.is_set() and self.items.empty()):
            try:
                batch = [self.items.get(timeout=self.interval)]
            except Empty:
                continue
            # What else comes within the interval goes in the same transaction: taking only
            # what was queued already recorded one or two results a transaction at 300 a second.
            until = time.monotonic() + self.interval
            while len(batch) < 500:
                try:
                    batch.append(self.items.get(timeout=max(0.0, until - time.monotonic())))
                except Empty:
                    break
            left = record_all(self.engine, self.owner, batch, self._wait)
            if left:
                self._give_up(left)

    def _wait(self, failures: int, exc: BaseException) -> bool:
        """The store is down: wait a little longer each time, until stopped and out of grace."""
        log.warning("recording results: the store is unavailable (try %d): %s", failures, why(exc))
        delay = min(LONGEST_WAIT, 0.2 * failures, self._give_up_at - time.monotonic())
        if delay <= 0:
            return False
        time.sleep(delay)
        return time.monotonic() < self._give_up_at

    def _give_up(self, left: list[Item]) -> None:
        ids = [r.delivery_id for results, _ in left for r in results]
        while not self.items.empty():
            ids += [r.delivery_id for r in self.items.get_nowait()[0]]
        log.error(
            "stopping with %d results unrecorded (the store is unavailable); their leases run out "
            "and they are tried again: deliveries %s",
            len(ids),
            ids[:50],
        )

    def stop(self) -> None:
        self._give_up_at = time.monotonic() + STOP_GRACE
        self._stopping.set()
        self.join(timeout=STOP_GRACE + LONGEST_WAIT + 5)
