"""update_email_contact_profile_fields: the exact bulk requests that reach Listrak for Segment
events, as Listrak's own Segment destination sends them, plus newest-wins and per-event outcomes."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from sqlalchemy import select

from connector.app import create_app
from connector.contract import HttpResult, Partner
from connector.delivery.worker import Worker
from connector.outbox.tables import deliveries
from plugins.listrak.profile_fields import CHUNK_SIZE, UpdateEmailContactProfileFields
from plugins.listrak.testing import API
from plugins.segment.testing import audience_event, identify_event, post_segment

BULK = re.compile(re.escape(API) + r"/List/\d+/Contact/SegmentationField$")
ALWAYS = [{"field": "context.personas.computation_key", "is": "my_audience"}]


def mapping(values, list_id=123, **extra) -> dict:
    return {
        "name": "audience",
        "when": ALWAYS,
        "action": "update_email_contact_profile_fields",
        "list_id": list_id,
        "profile_field_values": values,
        **extra,
    }


def item(email, *pairs) -> dict:
    return {
        "emailAddress": email,
        "segmentationFieldValues": [{"segmentationFieldId": f, "value": v} for f, v in pairs],
    }


@pytest.fixture
def connector(config_dir, make_runtime, listrak_token, requests_mock):
    """Writes the mappings, then returns (runtime, client); profile updates are due at once."""
    requests_mock.post(BULK, status_code=201, json={"status": 201, "resourceId": "import-1"})

    def build(*mappings):
        path = config_dir / "partners" / "listrak.yaml"
        partner = yaml.safe_load(path.read_text())
        partner["mappings"] = list(mappings)
        path.write_text(yaml.safe_dump(partner))
        settings_path = config_dir / "connector.yaml"
        settings = yaml.safe_load(settings_path.read_text())
        settings["worker"]["batch_window"] = "0s"
        settings_path.write_text(yaml.safe_dump(settings))
        runtime = make_runtime()
        return runtime, create_app({"TESTING": True}, runtime=runtime).test_client()

    return build


@pytest.fixture
def sent(requests_mock):
    def requests() -> list[tuple[str, list]]:
        return [
            (r.path.split("/v1", 1)[1], r.json()) for r in requests_mock.request_history if BULK.match(r.url)
        ]

    return requests


def deliver(connector, mappings, *batches):
    runtime, client = connector(*mappings)
    for events in batches:
        response = post_segment(client, {"batch": events})
        assert response.status_code == 202, response.json
        Worker(runtime).run_once()
    return runtime


JANE, JOE = "jane@example.com", "joe@example.com"
PATH = "/list/123/contact/segmentationfield"
CASES = {
    # value: (single event for Jane (audience true), batch Jane true + Joe false)
    "on": ([item(JANE, (6789, "on"))], [item(JANE, (6789, "on")), item(JOE, (6789, "on"))]),
    "off": ([item(JANE, (6789, "off"))], [item(JANE, (6789, "off")), item(JOE, (6789, "off"))]),
    "useAudienceKey": ([item(JANE, (6789, "on"))], [item(JANE, (6789, "on")), item(JOE, (6789, "off"))]),
    "gold tier": (
        [item(JANE, (6789, "gold tier"))],
        [item(JANE, (6789, "gold tier")), item(JOE, (6789, "gold tier"))],
    ),
}


@pytest.mark.parametrize("value", list(CASES))
def test_value_single_event(value, connector, sent):
    deliver(connector, [mapping({"6789": value})], [audience_event("m1", JANE, entered=True)])
    assert sent() == [(PATH, CASES[value][0])]


@pytest.mark.parametrize("value", list(CASES))
def test_value_batched_two_people(value, connector, sent):
    deliver(
        connector,
        [mapping({"6789": value})],
        [audience_event("m1", JANE, entered=True), audience_event("m2", JOE, entered=False)],
    )
    assert sent() == [(PATH, CASES[value][1])]


def test_field_ids_that_are_not_positive_integers_are_dropped(connector, sent):
    values = {"0": "on", "": "on", "test": "on", "undefined": "on", "null": "on", "6790": "off"}
    deliver(connector, [mapping(values)], [audience_event("m1", JANE)])
    assert sent() == [(PATH, [item(JANE, (6790, "off"))])]


def test_contact_without_valid_field_ids_is_sent_with_an_empty_list(connector, sent):
    deliver(connector, [mapping({"0": "on", "test": "on"})], [audience_event("m1", JANE)])
    assert sent() == [(PATH, [item(JANE)])]


def test_events_are_grouped_into_one_request_per_list(connector, sent):
    events = [
        audience_event(
            f"m{i}",
            f"p{i}@example.com",
            context={
                "traits": {"email": f"p{i}@example.com", "listId": list_id},
                "personas": {"computation_key": "my_audience"},
            },
        )
        for i, list_id in enumerate([123, 456, 123])
    ]
    deliver(connector, [mapping({"6789": "on"}, list_id={"path": "context.traits.listId"})], events)
    assert sent() == [
        (PATH, [item("p0@example.com", (6789, "on")), item("p2@example.com", (6789, "on"))]),
        ("/list/456/contact/segmentationfield", [item("p1@example.com", (6789, "on"))]),
    ]


def test_identify_reads_the_audience_trait(connector, sent):
    deliver(
        connector,
        [mapping({"6789": "useAudienceKey"})],
        [identify_event("m1", JANE, entered=True), identify_event("m2", JOE, entered=False)],
    )
    assert sent() == [(PATH, [item(JANE, (6789, "on")), item(JOE, (6789, "off"))])]


def test_entered_then_exited_in_one_batch_ends_off(connector, sent):
    deliver(
        connector,
        [mapping({"6789": "useAudienceKey"})],
        [
            audience_event("m1", JANE, entered=True, timestamp="2026-11-22T05:00:00Z"),
            audience_event("m2", JANE, entered=False, timestamp="2026-11-22T05:00:01Z"),
        ],
    )
    assert sent() == [(PATH, [item(JANE, (6789, "off"))])]


def test_entered_then_exited_across_batches_ends_off(connector, sent):
    deliver(
        connector,
        [mapping({"6789": "useAudienceKey"})],
        [audience_event("m1", JANE, entered=True, timestamp="2026-11-22T05:00:00Z")],
        [audience_event("m2", JANE, entered=False, timestamp="2026-11-22T05:00:01Z")],
    )
    assert sent() == [(PATH, [item(JANE, (6789, "on"))]), (PATH, [item(JANE, (6789, "off"))])]


def test_late_entered_after_exited_is_superseded(connector, sent):
    runtime = deliver(
        connector,
        [mapping({"6789": "useAudienceKey"})],
        [audience_event("m2", JANE, entered=False, timestamp="2026-11-22T05:00:01Z")],
        [audience_event("m1", JANE, entered=True, timestamp="2026-11-22T05:00:00Z")],
    )
    assert sent() == [(PATH, [item(JANE, (6789, "off"))])]
    with runtime.engine.connect() as conn:
        assert sorted(conn.execute(select(deliveries.c.state)).scalars()) == ["delivered", "superseded"]


def test_batching_off_sends_one_request_per_event(connector, sent):
    deliver(
        connector,
        [mapping({"6789": "on"}, enable_batching=False)],
        [audience_event("m1", JANE), audience_event("m2", JOE)],
    )
    assert sent() == [(PATH, [item(JANE, (6789, "on"))]), (PATH, [item(JOE, (6789, "on"))])]


def test_large_burst_is_split_into_chunks(connector, sent):
    events = [audience_event(f"m{i}", f"p{i}@example.com") for i in range(CHUNK_SIZE * 2 + 10)]
    runtime, client = connector(mapping({"6789": "on"}))
    for start in range(0, len(events), 1000):
        assert post_segment(client, {"batch": events[start : start + 1000]}).status_code == 202
    Worker(runtime).run_once()
    sizes = sorted(len(body) for _, body in sent())
    assert sizes == [10, CHUNK_SIZE, CHUNK_SIZE]
    assert {i["emailAddress"] for _, body in sent() for i in body} == {
        f"p{i}@example.com" for i in range(len(events))
    }


# -- one request, one outcome per event ----------------------------------------------------------
ACTION = UpdateEmailContactProfileFields()
PARTNER = Partner.from_config("listrak", {"api_url": API})


def spec(email, value, at, list_id=123, fid=6789):
    return {
        "list_id": list_id,
        "email": email,
        "event_time": at,
        "fields": [{"segmentationFieldId": fid, "value": value}],
    }


def test_same_email_and_field_in_one_request_newest_wins():
    specs = [
        spec(JANE, "off", 20.0),
        spec(JOE, "on", 5.0),
        spec(JANE, "on", 10.0),
        spec(JANE, "on", 30.0, fid=6790),
    ]
    request = ACTION.build_request(PARTNER, specs)
    assert request.json == [item(JANE, (6789, "off"), (6790, "on")), item(JOE, (6789, "on"))]
    outcomes = ACTION.interpret(PARTNER, specs, HttpResult(status=201, latency_ms=1.0))
    assert [o.state for o in outcomes] == ["delivered", "delivered", "skipped", "delivered"]


def test_refused_item_fails_alone_and_the_rest_retry():
    specs = [spec(JANE, "on", 1.0), spec(JOE, "on", 2.0)]
    refusal = HttpResult(
        status=400,
        latency_ms=1.0,
        body={
            "status": 400,
            "error": "ERROR_INVALID_PARAMETER",
            "message": "An invalid value was supplied for [1].segmentationFieldValues[0].value.",
        },
    )
    outcomes = ACTION.interpret(PARTNER, specs, refusal)
    assert [(o.state, o.reason) for o in outcomes] == [
        ("retrying", "another contact in the same request was refused; sending again without it"),
        (
            "dead",
            "Listrak refused this contact: ERROR_INVALID_PARAMETER: An invalid value was "
            "supplied for [1].segmentationFieldValues[0].value.",
        ),
    ]


def test_refusal_of_the_whole_request_is_left_to_the_core():
    specs = [spec(JANE, "on", 1.0), spec(JOE, "on", 2.0)]
    unknown_list = HttpResult(
        status=404,
        latency_ms=1.0,
        body={"status": 404, "error": "ERROR_UNABLE_TO_LOCATE_RESOURCE", "message": "No list 123."},
    )
    assert ACTION.interpret(PARTNER, specs, unknown_list) is None


def test_one_request_holds_one_list():
    with pytest.raises(ValueError, match="one request per list"):
        ACTION.build_request(PARTNER, [spec(JANE, "on", 1.0), spec(JOE, "on", 1.0, list_id=456)])


def test_preview_shows_the_bulk_request_of_a_segment_event(config_dir, tmp_path, capsys):
    from connector.cli import main

    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(audience_event("m1", "Jane@Example.com", entered=False)))
    assert main(["--config", str(config_dir), "preview", str(event_file)]) == 0
    out = capsys.readouterr().out
    assert f"POST {API}/List/12345/Contact/SegmentationField" in out
    body = out.split("Content-Type: application/json\n", 1)[1].split("outcome rules:")[0]
    assert json.loads(body) == [item(JANE, (6789, "off"))]
