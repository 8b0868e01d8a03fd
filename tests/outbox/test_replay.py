"""Replay through the consent-order rule, and purge by retention."""

import json
import time

from sqlalchemy import update

from connector.app import create_app
from connector.cli import main as cli
from connector.delivery.worker import Worker
from connector.outbox.replay import replay
from connector.outbox.retention import purge
from connector.outbox.tables import deliveries, events
from connector.testing.store import after_planning, stored_attempts, stored_deliveries
from plugins.extole.testing import referral_event, sign
from plugins.listrak.testing import API
from tests.config_files import update_yaml

CONTACT = f"{API}/List/12345/Contact"


def dead_opt_in(post_events, runtime, requests_mock, event_id="r-1", **event):
    requests_mock.post(
        CONTACT, status_code=400, json={"status": 400, "error": "ERROR_INVALID_PARAMETER", "message": "bad"}
    )
    assert post_events(referral_event(event_id, **event)).status_code == 202
    Worker(runtime).run_once()
    (delivery,) = [d for d in stored_deliveries(after_planning(runtime)) if d["state"] == "dead"]
    return delivery


def test_replayed_dead_delivery_is_sent_again(post_events, runtime, requests_mock, listrak_token):
    delivery = dead_opt_in(post_events, runtime, requests_mock)
    assert replay(runtime.engine, [delivery["id"]]) == {"queued": 1, "superseded": 0, "unchanged": 0}
    requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    Worker(runtime).run_once()
    (after,) = stored_deliveries(after_planning(runtime))
    assert after["state"] == "delivered"
    assert [a["outcome"] for a in stored_attempts(runtime)] == ["dead", "delivered"]


def test_replay_of_an_opt_in_older_than_a_delivered_opt_out_is_superseded(
    post_events, runtime, requests_mock, listrak_token
):
    old = dead_opt_in(post_events, runtime, requests_mock, "r-old", event_time="2026-11-22T01:00:00Z")
    requests_mock.post(CONTACT, status_code=200, json={"status": 200})
    post_events(referral_event("r-new", type="opt_out", event_time="2026-11-22T02:00:00Z"))
    Worker(runtime).run_once()
    calls = requests_mock.call_count
    assert replay(runtime.engine, [old["id"]])["superseded"] == 1
    assert Worker(runtime).run_once() == 0
    assert requests_mock.call_count == calls
    assert {d["id"]: d["state"] for d in stored_deliveries(after_planning(runtime))}[
        old["id"]
    ] == "superseded"


def test_replay_dead_filters_by_partner_and_since(post_events, runtime, requests_mock, listrak_token):
    dead_opt_in(post_events, runtime, requests_mock)
    assert replay(runtime.engine, dead=True, partner="other")["queued"] == 0
    assert replay(runtime.engine, dead=True, since=time.time() + 60)["queued"] == 0
    assert replay(runtime.engine, dead=True, partner="listrak")["queued"] == 1


def test_replay_of_skipped_staging_event_uses_the_key_configured_since(
    config_dir, make_runtime, client, requests_mock, listrak_token
):
    update_yaml(config_dir / "partners" / "listrak.yaml", drop=("keys.staging",))
    runtime = make_runtime()
    body = json.dumps(referral_event("stg", environment="staging")).encode()
    app = create_app({"TESTING": True}, runtime=runtime)
    app.test_client().post(
        "/webhooks/extole",
        data=body,
        headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
    )
    (skipped,) = stored_deliveries(after_planning(runtime))
    assert skipped["state"] == "skipped"
    assert skipped["partner_key_id"] is None
    assert replay(runtime.engine, [skipped["id"]], runtime=runtime)["unchanged"] == 1

    update_yaml(config_dir / "partners" / "listrak.yaml", set={"keys.staging": "listrak-staging"})
    runtime = make_runtime()
    assert replay(runtime.engine, [skipped["id"]], runtime=runtime)["queued"] == 1
    (queued,) = stored_deliveries(after_planning(runtime))
    assert queued["partner_key_id"] == "listrak-staging"


def test_replaying_two_changes_of_one_contact_at_once_queues_only_the_newer(
    config_dir, make_runtime, requests_mock, listrak_token
):
    # Skipped at intake (no staging key then), neither is its contact's mark: the rule must see
    # the older one queued again when it decides on the newer.
    update_yaml(config_dir / "partners" / "listrak.yaml", drop=("keys.staging",))
    runtime = make_runtime()
    app = create_app({"TESTING": True}, runtime=runtime)
    for event_id, kind, hour in (("stg-in", "opt_in", 1), ("stg-out", "opt_out", 2)):
        event = referral_event(
            event_id, type=kind, environment="staging", event_time=f"2026-11-22T0{hour}:00:00Z"
        )
        body = json.dumps(event).encode()
        app.test_client().post(
            "/webhooks/extole",
            data=body,
            headers={"Content-Type": "application/json", "X-Extole-Signature": sign(body)},
        )
    older, newer = sorted(stored_deliveries(after_planning(runtime)), key=lambda d: d["event_time"])
    assert (older["state"], newer["state"]) == ("skipped", "skipped")
    update_yaml(config_dir / "partners" / "listrak.yaml", set={"keys.staging": "listrak-staging"})
    runtime = make_runtime()
    replay(runtime.engine, [older["id"], newer["id"]], runtime=runtime)
    after = {d["id"]: d for d in stored_deliveries(runtime)}
    assert (after[older["id"]]["state"], after[older["id"]]["superseded_by"]) == ("superseded", newer["id"])
    assert after[newer["id"]]["state"] == "queued"


def test_purge_keeps_dead_deliveries_a_week(post_events, runtime, requests_mock, listrak_token):
    delivery = dead_opt_in(post_events, runtime, requests_mock)
    requests_mock.post(CONTACT, status_code=201, json={"status": 201})
    post_events(referral_event("r-2", email="other@example.com"))
    Worker(runtime).run_once()
    retention = {"delivered": 3600.0, "dead": 7 * 86400.0}
    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).values(updated_at=time.time() - 2 * 86400))
        conn.execute(update(events).values(received_at=time.time() - 2 * 86400))
    assert purge(runtime.engine, retention) == {"deliveries": 1, "attempts": 1, "events": 1}
    assert [d["id"] for d in stored_deliveries(after_planning(runtime))] == [delivery["id"]]
    with runtime.engine.begin() as conn:
        conn.execute(update(deliveries).values(updated_at=time.time() - 8 * 86400))
    assert purge(runtime.engine, retention)["deliveries"] == 1
    assert stored_deliveries(after_planning(runtime)) == []


def test_replay_and_purge_commands(
    config_dir, database_url, post_events, runtime, requests_mock, listrak_token, capsys
):
    delivery = dead_opt_in(post_events, runtime, requests_mock)
    base = ["--config", str(config_dir), "--database-url", database_url]
    assert cli([*base, "replay"]) == 2
    assert cli([*base, "replay", "--since", "yesterday-ish"]) == 2
    assert cli([*base, "replay", str(delivery["id"])]) == 0
    assert "queued 1" in capsys.readouterr().out
    assert cli([*base, "replay", "--dead", "--since", "1h"]) == 0
    assert "queued 0" in capsys.readouterr().out  # it is queued already, not dead
    assert cli([*base, "purge"]) == 0
    assert "purged 0 deliveries" in capsys.readouterr().out
