"""The secrets sweep: the end-to-end flows run on real processes with distinctive secret values
(inbound webhook secrets and write key, the Listrak client secrets, the SMS integration's too,
the Segment write key, the admin token, the session key, every token the Listrak sandbox
issues, the session cookie), with every inbound route called (the write key also in the
Segment calls' bodies), then every log line, every row of every table, every Live View page
and admin API answer (consent stories, which read Listrak live, among them), and what the
commands print are searched for each of them (also URL-encoded, JSON-escaped and as HTTP Basic
credentials): 0 hits."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests
from sqlalchemy import MetaData, select

from connector.outbox.engine import make_engine
from connector.testing import ROOT, Sidecar, Stack, StoreReader, free_port, wait_until
from plugins.extole.testing import referral_event, signature_headers
from plugins.segment import testing as segment_testing
from plugins.segment.source import TRACKING_CALLS
from plugins.segment.testing import audience_event, identify_event, write_key_headers

SECRETS = {
    "EXTOLE_WEBHOOK_SECRET": "sweep-extole-hmac-Q7vX2pLm9R",
    "SEGMENT_WEBHOOK_SECRET": "sweep-segment-hmac-K4wN8tZc3J",
    "SEGMENT_INBOUND_WRITE_KEY": "sweepInboundWriteKeyH6yB1q",
    "SEGMENT_WRITE_KEY": "sweepOutboundWriteKeyF2mD7s",
    "LISTRAK_CLIENT_SECRET": "sweep-listrak-secret-U9cE5aWk",
    "LISTRAK_STAGING_CLIENT_SECRET": "sweep-listrak-staging-T3gH8nVr",
    "LISTRAK_SMS_CLIENT_SECRET": "sweep-listrak-sms-R2dF6hJw",
    "CONNECTOR_SECRET_KEY": "sweep-session-signing-key-P1jS6dYo4Lx0",
}
ADMIN_TOKEN = "sweep-admin-token-M5bR2kXe7Wq"
CLIENTS = {
    "sweep-client": SECRETS["LISTRAK_CLIENT_SECRET"],
    "sweep-staging-client": SECRETS["LISTRAK_STAGING_CLIENT_SECRET"],
}
SMS_CLIENTS = {"sweep-sms-client": SECRETS["LISTRAK_SMS_CLIENT_SECRET"]}
# The Listrak sandbox with the clients above, writing each token it issues to a file.
RECORDING_SANDBOX = """
import json, sys
from connector.cli.serving import serve
from plugins.listrak.sandbox import create_sandbox_app
from plugins.listrak.sandbox.state import Sandbox

port, clients, tokens = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
sms_clients = json.loads(sys.argv[4])
issue = Sandbox.issue_token

def recording(self, client_id):
    token = issue(self, client_id)
    with open(tokens, "a") as out:
        out.write(token + "\\n")
    return token

