"""Runs pull sources: every worker checks each pull source about once a second, and the one
that takes its lease in the store polls it (one poller per source across all workers).

A poll yields pages; each page's events go through intake (planning, dedupe, the consent
rule) in one transaction with the cursor that follows them, so a poll that dies half-way
resumes after its last stored page, and a page read twice adds nothing (its events' ids are
already stored). A poll sends at most its source's `max_pages_per_poll` requests: past them it
stops early (not a failure) and the next poll, at the usual interval, goes on from there.
The source reads each page while the one before is stored (`readahead.py`)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from connector import metrics, storable
from connector.contract import Delivery, InvalidCredentials, PageBudgetSpent, Poll, PollFailed
from connector.delivery.readahead import read_ahead
from connector.outbox import pollers
from connector.outbox.engine import now
from connector.outbox.intake import ingest
from connector.outbox.pollers import LeaseLost
from connector.outbox.storing import Lease

log = logging.getLogger("connector.scheduler")


class PageTaker(Protocol):
    """A worker that sends the facts of a page the scheduler stores (`Worker`)."""

    def page_lease(self) -> Lease | None: ...

    def take(self, deliveries: list[Delivery]) -> None: ...


TICK = 1.0


@dataclass
class PollReport:
    source_id: str
    pages: int = 0  # pages stored
    rows_read: int = 0
    events: int = 0
    accepted: int = 0
    error: str | None = None
    lost: bool = False
    stopped_early: str | None = None  # why the poll ended before its source read everything

    @property
    def ok(self) -> bool:
        return self.error is None and not self.lost


class _LeaseKeeper(threading.Thread):
    """Extends a poll's lease while it runs, so a long poll keeps its source and a dead
    worker's poll is taken over within one lease."""

    def __init__(self, engine, source_id: str, owner: str, lease: float):
        super().__init__(name=f"lease-{source_id}", daemon=True)
        self.engine, self.source_id, self.owner, self.lease = engine, source_id, owner, lease
        self.done = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.done.wait(self.lease / 3):
            try:
                if not pollers.extend(self.engine, self.source_id, self.owner, self.lease):
                    self.lost = True
                    return
            except Exception:  # the store is busy: try again next round, the lease still runs
                log.exception("extending the poll lease of %s failed", self.source_id)


class _PageBudget:
    """The HTTP client as one poll sees it: `send` raises PageBudgetSpent once the poll has
    sent `pages` requests (token calls are the credentials' own and not counted)."""

    def __init__(self, http, pages: int):
        self.http, self.pages, self.sent = http, pages, 0

    def send(self, request, credentials=None):
        if self.sent >= self.pages:
            raise PageBudgetSpent(f"read {self.pages} pages, the most one poll may (max_pages_per_poll)")
        self.sent += 1
        return self.http.send(request, credentials)

    def __getattr__(self, name):  # everything else is the client's own
        return getattr(self.http, name)


