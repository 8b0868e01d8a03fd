"""The three partner flows a partner's odd answers are tried on (Listrak's contact
subscription, Listrak's bulk profile fields, Segment's batch), each on a runtime of its own
over a given store, and the checks every stored string of an attempt must pass."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from connector.app import create_app
from connector.outbox.tables import attempts, deliveries
from connector.runtime import Runtime
from connector.storable import MAX_CODE, MAX_MESSAGE
from plugins.extole.testing import referral_event, sign
from plugins.listrak.testing import API
from plugins.segment.testing import TRACKING_API, audience_event, post_segment
from tests.config_files import update_yaml

BEARER = {"Authorization": "Bearer test-admin-token"}
CONTACT = f"{API}/List/12345/Contact"
BULK = f"{API}/List/12345/Contact/SegmentationField"
BATCH = f"{TRACKING_API}/v1/batch"
_FRESH = itertools.count()
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Flow:
    name: str
    url: str  # where the partner's answer comes from
    action: str
    code_field: str  # where the partner puts its error code

    def configure(self, config_dir: Path) -> None:
        update_yaml(config_dir / "connector.yaml", set={"worker.batch_window": "0s"})
        if self.name == "segment batch":
            (config_dir / "partners" / "segment.yaml").write_text(
                "plugin: segment\nsources: [segment]\napi_url: ${SEGMENT_API_URL}\n"
                "keys: {production: segment-production}\n"
            )
            (config_dir / "keys" / "segment-production.yaml").write_text(
                "name: Segment production\npartner_key_id: segment-production\n"
                "algorithm: SEGMENT_WRITE_KEY\nkey: ${SEGMENT_WRITE_KEY}\n"
            )

    def send(self, client) -> None:
        """Events that make deliveries of this flow's action (three for a batch)."""
        n = next(_FRESH)
        if self.name == "listrak contact":
            body = json.dumps(referral_event(f"odd-{n}", email=f"odd{n}@example.com")).encode()
            headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
            assert client.post("/webhooks/extole", data=body, headers=headers).status_code == 202
            return
        batch = [audience_event(f"odd-{n}-{i}", email=f"odd{n}-{i}@example.com") for i in range(3)]
        assert post_segment(client, {"batch": batch}).status_code == 202


FLOWS = [
    Flow("listrak contact", CONTACT, "contact_subscription", "error"),
    Flow("listrak profile fields", BULK, "update_email_contact_profile_fields", "error"),
    Flow("segment batch", BATCH, "track_batch", "code"),
]


def connector(flow: Flow, config_dir: Path, database_url: str, requests_mock):
    """(runtime, client) for `flow` on the store at `database_url`; every partner route
    answers 201 until a test mocks `flow.url` otherwise."""
    flow.configure(config_dir)
    for url in (CONTACT, BULK, BATCH):
        requests_mock.post(url, status_code=201, json={"status": 201})
    runtime = Runtime.build(str(config_dir), database_url)
    return runtime, create_app({"TESTING": True}, runtime=runtime).test_client()


def rows_of(runtime, action: str) -> tuple[list[dict], list[dict]]:
    """The deliveries of `action` and their attempts, as stored."""
    with runtime.engine.connect() as conn:
        found = [
            dict(r._mapping) for r in conn.execute(deliveries.select().where(deliveries.c.action == action))
        ]
        ids = [d["id"] for d in found]
        logged = [
            dict(r._mapping) for r in conn.execute(attempts.select().where(attempts.c.delivery_id.in_(ids)))
        ]
    return found, logged


def assert_storable(delivery: dict, logged: list[dict]) -> None:
    """Every string within the limits, with no NUL and no lone surrogate."""
    texts = [delivery["reason"], delivery["last_error_code"], delivery["last_error_message"]]
    for attempt in logged:
        assert attempt["error_code"] is None or len(attempt["error_code"]) <= MAX_CODE
        assert attempt["error_message"] is None or len(attempt["error_message"]) <= MAX_MESSAGE
        texts += [attempt["error_code"], attempt["error_message"], attempt["request"], attempt["response"]]
    assert delivery["last_error_code"] is None or len(delivery["last_error_code"]) <= MAX_CODE
    for text in texts:
        assert text is None or not _UNSTORABLE.search(text), text[:200]


def strict_json(text: str):
    """JSON as the standard has it: NaN and Infinity are not JSON."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def assert_pages_answer(client, event_pk: int) -> dict:
    """The admin API's answer about the event (strict JSON) and its Live View page render."""
    response = client.get(f"/admin/api/events/{event_pk}", headers=BEARER)
    assert response.status_code == 200
    page = client.get(f"/live/events/{event_pk}", headers=BEARER)
    assert page.status_code == 200
    return strict_json(response.get_data(as_text=True))
