"""Refused inbound requests (connector/web/refusals.py): counted per source and reason in
/metrics, the newest 1,000 listed in the admin API and the Live View (time, source, status,
reason; never the body or headers), with no store write per refused request."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from connector.app import create_app
from connector.outbox.tables import inbound_refusals
from connector.runtime import Runtime
from connector.web import refusals
from connector.web.refusals import MAX_KEPT
from plugins.extole.testing import referral_event, sign
from tests.web.test_metrics import scrape, value

BEARER = {"Authorization": "Bearer test-admin-token"}
SECRET_IN_BODY = "body-text-never-kept-4711"
SECRET_IN_HEADER = "header-value-never-kept-0815"


def refuse(client, source: str = "extole", **headers) -> int:
    """POST an unsigned event carrying distinctive text in its body and a header."""
    body = json.dumps(referral_event(first_name=SECRET_IN_BODY)).encode()
    sent = {"Content-Type": "application/json", "X-Extole-Signature": "sha256=00", "X-Note": SECRET_IN_HEADER}
    return client.post(f"/webhooks/{source}", data=body, headers=sent | headers).status_code


def listed(client, **args) -> list[dict]:
    response = client.get("/admin/api/refusals", headers=BEARER, query_string=args)
    assert response.status_code == 200
    return response.json["refusals"]


def writes_during(engine, action) -> list[str]:
    """The writes `action` makes on this thread (the log's own writer thread, which writes
    every second, may run meanwhile on a slow machine: its writes are not the action's)."""
    seen = []
    caller = threading.get_ident()

    def record(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() != caller:
            return
        if statement.lstrip().upper().startswith(("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_refusals_are_counted_per_source_and_reason(client):
    before = scrape(client)
    assert refuse(client) == 401
    assert refuse(client, **{"Content-Type": "text/plain"}) == 415
    assert refuse(client, source="nowhere") == 404
    after = scrape(client)
    for source, reason in [("extole", "unauthorized"), ("extole", "unsupported content type")]:
        labels = {"source": source, "reason": reason}
        assert value(after, "connector_inbound_refused_total", **labels) == (
            value(before, "connector_inbound_refused_total", **labels) + 1
        )
    unknown = {"source": "(unknown)", "reason": "unknown source"}
    assert value(after, "connector_inbound_refused_total", **unknown) == (
        value(before, "connector_inbound_refused_total", **unknown) + 1
    )


def test_the_newest_are_listed_with_time_source_status_and_reason_never_body_or_headers(client):
    refuse(client)
    refuse(client, source="nowhere")
    newest, oldest = listed(client)
    assert (newest["source"], newest["status"], newest["reason"]) == (
        "(unknown)",
        404,
        "unknown source: no source 'nowhere' is configured",
    )
    assert (oldest["source"], oldest["status"], oldest["reason"]) == (
        "extole",
        401,
        "unauthorized: signature does not match the body",
    )
    assert newest["at"].endswith("Z")
    page = client.get("/live/refusals", headers=BEARER).get_data(as_text=True)
    assert "signature does not match the body" in page
    for text in (json.dumps(listed(client)), page):
        assert SECRET_IN_BODY not in text
        assert SECRET_IN_HEADER not in text


def test_a_refused_payload_is_listed_by_its_problems(post_events, client):
    assert post_events(referral_event(email="not-an-email")).status_code == 400
    (refused,) = listed(client)
    assert refused["reason"] == "invalid payload: person.email: not a valid email address"


def test_a_flood_of_refusals_writes_nothing_until_the_log_is_written(client, runtime, app, monkeypatch):
    log = app.extensions["refusals"]
    # The writer thread writes every second; on a slow machine it could write part of the
    # flood first, and this test would see fewer rows in its own flush: kept out of it here.
    monkeypatch.setattr(refusals, "_watch", lambda refusal_log: None)
    statuses = []
    assert writes_during(runtime.engine, lambda: statuses.extend(refuse(client) for _ in range(50))) == []
    assert statuses == [401] * 50
    written = writes_during(runtime.engine, log.flush)
    # begin, one insert and one delete for the list, one upsert for the counts
    assert written[0] == "BEGIN IMMEDIATE"
    assert len(written) == 4
    assert len(listed(client)) == 50


def test_no_more_than_the_newest_thousand_are_kept(config_dir, store_url, clock):
    app = create_app({"TESTING": True}, runtime=Runtime.build(str(config_dir), store_url))
    log = app.extensions["refusals"]
    for i in range(MAX_KEPT + 200):
        clock.advance(0.001)
        log.refused("extole", 401, "unauthorized", f"number {i}")
        if i % 500 == 0:
            log.flush()
    log.flush()
    with app.extensions["connector"].engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbound_refusals)).scalar() == MAX_KEPT
    kept = listed(app.test_client())
    assert (kept[0]["reason"], kept[-1]["reason"]) == (
        "unauthorized: number 1199",
        "unauthorized: number 200",
    )


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_a_limit_out_of_range_is_a_400(client, limit):
    response = client.get("/admin/api/refusals", headers=BEARER, query_string={"limit": limit})
    assert (response.status_code, response.json["message"]) == (400, "limit: a number from 1 to 1000")


def test_the_dashboard_says_how_many_were_refused_in_the_last_hour(client):
    assert "refused in the last hour" not in client.get("/live", headers=BEARER).get_data(as_text=True)
    refuse(client)
    refuse(client)
    assert "2 inbound requests refused in the last hour" in client.get("/live", headers=BEARER).get_data(
        as_text=True
    )


def test_another_web_process_lists_what_one_wrote(config_dir, database_url):
    first, second = (
        create_app({"TESTING": True}, runtime=Runtime.build(str(config_dir), database_url)) for _ in range(2)
    )
    body = json.dumps(referral_event()).encode()
    sent = {"Content-Type": "application/json", "X-Extole-Signature": "sha256=00"}
    assert first.test_client().post("/webhooks/extole", data=body, headers=sent).status_code == 401
    assert listed(second.test_client()) == []  # kept in the first process until it writes them
    first.extensions["refusals"].flush()
    (refused,) = listed(second.test_client())
    assert refused["source"] == "extole"


def test_every_web_process_scrapes_the_same_counts(config_dir, database_url):
    first, second = (
        create_app({"TESTING": True}, runtime=Runtime.build(str(config_dir), database_url)) for _ in range(2)
    )
    body = json.dumps(referral_event()).encode()
    sent = {"Content-Type": "application/json", "X-Extole-Signature": "sha256=00"}
    for app in (first, second, second):
        assert app.test_client().post("/webhooks/extole", data=body, headers=sent).status_code == 401
    first.extensions["refusals"].flush()
    labels = {"source": "extole", "reason": "unauthorized"}
    # The second scrapes its own unwritten two and the first's written one; the first, all three.
    assert value(scrape(second.test_client()), "connector_inbound_refused_total", **labels) == 3
    assert value(scrape(first.test_client()), "connector_inbound_refused_total", **labels) == 3


def test_a_signed_event_is_not_a_refusal(client):
    body = json.dumps(referral_event()).encode()
    sent = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
    assert client.post("/webhooks/extole", data=body, headers=sent).status_code == 202
    assert listed(client) == []


def test_refusals_the_store_would_not_take_are_written_with_the_next_flush(client, runtime, app):
    log = app.extensions["refusals"]

    def busy(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_REFUSALS"):
            raise OperationalError(statement, parameters, Exception("database is locked"))

    assert [refuse(client) for _ in range(3)] == [401] * 3
    event.listen(runtime.engine, "before_cursor_execute", busy)
    try:
        with pytest.raises(OperationalError):
            log.flush()
        # A scrape meanwhile counts what is kept in this process.
        labels = {"source": "extole", "reason": "unauthorized"}
        assert value(scrape(client), "connector_inbound_refused_total", **labels) == 3
    finally:
        event.remove(runtime.engine, "before_cursor_execute", busy)
    assert refuse(client) == 401
    assert log.flush() == 4
    assert len(listed(client)) == 4
    assert value(scrape(client), "connector_inbound_refused_total", **labels) == 4
