"""Test helpers for the Listrak plugin (Email and SMS API v1, OAuth2 client credentials): the URLs
and environment unit tests mock, the sandbox as a part of a connector.testing stack (`Sandbox`),
and the consent-order reliability run (email and SMS consent) shared by tests and benchmarks."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import cast

import requests

from connector.testing import (
    Part,
    Sidecar,
    Stack,
    StoreReader,
    batches,
    free_port,
    peak_rate,
    post_all,
    wait_until,
)

API = "https://api.listrak.test/email/v1"
SMS_API = "https://api.listrak.test/sms/v1"
TOKEN_URL = "https://auth.listrak.test/OAuth2/Token"
TEST_ENV = {  # unit tests: requests_mock answers at API, SMS_API and TOKEN_URL
    "LISTRAK_CLIENT_ID": "prod-client",
    "LISTRAK_CLIENT_SECRET": "prod-secret-value",
    "LISTRAK_STAGING_CLIENT_ID": "staging-client",
    "LISTRAK_STAGING_CLIENT_SECRET": "staging-secret-value",
    "LISTRAK_SMS_CLIENT_ID": "sms-client",
    "LISTRAK_SMS_CLIENT_SECRET": "sms-secret-value",
    "LISTRAK_AUTH_URL": TOKEN_URL,
    "LISTRAK_API_URL": API,
    "LISTRAK_SMS_API_URL": SMS_API,
}
SANDBOX_CLIENTS_ENV = {  # the sandbox's DEFAULT_CLIENTS and DEFAULT_SMS_CLIENTS
    "LISTRAK_CLIENT_ID": "sandbox-client",
    "LISTRAK_CLIENT_SECRET": "sandbox-secret",
    "LISTRAK_STAGING_CLIENT_ID": "sandbox-staging-client",
    "LISTRAK_STAGING_CLIENT_SECRET": "sandbox-staging-secret",
    "LISTRAK_SMS_CLIENT_ID": "sandbox-sms-client",
    "LISTRAK_SMS_CLIENT_SECRET": "sandbox-sms-secret",
}
#: The example config's Listrak activity → Segment flow: a pull source polling the Listrak
#: sandbox and the partner it feeds. Stacks leave it out unless they keep it.
ACTIVITY_FLOW = ("sources/listrak-activity.yaml", "partners/segment.yaml", "keys/segment-production.yaml")


class Sandbox(Part):
    """Listrak in a connector.testing stack: the sandbox (`connector sandbox`) on a free port as
    the partner (Email and SMS APIs), its default clients as the keys. The example's activity
    flow (ACTIVITY_FLOW) is left out unless a stack keeps it, so the sandbox sees only what a
    test causes (its faults, its request counts)."""

    def __init__(self, port: int | None = None):
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        super().__init__(
            sidecars=[
                Sidecar(
                    "sandbox",
                    [sys.executable, "-m", "connector.cli", "sandbox", "--port", str(port)],
                    f"{self.url}/_sandbox/state",
                )
            ],
            env={
                **SANDBOX_CLIENTS_ENV,
                "LISTRAK_AUTH_URL": f"{self.url}/OAuth2/Token",
                "LISTRAK_API_URL": f"{self.url}/email/v1",
                "LISTRAK_SMS_API_URL": f"{self.url}/sms/v1",
            },
            left_out=ACTIVITY_FLOW,
        )

    def state(self) -> dict:
        """The sandbox's /_sandbox/state: contacts per list, request counts, faults."""
        return requests.get(f"{self.url}/_sandbox/state", timeout=10).json()

    def request_counts(self) -> dict:
        """The sandbox's request counts (`requests` of its state, without the contacts)."""
        return requests.get(f"{self.url}/_sandbox/requests", timeout=10).json()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", timeout=10, **kwargs)


# -- the reliability run ----------------------------------------------------------------------
# Shuffled opt-ins/opt-outs for many people, posted concurrently, while workers are SIGKILLed
# and the partner has an outage. Used by tests/e2e/test_reliability.py (small) and
# bench/reliability.py (large).

RELIABILITY_SETTINGS = {
    "retry_schedule": ["200ms", "500ms", "1s", "1s", "2s", "2s", "2s", "2s", "2s", "2s"],
    "worker": {"threads": 16, "http_timeout": "2s", "lease": "6s", "poll_interval": "50ms"},
    "breaker": {"threshold": 5, "probe_interval": "500ms", "max_probe_interval": "2s"},
}
BASE_TIME = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
ATTEMPTS_BETWEEN_KILLS = 10


def phone_of(person: int) -> str:
    """Person p's number, as digits with the country code."""
    return f"1555{person:07d}"


#: (event_id, type=, email=, event_time=, phone_number=) → an event of the primary sender; the
#: caller gives it (plugins.extole.testing.referral_event for the example config).
EventMaker = Callable[..., dict]


def make_events(
    people: int,
    per_person: int,
    seed: int,
    make_event: EventMaker,
    channels: tuple[str, ...] = ("email",),
) -> tuple[list[dict], dict[str, str]]:
    """Shuffled referral events, and the newest kind (opt_in or opt_out) per address — an email
    for email consent, a number for SMS consent: what Listrak must end with. With both channels
    a person has both, each with its own events and times."""
    rng = random.Random(seed)
    out, newest = [], {}
    for p in range(people):
        email = f"person{p}@example.com"
        for channel in channels:
            for k in range(per_person):
                kind = rng.choice(["opt_in", "opt_out"])
                at = BASE_TIME + timedelta(seconds=k * 10 + rng.random())
                if channel == "email":
                    event = make_event(f"r-{seed}-{p}-{k}", type=kind, email=email, event_time=at.isoformat())
                    newest[email] = kind
                else:
                    event = make_event(
                        f"r-{seed}-{p}-sms-{k}",
                        type=f"sms_{kind}",
                        email=email,
                        event_time=at.isoformat(),
                        phone_number=f"+{phone_of(p)}",
                    )
                    newest[phone_of(p)] = kind
                out.append(event)
    rng.shuffle(out)
    return out, newest


