"""Load for reliability runs and benchmarks: events cut into webhook-sized batches, posted by
several senders at once, and the peak request rate of a list of request times."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from connector.testing.stack import wait_until


def batches(items: list, rng: random.Random, largest: int = 40) -> list[list]:
    """`items` in order, cut into batches of 1 to `largest` (sizes drawn from `rng`)."""
    out, i = [], 0
    while i < len(items):
        size = rng.randint(1, largest)
        out.append(items[i : i + size])
        i += size
    return out


def post_all(
    post: Callable[[list], requests.Response], payloads: list[list], senders: int = 4, patience: float = 30.0
) -> int:
    """Post every batch from `senders` threads; the number of events acknowledged (accepted or
    duplicate). A 503 from a busy store is a retry for the sender, as for a real source."""

    def send(batch: list) -> int:
        def answered():  # a 1-tuple: a refused Response is falsy
            response = post(batch)
            return None if response.status_code == 503 else (response,)

        (response,) = wait_until(
            answered, timeout=patience, interval=0.2, message="intake to take a batch (503: store busy)"
        )
        if response.status_code != 202:
            raise AssertionError(f"intake refused a batch: {response.status_code} {response.text}")
        body = response.json()
        return body["accepted"] + body["duplicates"]

    with ThreadPoolExecutor(senders) as pool:
        return sum(pool.map(send, payloads))


def peak_rate(times: list[float], window: float = 1.0) -> int:
    """Most requests seen in any `window`-second span."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
