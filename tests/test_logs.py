"""Logs: intake and delivery as summary lines every few seconds (each request, event and
delivery at DEBUG); JSON when configured; emails masked, no secrets."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from connector import logs
from connector.delivery.worker import Worker
from connector.testing import wait_until
from connector.web import webhooks
from connector.web.intake_log import IntakeLog
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.fixture
def intake_log(monkeypatch) -> IntakeLog:
    """The webhooks' summary, written when the test flushes it (not by its timer)."""
    summary = IntakeLog(every=3600)
    monkeypatch.setattr(webhooks, "INTAKE_LOG", summary)
    return summary


def test_a_json_summary_line_for_intake_and_one_for_deliveries(
    capsys, post_events, runtime, requests_mock, listrak_token, intake_log
):
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    logs.configure({"format": "json", "level": "INFO"}, runtime.redactor)
    capsys.readouterr()
    post_events([referral_event("l-1"), referral_event("l-2", email="bob.smith@example.org")])
    post_events([referral_event("l-2", email="bob.smith@example.org")])
    assert [e for e in lines(capsys) if e["logger"] == "connector.webhooks"] == []
    intake_log.flush()
    Worker(runtime).run_once()
    entries = lines(capsys)
    events = [e for e in entries if e["logger"] == "connector.webhooks"]
    worker = [e["message"] for e in entries if e["logger"] == "connector.worker"]
    (summary,) = [e["message"] for e in events]
    assert re.fullmatch(r"extole: 2 events accepted, 1 duplicates \(2 requests in [\d.]+ s\)", summary)
    (settled,) = worker
    assert re.fullmatch(r"settled in [\d.]+ s: listrak 2 delivered \(2 requests\)", settled)
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    everything = json.dumps(entries)
    assert "jane.doe@example.com" not in everything
    assert "bob.smith" not in everything
    assert "tok-1" not in everything
    assert "prod-secret-value" not in everything


def test_each_request_and_event_is_a_line_at_debug(capsys, post_events, runtime, intake_log):
    logs.configure({"format": "json", "level": "DEBUG"}, runtime.redactor)
    capsys.readouterr()
    post_events([referral_event("l-1"), referral_event("l-2", email="bob.smith@example.org")])
    events = [e["message"] for e in lines(capsys) if e["logger"] == "connector.webhooks"]
    assert events == [
        "2 events from extole: 2 accepted, 0 duplicates",
        "event l-1 from extole: opt_in j***@example.com",
        "event l-2 from extole: opt_in b***@example.org",
    ]


def test_each_delivery_is_a_line_at_debug(
    capsys, post_events, runtime, requests_mock, listrak_token, intake_log
):
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    post_events([referral_event("l-1"), referral_event("l-2", email="bob.smith@example.org")])
    logs.configure({"format": "json", "level": "DEBUG"}, runtime.redactor)
    capsys.readouterr()
    Worker(runtime).run_once()
    worker = [e["message"] for e in lines(capsys) if e["logger"] == "connector.worker"]
    assert [m.split(", HTTP")[0] for m in worker[:2]] == [
        "delivery 1 to listrak, attempt 1: delivered",
        "delivery 2 to listrak, attempt 1: delivered",
    ]
    assert worker[2].startswith("settled in ")


def test_secrets_and_encoded_emails_are_masked_in_any_line(capsys, runtime):
    logs.configure({"format": "text", "level": "INFO"}, runtime.redactor)
    logging.getLogger("connector.test").info("secret %s for %s", "prod-secret-value", "Jane.Doe@Example.com")
    err = capsys.readouterr().err
    assert "secret *** for J***@Example.com" in err
    assert "prod-secret-value" not in err


def test_tracebacks_are_redacted_and_masked_too(capsys, runtime):
    logs.configure({"format": "json", "level": "INFO"}, runtime.redactor)
    try:
        raise ValueError("bad prod-secret-value for jane@example.com")
    except ValueError:
        logging.getLogger("connector.test").exception("failed")
    err = capsys.readouterr().err
    assert "bad *** for j***@example.com" in err
    assert "prod-secret-value" not in err
    assert "jane@example.com" not in err


def test_server_request_lines_mask_emails_in_the_query(runtime, monkeypatch):
    """The dev server and gunicorn log request lines; a Live View ?email= filter is in them."""
    logs.configure({"format": "text", "level": "INFO"}, runtime.redactor)
    for name in ("werkzeug", "gunicorn.access"):
        server = logging.getLogger(name)
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        monkeypatch.setattr(server, "handlers", [handler])
        monkeypatch.setattr(server, "level", logging.INFO)
        server.info('"GET /live?email=jane.doe%%40example.com HTTP/1.1" %s', 200)
        assert stream.getvalue() == '"GET /live?email=j***@example.com HTTP/1.1" 200\n'


def test_control_characters_in_a_value_cannot_forge_a_log_line(capsys, runtime):
    logs.configure({"format": "text", "level": "INFO"}, runtime.redactor)
    forged = "e-1\n2026-11-22 05:44:22,000 INFO connector.webhooks forged\r\x1b[2K\x85"
    logging.getLogger("connector.test").info("event %s", forged)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(
        "INFO connector.test event e-1\\n2026-11-22 05:44:22,000 INFO connector.webhooks "
        "forged\\r\\x1b[2K\\x85"
    )


def test_a_traceback_keeps_its_lines_each_indented(capsys, runtime):
    logs.configure({"format": "text", "level": "INFO"}, runtime.redactor)
    try:
        raise ValueError("bad\n2026-11-22 05:44:22,000 INFO connector.webhooks forged\x1b")
    except ValueError:
        logging.getLogger("connector.test").exception("failed")
    first, *traceback = capsys.readouterr().err.splitlines()
    assert first.endswith("ERROR connector.test failed")
    assert traceback[0] == "  Traceback (most recent call last):"
    assert traceback[-2:] == [
        "  ValueError: bad",
        "  2026-11-22 05:44:22,000 INFO connector.webhooks forged\\x1b",
    ]
    assert all(line.startswith("  ") for line in traceback)


def test_the_intake_summary_is_written_by_each_process_on_its_own_while_events_arrive(caplog):
    summary = IntakeLog(every=0.05)
    with caplog.at_level(logging.INFO, logger="connector.webhooks"):
        summary.took("extole", 3, 0)
        summary.took("segment", 1, 1)
        wait_until(lambda: len(caplog.records) == 2, timeout=5, message="the summary lines")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "extole: 3 events accepted, 0 duplicates",
        "segment: 1 events accepted, 1 duplicates",
    ]