class Scheduler:
    def __init__(self, runtime, owner: str):
        self.runtime = runtime
        self.owner = owner
        self.lease = runtime.config.settings["worker"]["lease"]
        self.stop_event = threading.Event()
        #: The worker whose loop sends the page facts it takes (`Worker.page_lease`, `take`);
        #: without one (`connector poll`, `worker --once`) they are queued to be claimed.
        self.taker: PageTaker | None = None

    def run(self) -> None:
        """The worker's scheduler thread: poll whatever is due until stopped."""
        while not self.stop_event.is_set():
            self.poll_due()
            self.stop_event.wait(TICK)

    def poll_due(self) -> list[PollReport]:
        reports = []
        for source_id in sorted(self.runtime.config.pull_sources):
            if self.stop_event.is_set():
                break
            try:
                report = self.poll(source_id, due_only=True)
            except Exception:  # the store is unavailable: the next tick tries again
                log.exception("scheduling a poll of %s failed", source_id)
                continue
            if report is not None:
                reports.append(report)
        return reports

    def poll(self, source_id: str, due_only: bool = False) -> PollReport | None:
        """Poll one source now if this worker can take its lease (and, with `due_only`, its
        next poll is due); None when it could not."""
        leased = pollers.acquire(self.runtime.engine, source_id, self.owner, self.lease, due_only=due_only)
        if leased is None:
            return None
        return self._poll(source_id, leased["cursor"])

    def _poll(self, source_id: str, cursor: dict | None) -> PollReport:
        runtime, engine = self.runtime, self.runtime.engine
        source_config = runtime.config.pull_sources[source_id]
        plugin = runtime.registry.pull_sources[source_config["plugin"]]
        interval = source_config["poll_interval"]
        started = now()
        report = PollReport(source_id)
        pollers.start_counts(engine, source_id, self.owner)
        keeper = _LeaseKeeper(engine, source_id, self.owner, self.lease)
        keeper.start()
        next_poll_at = started + interval
        http = _PageBudget(runtime.http, source_config["max_pages_per_poll"])
        try:
            pages = plugin.poll(
                source_config, cursor, started - source_config["lookback"], http, runtime.credentials
            )
            for page in read_ahead([pages] if isinstance(pages, Poll) else pages, f"read-{source_id}"):
                if keeper.lost:
                    raise LeaseLost(f"source {source_id}: lease lost during the poll")
                self._store(source_id, page, report)
        except PageBudgetSpent as exc:
            if report.pages:
                report.stopped_early = f"stopped early: {exc}; the next poll goes on from there"
            else:  # every poll would stop at the same place: a failure, so an operator sees it
                report.error = (
                    f"{exc} without storing a page: this source needs more pages per poll than "
                    "max_pages_per_poll allows (raise it)"
                )
        except LeaseLost as exc:
            report.lost = True
            log.warning("%s; this worker's poll stops", exc)
            return report
        except PollFailed as exc:
            report.error = runtime.redactor.text(str(exc))
            next_poll_at = now() + max(interval, exc.retry_after or 0.0)
        except InvalidCredentials as exc:
            report.error = runtime.redactor.text(f"credentials refused: {exc}")
        except Exception as exc:  # a plugin bug or the store: recorded, tried next interval
            log.exception("poll of %s failed", source_id)
            report.error = runtime.redactor.text(f"{type(exc).__name__}: {exc}")
        finally:
            keeper.done.set()
        report.error = storable.text(report.error)  # a partner's words in it: bounded, storable
        pollers.finish(engine, source_id, self.owner, next_poll_at, report.error, report.stopped_early)
        result = "failed" if not report.ok else "stopped_early" if report.stopped_early else "ok"
        metrics.POLLS.labels(source=source_id, result=result).inc()
        if report.error:
            log.warning(
                "poll of %s failed: %s (next try in %.0fs)", source_id, report.error, next_poll_at - now()
            )
        else:
            log.info(
                "poll of %s: %d rows, %d events, %d new%s",
                source_id,
                report.rows_read,
                report.events,
                report.accepted,
                f"; {report.stopped_early}" if report.stopped_early else "",
            )
        return report

    def _store(self, source_id: str, page: Poll, report: PollReport) -> None:
        runtime = self.runtime
        items = list(zip(page.events, runtime.plan_each(source_id, page.events), strict=True))

        def move_cursor(conn):
            pollers.save_cursor(
                conn, source_id, self.owner, page.cursor, page.rows_read, len(page.events), page.summary
            )

        taker = self.taker
        lease = taker.page_lease() if taker is not None else None
        result = ingest(runtime.engine, source_id, items, runtime.due_delays, also=move_cursor, lease=lease)
        if result.leased and taker is not None:
            taker.take(result.leased)
        report.pages += 1
        report.rows_read += page.rows_read
        report.events += len(page.events)
        report.accepted += result.accepted
        metrics.POLL_ROWS.labels(source=source_id).inc(page.rows_read)
        metrics.EVENTS_RECEIVED.labels(source=source_id, result="accepted").inc(result.accepted)
        metrics.EVENTS_RECEIVED.labels(source=source_id, result="duplicate").inc(result.duplicates)