def held(state: dict, address: str) -> str | None:
    """What the sandbox holds for an address: its state on the example's email list (12345),
    or for a number on the example's SMS list (456 of sender code 123); None: not there."""
    if "@" in address:
        contacts = state["lists"]["12345"]["contacts"]
    else:
        contacts = state["sms"]["123"]["phoneLists"]["456"]["contacts"]
    return contacts.get(address, {}).get("subscriptionState")


def wrong_addresses(state: dict, newest: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """Addresses whose state in the sandbox is not what their newest event says (an opt-out
    may leave an address Listrak never had: not there is right)."""
    wrong = []
    for address, kind in newest.items():
        found = held(state, address)
        if not (found == "Subscribed" if kind == "opt_in" else found in (None, "Unsubscribed")):
            wrong.append((address, kind, found))
    return wrong


def kill_workers(stack: Stack, store: StoreReader, rounds: int, rng: random.Random, posted) -> list[float]:
    """SIGKILL a random worker and start another, `rounds` times, each once the workers have
    made progress since the last (or have nothing left to do). When each kill happened."""
    kills = []
    for _ in range(rounds):
        seen = store.attempt_count()
        wait_until(
            lambda seen=seen: (
                store.attempt_count() >= seen + ATTEMPTS_BETWEEN_KILLS
                or (posted.is_set() and store.pending() == 0)
            ),
            timeout=60,
            interval=0.05,
            message="deliveries between worker kills",
        )
        stack.kill_worker(rng.choice(stack.workers))
        kills.append(time.time())
        stack.add_worker()
    return kills


def circuit_open(store: StoreReader) -> bool:
    return any(b["state"] == "open" for b in store.breakers().values())


def run(
    stack: Stack,
    make_event: EventMaker,
    people: int = 150,
    per_person: int = 4,
    kill_rounds: int = 3,
    outage_seconds: float = 4.0,
    seed: int = 7,
    workers: int = 2,
    channels: tuple[str, ...] = ("email",),
    replayed_share: float = 0.0,
) -> dict:
    """Returns the figures of one run; the stack must be started with resubscribe: true.
    `channels` are email and/or sms consent; `replayed_share` of the first half's requests are
    sent again during the outage, as captured requests would be (duplicates). Request rates
    come from the attempt log (when each request started)."""
    rng = random.Random(seed)
    all_events, newest = make_events(people, per_person, seed, make_event, channels)
    sandbox = cast(Sandbox, stack.part("listrak"))
    payloads = batches(all_events, rng)
    for _ in range(workers):
        stack.add_worker()
    store = StoreReader(stack.database_url)
    try:
        # Phase 1: half the flood while workers are SIGKILLed and restarted.
        half = len(payloads) // 2
        started = time.time()
        with ThreadPoolExecutor(1) as pool:
            posted = threading.Event()
            killing = pool.submit(kill_workers, stack, store, kill_rounds, rng, posted)
            try:
                sent = post_all(stack.post_events, payloads[:half])
            finally:
                posted.set()
            kills = killing.result()

        # Phase 2: the partner answers 503 to everything while the other half arrives, until
        # the circuit has opened and `outage_seconds` have passed.
        outage_start = time.time()
        sandbox.request("POST", "/_sandbox/faults", json={"mode": "503", "ratio": 1.0})
        sent += post_all(stack.post_events, payloads[half:])
        replayed = rng.sample(payloads[:half], int(half * replayed_share))
        replays_acknowledged = post_all(stack.post_events, replayed)
        wait_until(
            lambda: time.time() >= outage_start + outage_seconds and circuit_open(store),
            timeout=outage_seconds + 30,
            interval=0.05,
            message="the outage's end",
        )
        sandbox.request("DELETE", "/_sandbox/faults")
        outage_end = time.time()

        wait_until(lambda: store.pending() == 0, timeout=120, interval=0.5, message="backlog drained")
        finished = time.time()
        stored_events, states = store.event_count(), store.delivery_states()
        outage_times = store.request_times(outage_start, outage_end)
        all_times = store.request_times(started)
    finally:
        store.close()

    state = sandbox.state()
    wrong = wrong_addresses(state, newest)
    settled_times = [t for t in outage_times if t >= outage_start + 1.0]
    delivered = states.get("delivered", 0) + states.get("skipped", 0)
    return {
        "events_sent": len(all_events),
        "events_acknowledged": sent,
        "events_stored": stored_events,
        "events_lost": len(all_events) - stored_events + states.get("dead", 0),
        "events_replayed": sum(len(batch) for batch in replayed),
        "replays_acknowledged": replays_acknowledged,
        "worker_kills": len(kills),
        "faults_injected": sum(state["faults_applied"].values()),
        "deliveries": states,
        "partner_requests": state["requests"]["total"],
        "requests_per_delivered_event": round(state["requests"]["total"] / max(1, delivered), 2),
        "contacts_wrong": len(wrong),
        "wrong_examples": wrong[:5],
        "outage_seconds": round(outage_end - outage_start, 1),
        "outage_requests": len(outage_times),
        "peak_requests_per_second_in_outage": peak_rate(outage_times),
        # after the first second, once the circuit has opened: probes only
        "requests_per_second_in_outage_after_1s": round(
            len(settled_times) / max(0.001, outage_end - outage_start - 1.0), 2
        ),
        "peak_requests_per_second_overall": peak_rate(all_times),
        "seconds": round(finished - started, 1),
    }
