"""/metrics (Prometheus text format) moves as events are received and delivered."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from connector.contract import CircuitScope, KeyScope
from connector.delivery.worker import Worker
from connector.outbox import breakers as outbox_breakers
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API


def scrape(client) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one /metrics scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_events_through_delivery(client, post_events, runtime, requests_mock, listrak_token):
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    before = scrape(client)

    assert (
        post_events([referral_event("m-1"), referral_event("m-2", email="b@example.com")]).status_code == 202
    )
    post_events(referral_event("m-1"))
    post_events(referral_event("m-3"), secret="wrong")
    queued = scrape(client)
    received = "connector_events_received_total"
    assert (
        value(queued, received, source="extole", result="accepted")
        - value(before, received, source="extole", result="accepted")
        == 2
    )
    assert (
        value(queued, received, source="extole", result="duplicate")
        - value(before, received, source="extole", result="duplicate")
        == 1
    )
    assert (
        value(queued, received, source="extole", result="unauthorized")
        - value(before, received, source="extole", result="unauthorized")
        == 1
    )
    assert value(queued, "connector_deliveries", partner="listrak", outcome="queued") == 2
    assert value(queued, "connector_queue_depth", partner="listrak") == 2

    assert Worker(runtime).run_once() == 2
    after = scrape(client)
    assert value(after, "connector_deliveries", partner="listrak", outcome="queued") == 0
    assert value(after, "connector_deliveries", partner="listrak", outcome="delivered") == 2
    assert value(after, "connector_queue_depth", partner="listrak") == 0
    assert value(after, "connector_oldest_due_seconds") == 0
    attempts = "connector_attempts_total"
    assert (
        value(after, attempts, partner="listrak", outcome="delivered")
        - value(before, attempts, partner="listrak", outcome="delivered")
        == 2
    )
    latency = "connector_attempt_latency_seconds_count"
    assert value(after, latency, partner="listrak") - value(before, latency, partner="listrak") == 2
    fetches = "connector_token_fetches_total"
    assert (
        value(after, fetches, key="listrak-production", result="ok")
        - value(before, fetches, key="listrak-production", result="ok")
        == 1
    )


def test_metrics_show_the_age_of_the_oldest_due_delivery(client, post_events, clock):
    post_events(referral_event("a", email="a@example.com"))
    clock.advance(30)
    post_events(referral_event("b", email="b@example.com"))
    clock.advance(90)
    assert value(scrape(client), "connector_oldest_due_seconds") == 120


def test_metrics_name_paused_keys_and_open_circuits(client, runtime):
    outbox_breakers.trip(runtime.engine, KeyScope("listrak-staging"), "paused", "refused")
    outbox_breakers.trip(runtime.engine, CircuitScope("listrak", "listrak-production"), "open", "5xx")
    samples = scrape(client)
    assert value(samples, "connector_paused_keys") == 1
    assert value(samples, "connector_key_paused", key="listrak-staging") == 1
    assert value(samples, "connector_open_circuits") == 1
    assert value(samples, "connector_circuit_open", partner="listrak", key="listrak-production") == 1
