"""A poll's pages read one ahead of the page being stored, in order, failures after the pages
read before them, and no further once the scheduler stops."""

from __future__ import annotations

import threading

import pytest

from connector.delivery.readahead import read_ahead
from connector.testing import wait_until


def test_pages_come_in_order_and_end():
    assert list(read_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]


def test_the_next_page_is_read_while_one_is_handled():
    read = []

    def pages():
        for n in range(5):
            read.append(n)
            yield n

    handled = read_ahead(pages())
    assert next(handled) == 0
    wait_until(lambda: read == [0, 1], timeout=5, message="page 1 read while page 0 is handled")
    handled.close()


def test_at_most_one_page_is_read_ahead_of_the_one_handled():
    taken, ahead = [], []

    def pages():
        for n in range(50):
            ahead.append(n - len(taken))
            yield n

    for page in read_ahead(pages()):
        taken.append(page)
    assert taken == list(range(50))
    assert max(ahead) <= 1


def test_a_failure_comes_after_the_pages_read_before_it():
    def pages():
        yield "first"
        yield "second"
        raise RuntimeError("page 3 failed")

    handled = read_ahead(pages())
    assert [next(handled), next(handled)] == ["first", "second"]
    with pytest.raises(RuntimeError, match="page 3 failed"):
        next(handled)


def test_stopping_stops_the_reading_and_closes_the_source():
    read, closed = [], threading.Event()

    def pages():
        try:
            for n in range(100):
                read.append(n)
                yield n
        finally:
            closed.set()

    for page in read_ahead(pages()):
        if page == 2:
            break
    assert closed.wait(5)
    assert read in ([0, 1, 2], [0, 1, 2, 3])  # the one read ahead of page 2, at most
