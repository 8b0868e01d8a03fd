"""The store on PostgreSQL: the same flow, and concurrent claims that never share a delivery."""

import json
import threading

from connector.app import create_app
from connector.delivery.planner import Planner
from connector.delivery.worker import Worker
from connector.outbox.claims import claim
from connector.outbox.intake import accept, ingest, waiting_count
from connector.runtime import Runtime
from connector.testing.store import after_planning, stored_deliveries
from plugins.extole.source import ExtoleSource
from plugins.extole.testing import referral_event, sign
from plugins.listrak.testing import API


def test_opt_in_flow_on_postgres(config_dir, postgres_url, post_events, requests_mock, listrak_token):
    runtime = Runtime.build(str(config_dir), postgres_url)
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    body = json.dumps([referral_event("pg-1"), referral_event("pg-1")]).encode()
    response = client.post(
        "/webhooks/extole",
        data=body,
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
    )
    assert response.json == {"accepted": 1, "duplicates": 1}
    contact = requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={})
    assert Worker(runtime).run_once() == 1
    assert contact.call_count == 1
    assert [d["state"] for d in stored_deliveries(after_planning(runtime))] == ["delivered"]


def test_concurrent_claims_on_postgres_never_share_a_delivery(config_dir, postgres_url):
    runtime = Runtime.build(str(config_dir), postgres_url)
    source = ExtoleSource()
    events = source.parse(
        json.dumps([referral_event(f"c-{i}", email=f"p{i}@example.com") for i in range(400)]).encode(), {}
    )
    ingest(runtime.engine, "extole", [(e, runtime.plan("extole", e)) for e in events])

    owners = [f"w{i}" for i in range(6)]
    claimed: dict[str, list[list[int]]] = {owner: [] for owner in owners}
    first_round = threading.Barrier(len(owners), timeout=30)

    def claimer(owner: str):
        rounds = claimed[owner]
        while True:
            got = claim(runtime.engine, owner, 7, lease=60)
            if len(rounds) == 0:
                first_round.wait()  # every owner holds its first claim before anyone goes on
            if not got:
                return
            rounds.append([c.id for c in got])

    threads = [threading.Thread(target=claimer, args=(owner,)) for owner in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for rounds in claimed.values() for ids in rounds for i in ids]
    assert len(every) == 400
    assert len(set(every)) == 400
    assert [len(rounds[0]) for rounds in claimed.values()] == [7] * len(owners)


def test_same_event_posted_concurrently_on_postgres_is_accepted_once(config_dir, postgres_url):
    runtime = Runtime.build(str(config_dir), postgres_url)
    (event,) = ExtoleSource().parse(json.dumps(referral_event("race")).encode(), {})
    results, barrier = [], threading.Barrier(8)

    def post():
        barrier.wait()
        results.append(accept(runtime.engine, "extole", [event]))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.accepted for r in results) == [0] * 7 + [1]
    assert len(stored_deliveries(after_planning(runtime))) == 1


def test_planners_at_once_on_postgres_plan_each_accepted_event_once(config_dir, postgres_url):
    runtime = Runtime.build(str(config_dir), postgres_url)
    body = json.dumps([referral_event(f"p-{i}", email=f"p{i}@example.com") for i in range(300)]).encode()
    assert accept(runtime.engine, "extole", ExtoleSource().parse(body, {})).accepted == 300
    planned, barrier = [], threading.Barrier(4)

    def plan():
        barrier.wait()
        planned.append(Planner(runtime, batch=40).plan_all())

    threads = [threading.Thread(target=plan) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(planned) == 300
    deliveries = stored_deliveries(after_planning(runtime))
    assert len(deliveries) == 300
    assert len({d["event_pk"] for d in deliveries}) == 300
    assert waiting_count(runtime.engine) == 0
