"""/metrics (Prometheus text format) moves as events are received and delivered, reads the
store at most every few seconds without scanning a table, and may ask for a token;
/readyz asks the store one cheap question."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from connector.app import create_app
from connector.config import ConfigError
from connector.contract import CircuitScope, KeyScope
from connector.delivery.planner import Planner
from connector.delivery.worker import Worker
from connector.metrics import STORE_TTL, StoreCollector
from connector.outbox import breakers as outbox_breakers
from connector.runtime import Runtime
from connector.testing.history import seed_history
from plugins.extole.testing import referral_event, sign
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


def test_metrics_follow_events_through_delivery(
    client, post_events, runtime, requests_mock, listrak_token, clock
):
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    before = scrape(client)
    clock.advance(STORE_TTL)

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
    clock.advance(STORE_TTL)
    after = scrape(client)
    assert value(after, "connector_deliveries", partner="listrak", outcome="queued") == 0
    assert value(after, "connector_outcomes_last_hour", partner="listrak", outcome="delivered") == 2
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


@pytest.fixture
def statements(runtime):
    """Every SQL statement run on the store from now on (cleared by the test as it goes)."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if statement.split()[0].upper() in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", note)
    yield seen
    event.remove(runtime.engine, "before_cursor_execute", note)


def plans(runtime, sql: list[str]) -> list[str]:
    """SQLite's plan of each statement, one line per table it reads."""
    found = []
    with runtime.engine.connect() as conn:
        for statement in sql:
            placeholders = statement.count("?")
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", (0,) * placeholders).fetchall()
            found += [row[-1] for row in rows]
    return found


BIG_TABLES = ("events", "deliveries", "attempts")
STORE_FAMILIES = ("connector_deliveries", "connector_queue_depth", "connector_oldest_due_seconds")
STORE_FAMILIES += ("connector_outcomes_last_hour", "connector_paused_keys", "connector_open_circuits")


def from_store(samples: dict) -> dict:
    return {key: number for key, number in samples.items() if key[0] in STORE_FAMILIES}


def test_a_scrape_reads_no_big_table_through_and_the_next_within_the_ttl_reads_nothing(
    client, post_events, runtime, statements, clock
):
    post_events([referral_event("a"), referral_event("b", email="b@example.com")])
    statements.clear()
    first = scrape(client)
    assert value(first, "connector_queue_depth", partner="listrak") == 2
    assert 0 < len(statements) <= 12
    scans = [plan for plan in plans(runtime, statements) if plan.startswith("SCAN")]
    assert [plan for plan in scans if plan.split()[1] in BIG_TABLES] == []
    statements.clear()
    clock.advance(STORE_TTL - 0.5)
    post_events(referral_event("c", email="c@example.com"))
    statements.clear()
    assert from_store(scrape(client)) == from_store(first)  # the same figures, from the cache
    # Only the refusal counts are read at each scrape: a table of a row per source and reason.
    assert [s.split("FROM ")[-1] for s in statements] == ["inbound_refusal_counts"]
    clock.advance(0.5)
    assert value(scrape(client), "connector_queue_depth", partner="listrak") == 3
    assert statements != []


def test_the_queue_is_read_from_its_index_alone(runtime, statements, clock):
    seed_history(runtime.engine, 2000, days=1, until=clock.at)
    statements.clear()
    list(StoreCollector(runtime.engine).collect())
    queue_plans = [plan for plan in plans(runtime, list(statements)) if "deliveries" in plan]
    assert len(queue_plans) >= 2
    assert all(
        plan.startswith("SEARCH deliveries USING COVERING INDEX ix_deliveries_queue") for plan in queue_plans
    )


@pytest.fixture
def metrics_token(config_dir):
    settings = config_dir / "connector.yaml"
    settings.write_text(settings.read_text() + "metrics:\n  token: ${METRICS_TOKEN}\n")
    return "metrics-token-0123456789"


def test_a_metrics_token_is_asked_for_when_set(metrics_token, monkeypatch, make_runtime):
    monkeypatch.setenv("METRICS_TOKEN", metrics_token)
    client = create_app({"TESTING": True}, runtime=make_runtime()).test_client()
    refused = client.get("/metrics")
    assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (
        401,
        'Bearer realm="connector metrics"',
    )
    assert (
        client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    )
    assert client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_readyz_asks_the_store_one_cheap_question(client, statements):
    response = client.get("/readyz")
    assert (response.status_code, response.json["status"]) == (200, "ready")
    assert statements == ["SELECT 1"]


def test_a_short_metrics_token_is_a_config_error(metrics_token, monkeypatch, config_dir):
    monkeypatch.setenv("METRICS_TOKEN", "short")
    with pytest.raises(ConfigError) as refused:
        Runtime.build(str(config_dir), "sqlite://")
    assert "connector.yaml: metrics.token: at least 16 characters" in str(refused.value)


def test_metrics_count_the_accepted_events_no_worker_has_planned(client, runtime, clock):
    body = json.dumps([referral_event("w-1"), referral_event("w-2", email="b@example.com")]).encode()
    headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
    assert client.post("/webhooks/extole", data=body, headers=headers).status_code == 202
    clock.advance(STORE_TTL)
    assert value(scrape(client), "connector_events_waiting_to_plan") == 2
    Planner(runtime).plan_all()
    clock.advance(STORE_TTL)
    assert value(scrape(client), "connector_events_waiting_to_plan") == 0
