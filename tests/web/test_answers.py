"""The admin API's answers against the schemas /openapi.json is generated from
(connector/web/answers.py): every answer validates, and every key a route sends is described
there, nested ones included, so the document cannot fall behind the routes."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from connector.delivery.worker import Worker
from connector.web import answers, story_answers
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API

BEARER = {"Authorization": "Bearer test-admin-token"}


def undescribed(schema: Schema, data, path: str = "$") -> list[str]:
    """Paths in `data` that `schema` does not name (a Dict or Raw field's contents are free)."""
    if isinstance(data, list):
        return [p for i, item in enumerate(data) for p in undescribed(schema, item, f"{path}[{i}]")]
    if not isinstance(data, dict):
        return []
    named = {field.data_key or name: field for name, field in schema.fields.items()}
    found = [f"{path}.{key}" for key in data if key not in named]
    for key, field in named.items():
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested) and data.get(key) is not None:
            found += undescribed(inner.schema, data[key], f"{path}.{key}")
    return found


@pytest.fixture
def delivered(post_events, runtime, requests_mock, listrak_token):
    """One opt-in delivered, one refused for good (dead), after one worker pass."""

    def answer(request, context):
        if request.json()["emailAddress"] == "banned@example.com":
            context.status_code = 400
            return {"status": 400, "error": "ERROR_BANNED_EMAIL_ADDRESS", "message": "banned"}
        context.status_code = 201
        return {"status": 201, "resourceId": "r-1"}

    requests_mock.post(f"{API}/List/12345/Contact", json=answer)
    events = [
        referral_event("e-ok", email="ok@example.com"),
        referral_event("e-no", email="banned@example.com"),
    ]
    assert post_events(events).status_code == 202
    Worker(runtime).run_once()


@pytest.mark.parametrize(
    ("method", "path", "body", "schema"),
    [
        ("GET", "/admin/api/events", None, answers.EventPage),
        ("GET", "/admin/api/events/1", None, answers.EventDetail),
        ("GET", "/admin/api/deliveries/1", None, answers.DeliveryWithEvent),
        ("GET", "/admin/api/summary", None, answers.Summary),
        ("GET", "/admin/api/refusals", None, answers.Refusals),
        ("GET", "/admin/api/overview", None, answers.Overview),
        ("POST", "/admin/api/replay", {"dead": True}, answers.Replayed),
        ("GET", "/admin/api/events/999", None, answers.ErrorAnswer),
        ("GET", "/admin/api/contacts/ok@example.com?live=false", None, story_answers.Story),
    ],
)
def test_each_admin_answer_is_what_its_schema_describes(client, delivered, method, path, body, schema):
    response = client.open(path, method=method, headers=BEARER, json=body)
    assert response.status_code in (200, 404)
    assert schema().validate(response.json) == {}
    assert undescribed(schema(), response.json) == []


def test_a_key_the_schema_does_not_name_is_found_with_its_path():
    sent = {"events": [{"id": 1, "deliveries": [{"id": 2, "surprise": True}]}], "extra": 1}
    assert undescribed(answers.EventPage(), sent) == ["$.extra", "$.events[0].deliveries[0].surprise"]