Sandbox.issue_token = recording
serve(create_sandbox_app(clients=clients, sms_clients=sms_clients), "127.0.0.1", port, 16, "ready")
"""


@pytest.fixture
def stack(tmp_path):
    workdir = tmp_path / "stack"
    listrak_url, segment_port = f"http://127.0.0.1:{free_port()}", free_port()
    tokens = workdir / "issued-tokens.txt"
    sidecars = [
        Sidecar(
            "sandbox",
            [
                sys.executable,
                "-c",
                RECORDING_SANDBOX,
                listrak_url.rsplit(":", 1)[1],
                json.dumps(CLIENTS),
                str(tokens),
                json.dumps(SMS_CLIENTS),
            ],
            f"{listrak_url}/_sandbox/state",
        ),
        Sidecar(
            "segment-sandbox",
            [
                sys.executable,
                "-m",
                "connector.cli",
                "segment-sandbox",
                "--port",
                str(segment_port),
                "--write-key",
                SECRETS["SEGMENT_WRITE_KEY"],
            ],
            f"http://127.0.0.1:{segment_port}/_sandbox/state",
        ),
    ]
    env = {
        **SECRETS,
        "LISTRAK_CLIENT_ID": "sweep-client",
        "LISTRAK_STAGING_CLIENT_ID": "sweep-staging-client",
        "LISTRAK_SMS_CLIENT_ID": "sweep-sms-client",
        "LISTRAK_AUTH_URL": f"{listrak_url}/OAuth2/Token",
        "LISTRAK_API_URL": f"{listrak_url}/email/v1",
        "LISTRAK_SMS_API_URL": f"{listrak_url}/sms/v1",
        "SEGMENT_API_URL": f"http://127.0.0.1:{segment_port}",
    }
    stack = Stack(
        workdir,
        settings={"retry_schedule": ["200ms", "200ms", "200ms"], "logging": {"level": "DEBUG"}},
        env=env,
        sidecars=sidecars,
        signers={
            "extole": signature_headers(SECRETS["EXTOLE_WEBHOOK_SECRET"]),
            "segment": segment_testing.signature_headers(SECRETS["SEGMENT_WEBHOOK_SECRET"]),
        },
        default_source="extole",
        admin_token=ADMIN_TOKEN,
    )
    stack.listrak_url, stack.tokens = listrak_url, tokens
    try:
        yield stack.start()
    finally:
        stack.stop()


def command(stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "connector.cli", *args],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
    )
    return done.stdout + done.stderr


def library_calls(stack):
    """Every route of the Segment-library source, each call carrying the write key (and
    sentAt) in its body as well, top-level and inside each batch item, as some clients do."""
    key = SECRETS["SEGMENT_INBOUND_WRITE_KEY"]
    headers = {"Content-Type": "application/json", **write_key_headers(key)}
    in_body = {"writeKey": key, "sentAt": "2026-11-22T05:00:01Z"}
    calls = {"": [identify_event("sw-lib", email="lib@example.com") | in_body]}
    for i, (route, kind) in enumerate(sorted(TRACKING_CALLS.items())):
        event = (identify_event if kind == "identify" else audience_event)(f"sw-{route}", f"c{i}@example.com")
        calls[f"/{route}"] = {"batch": [event | in_body], **in_body} if kind == "batch" else event | in_body
    return [
        requests.post(
            f"{stack.base_url}/webhooks/segment-library{route}", json=body, headers=headers, timeout=10
        )
        for route, body in calls.items()
    ]


def run_the_flows(stack) -> list[str]:
    """Every road a secret could take; returns what the commands and pages answered."""
    seen = []
    fault = f"{stack.listrak_url}/_sandbox/faults"
    assert stack.post_events(referral_event("sw-1", email="jane@example.com")).status_code == 202
    requests.post(fault, json={"mode": "expire_token"}, timeout=10).raise_for_status()  # a 401, a new token
    assert stack.post_events(referral_event("sw-2", "opt_out", "jane@example.com", "2026-11-22T06:00:00Z")).ok
    requests.post(fault, json={"mode": "500", "count": 1}, timeout=10).raise_for_status()  # a retry
    assert stack.post_events(referral_event("sw-3", email="stage@example.com", environment="staging")).ok
    assert stack.post_events(referral_event("sw-sms", "sms_opt_in", "jane@example.com")).ok
    assert stack.post_events(audience_event("sw-4", email="sam@example.com"), source="segment").ok
    for call in library_calls(stack):
        assert call.status_code in (200, 202), call.text
    unsigned = requests.post(
        f"{stack.base_url}/webhooks/extole",
        data=b"{}",
        headers={"Content-Type": "application/json", "X-Extole-Signature": "sha256=00"},
        timeout=10,
    )
    assert unsigned.status_code == 401
    store = StoreReader(stack.database_url)
    try:
        wait_until(lambda: store.pending() == 0, timeout=60, message="every delivery finished")
    finally:
        store.close()

    browser = requests.Session()
    login = browser.post(
        f"{stack.base_url}/live/login", data={"token": ADMIN_TOKEN, "next": "/live"}, timeout=10
    )
    assert login.status_code == 200
    assert login.url.endswith("/live")
    (cookie,) = browser.cookies.values()
    seen.append(cookie)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    wrong = requests.get(
        f"{stack.base_url}/admin/api/summary", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    pages = ["/live", "/live?partial=1", "/admin/api/events", "/admin/api/summary", "/metrics", "/readyz"]
    # A consent story reads the partner live, with the keys' tokens.
    pages += [
        f"/{where}/contacts/{who}"
        for where in ("live", "admin/api")
        for who in ("jane@example.com", "15555555555")
    ]
    events = requests.get(f"{stack.base_url}/admin/api/events?limit=200", headers=bearer, timeout=10).json()
    for event in events["events"]:
        pages += [f"/live/events/{event['id']}", f"/admin/api/events/{event['id']}"]
        pages += [f"/admin/api/deliveries/{d['id']}" for d in event["deliveries"]]
    for page in pages:  # the cookie is Secure: over plain HTTP the Bearer token signs in
        answer = requests.get(f"{stack.base_url}{page}", headers=bearer, allow_redirects=False, timeout=10)
        assert answer.status_code == 200, page
        seen.append(answer.text)
    seen.append(browser.post(f"{stack.base_url}/live/logout", timeout=10).text)
    seen.append(command(stack, "verify", "listrak"))
    seen.append(command(stack, "check-config"))
    event_file = stack.workdir / "event.json"
    event_file.write_text(json.dumps(referral_event("sw-preview")))
    seen.append(command(stack, "preview", str(event_file)))
    return seen


def every_stored_value(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        return [
            f"{table.name}: {value}"
            for table in tables.sorted_tables
            for row in conn.execute(select(table))
            for value in row
            if value is not None
        ]


def forms(secret: str) -> set[str]:
    basic = base64.b64encode(f"{secret}:".encode()).decode()
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], basic}


def test_no_secret_is_logged_stored_or_shown(stack):
    answers = run_the_flows(stack)
    issued = stack.tokens.read_text().split()
    assert len(issued) >= 3  # the first token, the one after the 401, and verify's
    logs = {path.name: path.read_text(errors="replace") for path in Path(stack.workdir).glob("*.log")}
    assert {"web.log", "worker-0.log", "sandbox.log", "segment-sandbox.log"} <= set(logs)
    haystacks = {
        **{f"log {name}": text for name, text in logs.items()},
        "store": "\n".join(every_stored_value(stack.database_url)),
        "pages and commands": "\n".join(answers[1:]),
    }
    secrets = {
        **SECRETS,
        "CONNECTOR_ADMIN_TOKEN": ADMIN_TOKEN,
        **{f"token {i}": t for i, t in enumerate(issued)},
    }
    secrets["session cookie"] = answers[0]
    hits = [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for form in forms(secret)
        for where, text in haystacks.items()
        if form in text
    ]
    assert hits == []
    assert sum(len(text) for text in haystacks.values()) > 50_000  # the sweep read something
