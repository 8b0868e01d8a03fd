"""A repeatable reliability run against real processes: shuffled opt-ins/opt-outs for many
people, posted concurrently, while workers are SIGKILLed and the partner has an outage.
Used by tests/e2e/test_reliability.py (small) and bench/reliability.py (large)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from connector.contract import PENDING
from connector.outbox.engine import make_engine
from connector.outbox.tables import deliveries, events
from tests.conftest import referral_event
from tests.e2e.stack import Stack, wait_until

RELIABILITY_SETTINGS = {
    "retry_schedule": ["200ms", "500ms", "1s", "1s", "2s", "2s", "2s", "2s", "2s", "2s"],
    "worker": {"threads": 16, "http_timeout": "2s", "lease": "6s", "poll_interval": "50ms"},
    "breaker": {"threshold": 5, "probe_interval": "500ms", "max_probe_interval": "2s"},
}
BASE_TIME = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


def make_events(people: int, per_person: int, seed: int) -> tuple[list[dict], dict[str, str]]:
    rng = random.Random(seed)
    out, newest = [], {}
    for p in range(people):
        email = f"person{p}@example.com"
        for k in range(per_person):
            kind = rng.choice(["opt_in", "opt_out"])
            at = BASE_TIME + timedelta(seconds=k * 10 + rng.random())
            out.append(referral_event(f"r-{seed}-{p}-{k}", type=kind, email=email,
                                      event_time=at.isoformat()))
            newest[email] = kind
    rng.shuffle(out)
    return out, newest


def batches(items: list, rng: random.Random, largest: int = 40) -> list[list]:
    out, i = [], 0
    while i < len(items):
        size = rng.randint(1, largest)
        out.append(items[i:i + size])
        i += size
    return out


def post_all(stack: Stack, payloads: list[list[dict]], senders: int = 4) -> int:
    def post(batch):
        for _ in range(20):  # a 503 from a busy store is a retry for the sender, as for Extole
            response = stack.post_events(batch)
            if response.status_code == 202:
                body = response.json()
                return body["accepted"] + body["duplicates"]
            time.sleep(0.2)
        raise AssertionError(f"intake refused a batch: {response.status_code} {response.text}")

    with ThreadPoolExecutor(senders) as pool:
        return sum(pool.map(post, payloads))


def run(stack: Stack, people: int = 150, per_person: int = 4, kill_rounds: int = 3,
        outage_seconds: float = 4.0, seed: int = 7, workers: int = 2) -> dict:
    """Returns the figures of one run; the stack must be started with resubscribe: true."""
    rng = random.Random(seed)
    all_events, newest = make_events(people, per_person, seed)
    payloads = batches(all_events, rng)
    for _ in range(workers):
        stack.add_worker()

    kills = []

    def killer():
        for _ in range(kill_rounds):
            time.sleep(rng.uniform(0.3, 1.0))
            if stack.workers:
                stack.kill_worker(rng.choice(stack.workers))
                kills.append(time.time())
                stack.add_worker()

    # Phase 1: half the flood while workers are SIGKILLed and restarted.
    half = len(payloads) // 2
    started = time.time()
    killing = threading.Thread(target=killer)
    killing.start()
    sent = post_all(stack, payloads[:half])
    killing.join()

    # Phase 2: the partner answers 503 to everything while the other half arrives.
    outage = {"start": time.time()}
    stack.sandbox("POST", "/_sandbox/faults", json={"mode": "503", "ratio": 1.0})
    sent += post_all(stack, payloads[half:])
    time.sleep(max(0.0, outage["start"] + outage_seconds - time.time()))
    stack.sandbox("DELETE", "/_sandbox/faults")
    outage["end"] = time.time()

    engine = make_engine(stack.database_url)
    try:
        def drained():
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(deliveries)
                                    .where(deliveries.c.state.in_(PENDING))).scalar() == 0
        wait_until(drained, timeout=120, interval=0.5, message="backlog drained")
        finished = time.time()
        with engine.connect() as conn:
            stored_events = conn.execute(select(func.count()).select_from(events)).scalar()
            states = dict(conn.execute(select(deliveries.c.state, func.count())
                                       .group_by(deliveries.c.state)).all())
    finally:
        engine.dispose()

    state = stack.sandbox_state()
    contacts = state["lists"]["12345"]["contacts"]
    wrong = []
    for email, kind in newest.items():
        held = contacts.get(email, {}).get("subscriptionState")
        expected_ok = held == "Subscribed" if kind == "opt_in" else held in (None, "Unsubscribed")
        if not expected_ok:
            wrong.append((email, kind, held))
    times = [t for t in state["request_times"] if outage["start"] <= t <= outage["end"]]
    settled_times = [t for t in times if t >= outage["start"] + 1.0]
    from plugins.listrak.sandbox_faults import peak_rate

    delivered = states.get("delivered", 0) + states.get("skipped", 0)
    return {
        "events_sent": len(all_events),
        "events_acknowledged": sent,
        "events_stored": stored_events,
        "events_lost": len(all_events) - stored_events + states.get("dead", 0),
        "worker_kills": len(kills),
        "faults_injected": sum(state["faults_applied"].values()),
        "deliveries": states,
        "partner_requests": state["requests"]["total"],
        "requests_per_delivered_event": round(state["requests"]["total"] / max(1, delivered), 2),
        "contacts_wrong": len(wrong),
        "wrong_examples": wrong[:5],
        "outage_seconds": round(outage["end"] - outage["start"], 1),
        "outage_requests": len(times),
        "peak_requests_per_second_in_outage": peak_rate(times),
        # after the first second, once the circuit has opened: probes only
        "requests_per_second_in_outage_after_1s": round(
            len(settled_times) / max(0.001, outage["end"] - outage["start"] - 1.0), 2),
        "peak_requests_per_second_overall": state["peak_requests_per_second"],
        "seconds": round(finished - started, 1),
    }
