"""Retry timing, the worker's refusal to send on a lease that may run out mid-request, and the
circuit that stops requests to a failing partner until its probe."""

import dataclasses
import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from connector.contract import HttpResult
from connector.delivery import outcomes
from connector.delivery.outcomes import MAX_RETRY_AFTER, retry_delay
from connector.delivery.worker import Worker
from connector.testing import wait_until
from connector.testing.store import after_planning, stored_deliveries
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API


@pytest.fixture
def jitter(monkeypatch):
    """Pins the schedule's random factor to the low or the high end of its range."""

    def pin(end: str) -> None:
        pick = {"low": lambda low, high: low, "high": lambda low, high: high}[end]
        monkeypatch.setattr(outcomes, "random", SimpleNamespace(uniform=pick))

    return pin


@pytest.mark.parametrize(("end", "delays"), [("low", [8.0, 48.0]), ("high", [12.0, 72.0])])
def test_each_step_of_the_schedule_is_jittered_by_a_fifth(jitter, end, delays):
    jitter(end)
    assert [retry_delay([10.0, 60.0], n, retry_after=None) for n in (1, 2)] == delays


def test_retry_after_is_a_floor_on_the_schedule_not_a_replacement(jitter):
    jitter("low")
    assert retry_delay([600.0], 1, retry_after=1.0) == 480.0
    assert retry_delay([1.0], 1, retry_after=120.0) == 120.0
    assert retry_delay([1.0], 1, retry_after=10.0**9) == MAX_RETRY_AFTER


def test_schedule_running_out_gives_no_delay():
    assert retry_delay([1.0, 10.0], 3, retry_after=None) is None


def test_claim_whose_lease_is_nearly_gone_is_released_not_sent(
    post_events, runtime, requests_mock, listrak_token
):
    contact = requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={})
    assert post_events(referral_event("w-1")).status_code == 202
    worker = Worker(runtime)
    (group,) = worker.claim_groups(1)
    stale = [dataclasses.replace(group[0], leased_until=group[0].leased_until - 3600)]
    worker.deliver_group(stale)
    assert contact.call_count == 0
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert delivery["state"] == "queued"
    assert delivery["lease_owner"] is None
    assert worker.run_once() == 1
    assert contact.call_count == 1


def test_open_circuit_stops_requests_until_its_probe(
    post_events, runtime, requests_mock, listrak_token, clock
):
    breaker = runtime.config.settings["breaker"]
    threshold = breaker["threshold"]
    contact = requests_mock.post(f"{API}/List/12345/Contact", status_code=503, json={})
    people = [referral_event(f"o-{i}", email=f"p{i}@example.com") for i in range(2 * threshold)]
    assert post_events(people).status_code == 202

    Worker(runtime).run_once()
    assert contact.call_count == threshold  # then the circuit is open: the rest go back
    assert Counter(
        (d["state"], d["attempts"], d["lease_owner"]) for d in stored_deliveries(after_planning(runtime))
    ) == {
        ("retrying", 1, None): threshold,
        ("queued", 0, None): threshold,
    }

    clock.advance(breaker["probe_interval"] - 1)
    Worker(runtime).run_once()
    assert contact.call_count == threshold
    clock.advance(1)
    Worker(runtime).run_once()
    assert contact.call_count == threshold + 1  # one probe, refused: open again

    recovered = requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={})
    clock.advance(2 * breaker["probe_interval"])
    Worker(runtime).run_once()  # the probe gets through: the circuit closes, everything goes
    assert recovered.call_count == 2 * threshold
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["delivered"] * 2 * threshold


def test_more_groups_under_way_than_threads_never_put_more_requests_on_the_wire(post_events, runtime):
    runtime.config.settings["worker"]["threads"] = 2
    people = [referral_event(f"f-{i}", email=f"f{i}@example.com") for i in range(3)]
    assert post_events(people).status_code == 202
    gate, lock = threading.Event(), threading.Lock()
    wire = {"now": 0, "most": 0, "sent": 0}

    def send(request, credentials=None):
        with lock:
            wire["now"] += 1
            wire["most"] = max(wire["most"], wire["now"])
        gate.wait(10)
        with lock:
            wire["now"] -= 1
            wire["sent"] += 1
        return HttpResult(status=201, latency_ms=1.0, body={})

    runtime.http.send = send
    worker = Worker(runtime)
    started = []
    deliver_group = worker.deliver_group
    worker.deliver_group = lambda group: (started.append(group), deliver_group(group))
    running = threading.Thread(target=worker.run)
    running.start()
    try:
        # three groups under way (threads + threads // 2), two of them on the wire
        wait_until(lambda: len(started) == 3 and wire["now"] == 2, message="three groups, two requests")
        gate.set()
        wait_until(lambda: wire["sent"] == 3, message="all three sent")
    finally:
        gate.set()
        worker.stop_event.set()
        running.join(10)
    assert wire["most"] == 2
    wait_until(lambda: [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["delivered"] * 3)


def test_group_whose_turn_on_the_wire_comes_too_late_for_its_lease_is_released_not_sent(
    post_events, runtime, requests_mock, listrak_token, clock
):
    contact = requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={})
    assert post_events(referral_event("w-2")).status_code == 202
    worker = Worker(runtime)
    (group,) = worker.claim_groups(1)
    settings = runtime.config.settings["worker"]

    class LateTurn:  # every other request slot stayed busy until the lease ran short
        def __enter__(self):
            clock.advance(settings["lease"] - settings["http_timeout"])

        def __exit__(self, *exc):
            return False

    worker.boundary.in_flight = LateTurn()
    worker.deliver_group(group)
    assert contact.call_count == 0
    (delivery,) = stored_deliveries(after_planning(runtime))
    assert (delivery["state"], delivery["attempts"], delivery["lease_owner"]) == ("queued", 0, None)
