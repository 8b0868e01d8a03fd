"""Refused inbound requests, for people on call: counted per source and reason in /metrics, and
the last MAX_KEPT listed in the Live View and the admin API (time, source, status, reason;
never the body or headers).

Refusals are what anyone can send for free, so a refusal costs no store write: each web
process keeps its own in a ring (and its counts) and a thread writes what came in at most every
FLUSH_SECONDS, in one transaction that adds the counts to `inbound_refusal_counts` and forgets
all but the newest MAX_KEPT of the list. Both are read from the store, so every gunicorn process
answers the same (the one answering a Live View request or a scrape writes its own first, the
others' arrive within a second or so)."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import Counter, deque

from sqlalchemy import delete, func, insert, select

from connector.fields import has_control_characters
from connector.outbox.engine import dialect_insert, reading
from connector.outbox.tables import inbound_refusal_counts, inbound_refusals
from connector.web.readmodel import iso

log = logging.getLogger("connector.webhooks")
MAX_KEPT = 1000
FLUSH_SECONDS = 1.0
MAX_REASON = 300
#: The source label of a request to a source no config file names (the label set stays bounded).
UNKNOWN_SOURCE = "(unknown)"


class RefusalLog:
    """One per app (web process): `refused` from the request path, `recent` for pages."""

    def __init__(self, engine, redactor=None):
        self.engine, self.redactor = engine, redactor
        self._lock = threading.Lock()
        self._pending: deque[dict] = deque(maxlen=MAX_KEPT)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._pid: int | None = None

    def refused(self, source_id: str | None, status: int, error: str, message: str) -> None:
        """Count one refusal and keep it for the list; `source_id` None: no such source."""
        source_id = source_id or UNKNOWN_SOURCE
        reason = f"{error}: {message}" if message else error
        if self.redactor is not None:
            reason = self.redactor.text(reason)
        if has_control_characters(reason) or len(reason) > MAX_REASON:
            reason = "".join(" " if has_control_characters(c) else c for c in reason[:MAX_REASON])
        row = {"at": time.time(), "source_id": source_id, "status": status, "reason": reason}
        with self._lock:
            self._pending.append(row)
            self._counts[(source_id, error)] += 1
            first = self._pid != os.getpid()  # of this process (gunicorn forks)
            self._pid = os.getpid()
        if first:
            _watch(self)

    def flush(self) -> int:
        """Write what this process kept since the last flush; returns how many rows."""
        with self._lock:
            rows, self._pending = list(self._pending), deque(maxlen=MAX_KEPT)
            counts, self._counts = self._counts, Counter()
        if not rows:
            return 0
        try:
            self._write(rows, counts)
        except Exception:
            # The store was busy or gone: keep them for the next flush (the newest, up to
            # the list's length) so no refusal goes uncounted.
            with self._lock:
                self._pending = deque([*rows, *self._pending], maxlen=MAX_KEPT)
                self._counts.update(counts)
            raise
        return len(rows)

    def _write(self, rows: list[dict], counts: Counter[tuple[str, str]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(inbound_refusals), rows)
            newest = select(inbound_refusals.c.at).order_by(inbound_refusals.c.at.desc())
            cut = newest.limit(1).offset(MAX_KEPT - 1).scalar_subquery()
            conn.execute(delete(inbound_refusals).where(inbound_refusals.c.at < cut))
            add = dialect_insert(conn.dialect.name)(inbound_refusal_counts)
            conn.execute(
                add.on_conflict_do_update(
                    index_elements=["source_id", "reason"],
                    set_={"count": inbound_refusal_counts.c.count + add.excluded.count},
                ),
                [{"source_id": s, "reason": r[:128], "count": n} for (s, r), n in sorted(counts.items())],
            )

    def counts(self) -> dict[tuple[str, str], int]:
        """{(source, reason): requests refused}, every process's, this one's unwritten included."""
        written = self._flush_or_keep()
        with reading(self.engine) as conn:
            counts = Counter({(s, r): n for s, r, n in conn.execute(select(inbound_refusal_counts))})
        if not written:
            with self._lock:
                counts.update(self._counts)
        return dict(counts)

    def _flush_or_keep(self) -> bool:
        """Flush for a page; if the store refuses the write, the page shows what it has."""
        try:
            self.flush()
        except Exception as exc:
            log.warning("could not write the refused requests' list: %s", type(exc).__name__)
            return False
        return True

    def recent(self, limit: int = MAX_KEPT) -> list[dict]:
        """The newest refusals first; this process's unwritten ones are written first."""
        self._flush_or_keep()
        query = select(inbound_refusals).order_by(inbound_refusals.c.at.desc(), inbound_refusals.c.id.desc())
        with reading(self.engine) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [
            {"at": iso(row.at), "source": row.source_id, "status": row.status, "reason": row.reason}
            for row in rows
        ]

    def count_since(self, at: float) -> int:
        """How many requests were refused since `at` (UNIX seconds), of those kept."""
        self._flush_or_keep()
        query = select(func.count()).select_from(inbound_refusals).where(inbound_refusals.c.at >= at)
        with reading(self.engine) as conn:
            return conn.execute(query).scalar()


#: Every log with refusals in this process, written by one thread.
_logs: weakref.WeakSet[RefusalLog] = weakref.WeakSet()
_writer_pid: int | None = None
_writer_lock = threading.Lock()


def _watch(refusal_log: RefusalLog) -> None:
    global _writer_pid
    with _writer_lock:
        _logs.add(refusal_log)
        if _writer_pid != os.getpid():
            _writer_pid = os.getpid()
            threading.Thread(
                target=_write_every, args=(FLUSH_SECONDS,), name="refusal-log", daemon=True
            ).start()


def _write_every(seconds: float) -> None:
    while True:
        time.sleep(seconds)
        with _writer_lock:
            logs = list(_logs)
        for refusal_log in logs:
            try:
                refusal_log.flush()
            except Exception as exc:  # the store is busy or gone: they wait for the next round
                log.warning("could not write the refused requests' list: %s", type(exc).__name__)
