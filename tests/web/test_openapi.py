"""/openapi.json: an OpenAPI 3.1 document that names every route the app answers (and only
those), and that the app keeps: schemathesis sends a bounded number of generated requests to
every operation (signed the way each source wants) and finds no 5xx, no answer the document
does not describe, and no route that answers without the credential it declares."""

from __future__ import annotations

import gzip
import itertools
import json

import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31

from connector.app import create_app
from plugins.extole.testing import WEBHOOK_SECRET, sign
from plugins.segment.testing import SEGMENT_SECRET, segment_signature, write_key_headers
from tests.fuzzing import examples

BEARER = {"Authorization": "Bearer test-admin-token"}
#: Generated requests per operation; about 35 operations in the example config: MAX_SENT in all.
EXAMPLES = 6
MAX_SENT = 240
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
SAMPLE = {"event_pk": "1", "delivery_id": "1", "filename": "live.css", "address": "15555555555"}


@pytest.fixture
def document(client) -> dict:
    response = client.get("/openapi.json")
    assert (response.status_code, response.mimetype) == (200, "application/json")
    return response.json


def test_the_document_is_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    assert list(jsonschema_rs.Draft202012Validator(OPENAPI_31).iter_errors(document)) == []


def test_every_url_rule_is_in_the_document_and_every_path_is_a_rule(app, document):
    adapter = app.url_map.bind("localhost")
    documented = set()
    for path, operations in document["paths"].items():
        concrete = path.format(**SAMPLE)
        for method in operations:
            endpoint, _ = adapter.match(concrete, method=method.upper())
            documented.add((endpoint, method.upper()))
    rules = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == rules


def test_each_source_is_documented_with_its_own_credential_and_calls(app, document):
    runtime = app.extensions["connector"]
    schemes = document["components"]["securitySchemes"]
    for source_id, config in runtime.config.sources.items():
        operation = document["paths"][f"/webhooks/{source_id}"]["post"]
        (requirement,) = operation["security"]
        (scheme,) = requirement
        assert schemes[scheme] == runtime.registry.verifiers[config["auth"]["algorithm"]].security_scheme
        for call in runtime.registry.sources[config["plugin"]].calls:
            assert f"/webhooks/{source_id}/{call}" in document["paths"]
    assert schemes["source_HS256"]["name"] == "X-Extole-Signature"
    assert schemes["source_SEGMENT_WRITE_KEY"] == {**schemes["source_SEGMENT_WRITE_KEY"], "scheme": "basic"}
    assert "/webhooks/listrak-activity" not in document["paths"]  # a pull source has no route


def test_a_metrics_token_is_declared_when_set(config_dir, monkeypatch, make_runtime):
    settings = config_dir / "connector.yaml"
    settings.write_text(settings.read_text() + "metrics:\n  token: metrics-token-0123456789\n")
    client = create_app({"TESTING": True}, runtime=make_runtime()).test_client()
    document = client.get("/openapi.json").json
    assert document["paths"]["/metrics"]["get"]["security"] == [{"metricsBearer": []}]
    assert "401" in document["paths"]["/metrics"]["get"]["responses"]


# -- schemathesis ---------------------------------------------------------------------------
# Its own pytest plugin (`from_fixture`) does not run under pytest 9 yet, so each operation's
# strategy runs under hypothesis here, every operation in one test (a failure names it).
ADDRESSES = (f"10.15.{i // 250}.{i % 250 + 1}" for i in itertools.count())


def credentials(case, runtime) -> tuple[dict, bytes | None]:
    """The headers that authenticate this case as its operation declares, and the body bytes
    they sign (None: the generated body as schemathesis serialises it)."""
    path = case.operation.path
    if not path.startswith("/webhooks/"):
        security = case.operation.definition.raw.get("security", [])
        return (dict(BEARER) if {"adminBearer": []} in security else {}), None
    source_id = path.split("/")[2]
    algorithm = runtime.config.sources[source_id]["auth"]["algorithm"]
    raw = str(case.body).encode() if case.media_type == "text/plain" else json.dumps(case.body).encode()
    sent = gzip.compress(raw) if (case.headers or {}).get("Content-Encoding") == "gzip" else raw
    if algorithm == "HS256":
        return {"X-Extole-Signature": sign(raw, WEBHOOK_SECRET)}, sent
    if algorithm == "SEGMENT_SIGNATURE":
        return {"X-Signature": segment_signature(raw, SEGMENT_SECRET)}, sent
    if algorithm == "SEGMENT_WRITE_KEY":
        return write_key_headers(), sent
    raise AssertionError(f"no test credential for {algorithm}")


def test_every_operation_keeps_its_document(app, requests_mock):
    # requests_mock: a consent story reads the partner live; here nothing answers it.
    runtime = app.extensions["connector"]
    api = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    sent = []

    @hypothesis.settings(
        max_examples=examples(EXAMPLES),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(data=hypothesis.strategies.data())
    def exercise(operation, data):
        case = data.draw(operation.as_strategy())
        headers, body = credentials(case, runtime)
        extra = {"data": body} if body is not None else {}
        # Each case from its own address: failed sign-ins (the probes of ignored_auth among
        # them) are limited to 10 a minute per address.
        response = case.call_and_validate(
            headers=headers, checks=CHECKS, environ_base={"REMOTE_ADDR": next(ADDRESSES)}, **extra
        )
        sent.append((operation.label, response.status_code))

    failures = {}
    for operation in operations:
        try:
            exercise(operation)
        except Exception as exc:  # every operation runs; the report names each that failed
            failures[operation.label] = str(exc)[:3000]
    assert failures == {}
    assert len(operations) >= 30
    assert len({label for label, _ in sent}) == len(operations)
    assert len(sent) <= EXAMPLES * len(operations) <= MAX_SENT
    statuses = {status for _, status in sent}
    assert {200, 202, 302, 400, 401}.issubset(statuses), statuses
