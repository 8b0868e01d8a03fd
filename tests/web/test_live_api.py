"""The admin API and the Live View pages: listing with filters and paging, counts per outcome,
an event's attempts with redacted requests, breakers, and replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connector.contract import CircuitScope, KeyScope
from connector.delivery.planner import Planner
from connector.delivery.worker import Worker
from connector.outbox import breakers as outbox_breakers
from connector.outbox.breakers import BreakerPolicy
from plugins.extole.testing import referral_event, sign
from plugins.listrak.testing import API

BEARER = {"Authorization": "Bearer test-admin-token"}
CONTACT = f"{API}/List/12345/Contact"


@pytest.fixture
def api(client):
    def get(path, **args):
        response = client.get(path, headers=BEARER, query_string=args)
        return response

    return get


@pytest.fixture
def flow(post_events, runtime, requests_mock, listrak_token):
    """Three production opt-ins answered 201, 400 (dead) and 500 (retrying), and a staging
    opt-out, all delivered by one worker pass."""
    answers = {
        "ok@example.com": (201, {"status": 201, "resourceId": "ok@example.com"}),
        "banned@example.com": (
            400,
            {"status": 400, "error": "ERROR_BANNED_EMAIL_ADDRESS", "message": "The emailAddress is banned."},
        ),
        "flaky@example.com": (
            500,
            {"status": 500, "error": "ERROR_UNHANDLED_EXCEPTION", "message": "An unexpected error occurred."},
        ),
        "stage@example.com": (200, {"status": 200, "resourceId": "stage@example.com"}),
    }

    def answer(request, context):
        status, body = answers[request.json()["emailAddress"]]
        context.status_code = status
        return body

    requests_mock.post(CONTACT, json=answer)
    events = [
        referral_event("e-ok", email="OK@example.com"),
        referral_event("e-banned", email="banned@example.com"),
        referral_event("e-flaky", email="flaky@example.com"),
        referral_event("e-stage", type="opt_out", email="stage@example.com", environment="staging"),
    ]
    assert post_events(events).status_code == 202
    Worker(runtime).run_once()
    return events


def outcomes(page) -> dict[str, str]:
    return {e["event_id"]: [d["outcome"] for d in e["deliveries"]] for e in page["events"]}


def test_events_are_listed_newest_first_with_their_deliveries(api, flow):
    page = api("/admin/api/events").json
    assert [e["event_id"] for e in page["events"]] == ["e-stage", "e-flaky", "e-banned", "e-ok"]
    banned = page["events"][2]
    assert banned["email"] == "banned@example.com"
    assert banned["source"] == "extole"
    assert banned["type"] == "opt_in"
    (delivery,) = banned["deliveries"]
    assert delivery["outcome"] == "dead"
    assert delivery["attempts"] == 1
    assert delivery["last_status"] == 400
    assert delivery["last_error_code"] == "ERROR_BANNED_EMAIL_ADDRESS"
    assert delivery["last_error_message"] == "The emailAddress is banned."
    assert delivery["last_latency_ms"] >= 0
    assert page["counts"] == {
        "queued": 0,
        "retrying": 1,
        "paused": 0,
        "delivered": 2,
        "skipped": 0,
        "superseded": 0,
        "dead": 1,
    }
    assert page["next_before"] is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"outcome": "dead"}, {"e-banned": ["dead"]}),
        ({"outcome": "dead,retrying"}, {"e-banned": ["dead"], "e-flaky": ["retrying"]}),
        ({"environment": "staging"}, {"e-stage": ["delivered"]}),
        ({"email": "OK@example.com "}, {"e-ok": ["delivered"]}),
        ({"email": "flak"}, {"e-flaky": ["retrying"]}),
        ({"email": "@example.com", "type": "opt_out"}, {"e-stage": ["delivered"]}),
        (
            {"partner": "listrak", "outcome": "delivered", "source": "extole"},
            {"e-ok": ["delivered"], "e-stage": ["delivered"]},
        ),
        ({"partner": "nobody"}, {}),
        ({"source": "segment"}, {}),
    ],
)
def test_filters(api, flow, args, expected):
    assert outcomes(api("/admin/api/events", **args).json) == expected


def test_counts_follow_every_filter_but_outcome(api, flow):
    counts = api("/admin/api/events", environment="production", outcome="dead").json["counts"]
    assert counts["delivered"] == 1
    assert counts["dead"] == 1
    assert counts["retrying"] == 1


def test_paging_with_before(api, flow):
    first = api("/admin/api/events", limit=3).json
    assert [e["event_id"] for e in first["events"]] == ["e-stage", "e-flaky", "e-banned"]
    second = api("/admin/api/events", limit=3, before=first["next_before"]).json
    assert [e["event_id"] for e in second["events"]] == ["e-ok"]
    assert second["next_before"] is None


@pytest.mark.parametrize(
    "args",
    [
        {"outcome": "lost"},
        {"limit": "0"},
        {"limit": "201"},
        {"before": "x"},
        {"before": "9" * 20},
        {"email": "a" * 400},
    ],
)
def test_bad_filters_are_a_400_naming_the_problem(api, client, args):
    response = api("/admin/api/events", **args)
    assert response.status_code == 400
    assert response.json["message"]
    assert client.get("/live", headers=BEARER, query_string=args).status_code == 400


def test_event_detail_has_every_attempt_with_the_redacted_request(api, flow, runtime):
    runtime.config.settings["retry_schedule"] = [0.0]
    (flaky,) = [e for e in api("/admin/api/events").json["events"] if e["event_id"] == "e-flaky"]
    queue_now(runtime)
    Worker(runtime).run_once()
    detail = api(f"/admin/api/events/{flaky['id']}").json
    assert detail["payload"]["person"]["email"] == "flaky@example.com"
    (delivery,) = detail["deliveries"]
    assert delivery["outcome"] == "dead"
    assert delivery["reason"] == "retry schedule ran out: HTTP 500"
    first, second = delivery["attempt_log"]
    assert first["outcome"] == "retrying"
    assert first["status"] == 500
    assert first["error_code"] == "ERROR_UNHANDLED_EXCEPTION"
    assert first["request"]["method"] == "POST"
    assert first["request"]["url"] == CONTACT
    assert first["request"]["headers"]["Authorization"] == "Bearer ***"
    assert '"emailAddress":"flaky@example.com"' in first["request"]["body"]
    assert first["response"]["status"] == 500
    assert "ERROR_UNHANDLED_EXCEPTION" in first["response"]["body"]
    assert (second["outcome"], second["status"]) == ("dead", 500)
    text = api(f"/admin/api/events/{flaky['id']}").get_data(as_text=True)
    assert "tok-1" not in text
    assert "prod-secret-value" not in text


def queue_now(runtime):
    from sqlalchemy import update

    from connector.outbox.tables import deliveries

    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.state == "retrying").values(next_attempt_at=0))


def test_delivery_route_gives_one_delivery_with_its_event(api, flow):
    dead = api("/admin/api/events", outcome="dead").json["events"][0]["deliveries"][0]
    response = api(f"/admin/api/deliveries/{dead['id']}").json
    assert response["outcome"] == "dead"
    assert response["event"]["event_id"] == "e-banned"
    assert len(response["attempt_log"]) == 1


@pytest.mark.parametrize(
    "path",
    ["/admin/api/events/999", "/admin/api/deliveries/999", "/admin/api/events/99999999999999999999999"],
)
def test_unknown_ids_are_404(api, path):
    assert api(path).status_code == 404


def test_summary_shows_paused_keys_and_open_circuits(api, runtime, clock):
    refused = "token endpoint refused the credentials (Invalid Credentials)"
    outbox_breakers.trip(runtime.engine, KeyScope("listrak-staging"), "paused", refused)
    outbox_breakers.trip(runtime.engine, CircuitScope("listrak", "listrak-production"), "open", "HTTP 503")
    summary = api("/admin/api/summary").json
    (paused,) = summary["paused_keys"]
    probe_at = datetime.fromtimestamp(clock.at + BreakerPolicy().probe_interval, UTC)
    assert (paused["key"], paused["state"], paused["reason"], paused["next_probe_at"]) == (
        "listrak-staging",
        "paused",
        refused,
        probe_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )
    (circuit,) = summary["open_circuits"]
    assert (circuit["partner"], circuit["key"], circuit["reason"]) == (
        "listrak",
        "listrak-production",
        "HTTP 503",
    )
    page = api("/live").get_data(as_text=True)
    assert "Key paused: listrak-staging" in page
    assert "Circuit open: listrak / listrak-production" in page


def test_replay_queues_a_dead_delivery_and_the_worker_delivers_it(client, api, flow, runtime, requests_mock):
    dead = api("/admin/api/events", outcome="dead").json["events"][0]["deliveries"][0]
    requests_mock.post(CONTACT, status_code=200, json={"status": 200})
    response = client.post("/admin/api/replay", json={"delivery_ids": [dead["id"]]}, headers=BEARER)
    assert response.json == {"queued": 1, "superseded": 0, "unchanged": 0}
    assert api(f"/admin/api/deliveries/{dead['id']}").json["outcome"] == "queued"
    Worker(runtime).run_once()
    replayed = api(f"/admin/api/deliveries/{dead['id']}").json
    assert replayed["outcome"] == "delivered"
    assert [a["outcome"] for a in replayed["attempt_log"]] == ["dead", "delivered"]


def test_replay_all_dead_of_a_partner(client, flow):
    response = client.post("/admin/api/replay", json={"dead": True, "partner": "listrak"}, headers=BEARER)
    assert response.json["queued"] == 1


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"delivery_ids": "1"},
        {"delivery_ids": [0]},
        {"delivery_ids": [True]},
        {"dead": "yes"},
        {"what": 1},
        {"dead": True, "since": "yesterday"},
        {"dead": True, "since": "2026-11-22T05:00:00"},
        {"delivery_ids": list(range(1, 1002))},
    ],
)
def test_bad_replay_bodies_are_400(client, body):
    response = client.post("/admin/api/replay", json=body, headers=BEARER)
    assert response.status_code == 400
    assert response.json["message"]


def test_dashboard_renders_outcomes_and_filters(client, flow):
    page = client.get("/live", headers=BEARER).get_data(as_text=True)
    assert 'class="outcome o-dead">dead<' in page
    assert 'class="outcome o-retrying">retrying<' in page
    assert "ERROR_BANNED_EMAIL_ADDRESS" in page
    assert "banned@example.com" in page
    assert 'href="/live?outcome=dead"' in page
    assert 'src="/live/static/live.js"' in page


def test_partial_is_only_the_live_region(client, flow):
    partial = client.get("/live?outcome=dead&partial=1", headers=BEARER).get_data(as_text=True)
    assert "<html" not in partial
    assert "e-banned" in partial
    assert "e-ok" not in partial


def test_event_page_shows_attempts_and_a_replay_form_for_dead(client, api, flow):
    dead = api("/admin/api/events", outcome="dead").json["events"][0]
    client.post("/live/login", data={"token": "test-admin-token"})
    page = client.get(f"/live/events/{dead['id']}").get_data(as_text=True)
    delivery_id = dead["deliveries"][0]["id"]
    assert f'action="/live/deliveries/{delivery_id}/replay"' in page
    assert "Authorization: Bearer ***" in page
    assert f"POST {CONTACT}" in page
    ok = api("/admin/api/events", email="ok@example.com").json["events"][0]
    page = client.get(f"/live/events/{ok['id']}").get_data(as_text=True)
    assert "/replay" not in page


def test_live_view_escapes_what_senders_send(client, post_events):
    post_events(referral_event("<script>alert(1)</script>", first_name="<b>x</b>"))
    page = client.get("/live", headers=BEARER).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    detail = client.get("/live/events/1", headers=BEARER).get_data(as_text=True)
    assert "<b>x</b>" not in detail


def test_accepted_events_no_worker_has_planned_are_counted_and_shown(api, client, runtime):
    body = json.dumps([referral_event("w-1"), referral_event("w-2", email="joe@example.com")]).encode()
    headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
    assert client.post("/webhooks/extole", data=body, headers=headers).status_code == 202
    assert api("/admin/api/summary").json["waiting_to_plan"] == 2
    page = client.get("/live", headers=BEARER).get_data(as_text=True)
    assert "2 accepted events waiting for a worker" in page
    Planner(runtime).plan_all()
    assert api("/admin/api/summary").json["waiting_to_plan"] == 0
    assert "waiting for a worker" not in client.get("/live", headers=BEARER).get_data(as_text=True)


def test_an_event_accepted_with_warnings_shows_them_in_the_api_and_the_live_view(api, client, post_events):
    odd = referral_event("e-odd", funnel="x" * 65, first_name="<i>7</i>", last_name=7)
    assert post_events(odd).json == {"accepted": 1, "duplicates": 0}
    warnings = [
        "person.last_name: Not a valid string. (left out)",
        "person.funnel: Longer than maximum length 64. (left out)",
    ]
    (listed,) = api("/admin/api/events").json["events"]
    assert listed["warnings"] == warnings
    assert api(f"/admin/api/events/{listed['id']}").json["warnings"] == warnings
    feed = client.get("/live", headers=BEARER).get_data(as_text=True)
    assert "⚠ 2" in feed
    page = client.get(f"/live/events/{listed['id']}", headers=BEARER).get_data(as_text=True)
    assert "Accepted with 2 warnings" in page
    assert all(f"<li>{warning}</li>" in page for warning in warnings)


def test_an_event_without_warnings_lists_none(api, post_events):
    post_events(referral_event("e-plain"))
    (listed,) = api("/admin/api/events").json["events"]
    assert listed["warnings"] == []
