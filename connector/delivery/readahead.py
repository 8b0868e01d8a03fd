"""A poll's pages read one ahead: the source reads (a request, its events built) the next page
in a thread of its own while the scheduler stores the one before. Otherwise reading and
storing take turns, and on SQLite most of storing waits on the store with the GIL let go."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_END = object()
#: After the scheduler stops, how long the reading thread is waited for (it may be inside a
#: request, bounded by the HTTP client's timeout; it stops before reading another page).
STOP_WAIT = 1.0


def read_ahead(pages: Iterable, name: str = "poll-reader") -> Iterator:
    """The items of `pages`, each read while the caller handles the one before: at most one
    read ahead. What reading raises comes after the items read before it; a caller that stops
    early (breaks, raises, closes) stops the reading before its next item."""
    handoff: queue.Queue = queue.Queue()
    may_read = threading.Semaphore(0)  # the caller took the last item: read the next
    stop = threading.Event()

    def read() -> None:
        items = iter(pages)
        try:
            while True:
                try:
                    item = next(items)
                except StopIteration:
                    handoff.put((_END, None))
                    return
                handoff.put((item, None))
                may_read.acquire()
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the caller, in order
            handoff.put((None, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        while True:
            item, exc = handoff.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            may_read.release()
            yield item
    finally:
        stop.set()
        may_read.release()
        reader.join(STOP_WAIT)
