"""The retry policy, in the core: how an answer becomes a verdict when the plugin leaves it
to us, and how verdicts become results on the retry schedule."""

from __future__ import annotations

import random

from connector.contract import Delivery, HttpResult, Result, State, Verdict

RETRIABLE_STATUS = {408, 425, 429}
MAX_RETRY_AFTER = 86400.0


def default_verdict(result: HttpResult) -> Verdict:
    """2xx delivered; 408, 425, 429, 5xx and no answer retrying; 401 (after a fresh token)
    retrying; a 3xx dead (never followed: the partner did not get the change); every other
    status dead."""
    if result.ok:
        return Verdict(State.DELIVERED)
    if result.status is not None and 300 <= result.status < 400:
        return Verdict(
            State.DEAD, result.error or f"partner answered a redirect (HTTP {result.status}); not followed"
        )
    if result.status is None or result.status in RETRIABLE_STATUS or result.status >= 500:
        return Verdict(State.RETRYING, result.error or f"HTTP {result.status}")
    if result.status == 401:
        return Verdict(State.RETRYING, "unauthorized after a fresh token")
    return Verdict(State.DEAD, f"HTTP {result.status}")


def retry_delay(schedule: list[float], attempt_number: int, retry_after: float | None) -> float | None:
    """Seconds until the next try, or None when the schedule has run out."""
    if attempt_number > len(schedule):
        return None
    delay = schedule[attempt_number - 1] * random.uniform(0.8, 1.2)
    if retry_after is not None:
        # A floor, not a replacement: "Retry-After: 1" must not burn the schedule in seconds.
        return max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def results_for(
    group: list[Delivery],
    verdicts: list[Verdict],
    schedule: list[float],
    retry_after: float | None,
    at: float,
) -> list[Result]:
    """One result per delivery: a retrying verdict waits its turn on the schedule, or is dead
    once the schedule has run out."""
    results = []
    for delivery, verdict in zip(group, verdicts, strict=True):
        # A plugin may give the state as its text; most give the member (State() costs ~1 µs).
        state = verdict.state if isinstance(verdict.state, State) else State(verdict.state)
        if state is State.RETRYING:
            delay = retry_delay(schedule, delivery.attempts + 1, retry_after)
            if delay is None:
                results.append(Result(delivery.id, State.DEAD, f"retry schedule ran out: {verdict.reason}"))
            else:
                results.append(Result(delivery.id, State.RETRYING, verdict.reason, at + delay))
        elif state in (State.DELIVERED, State.SKIPPED, State.DEAD):
            results.append(Result(delivery.id, state, verdict.reason))
        else:
            raise ValueError(f"an action cannot decide {state.value!r}")
    return results
