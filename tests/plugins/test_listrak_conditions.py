"""Mapping conditions (is, is_not, exists, contains, starts_with, ends_with, gt, lt), values read
from the event with {path: ...}, and check-config naming the mapping and condition that is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from connector.config import ConfigError, load_config
from connector.contract import HttpResult, InboundEvent, Partner, State, Verdict
from connector.registry import load_registry
from plugins.listrak.mappings import MappingSchema, matches, plan_mappings
from plugins.listrak.profile_fields import UpdateEmailContactProfileFields

BASE = {
    "name": "vip tier",
    "action": "update_email_contact_profile_fields",
    "list_id": 12345,
    "when": [{"field": "type", "is": "track"}],
    "profile_field_values": {"6789": "on"},
}
EVENT = {
    "type": "track",
    "messageId": "m-1",
    "event": "Order Completed",
    "properties": {
        "tier": "gold-plus",
        "total": 129.5,
        "items": "3",
        "tags": ["vip", "eu"],
        "since": "2026-03-01T10:00:00Z",
        "day": "2026-03-01",
        "flag": True,
    },
    "context": {"traits": {"email": "Jane@Example.com"}},
}


def holds(condition: dict, payload: dict = EVENT) -> bool:
    return matches(MappingSchema().load(dict(BASE, when=[condition])), payload)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "properties.tier", "contains": "old-p"}, True),
        ({"field": "properties.tier", "contains": "silver"}, False),
        ({"field": "properties.tags", "contains": "vip"}, True),
        ({"field": "properties.tags", "contains": "us"}, False),
        ({"field": "properties.missing", "contains": "x"}, False),
        ({"field": "properties.total", "contains": "12"}, False),
        ({"field": "properties.tier", "starts_with": "gold"}, True),
        ({"field": "properties.tier", "starts_with": "plus"}, False),
        ({"field": "properties.tier", "ends_with": "plus"}, True),
        ({"field": "properties.flag", "ends_with": "e"}, False),
        ({"field": "properties.total", "gt": 100}, True),
        ({"field": "properties.total", "gt": 129.5}, False),
        ({"field": "properties.total", "lt": "130"}, True),
        ({"field": "properties.items", "gt": 2}, True),
        ({"field": "properties.flag", "gt": 0}, False),
        ({"field": "properties.tier", "gt": 0}, False),
        ({"field": "properties.missing", "lt": 10}, False),
        ({"field": "properties.since", "gt": "2026-02-28"}, True),
        ({"field": "properties.since", "lt": "2026-03-01T09:00:00-02:00"}, True),
        ({"field": "properties.since", "lt": "2026-03-01T10:00:00Z"}, False),
        ({"field": "properties.day", "gt": "2026-02-28T23:59:59Z"}, True),
        ({"field": "properties.total", "gt": "2026-01-01"}, False),
        ({"field": "properties.since", "gt": 5}, False),
    ],
)
def test_condition_operators(condition, expected):
    assert holds(condition) is expected


def test_yaml_dates_are_bounds_too():
    condition = yaml.safe_load("{field: properties.since, gt: 2026-02-01}")
    assert holds(condition) is True
    assert holds(yaml.safe_load("{field: properties.since, lt: 2026-02-01}")) is False


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def config_problems(config_dir, registry, mappings) -> list[str]:
    path = config_dir / "partners" / "listrak.yaml"
    partner = yaml.safe_load(path.read_text())
    partner["mappings"] = mappings
    path.write_text(yaml.safe_dump(partner))
    with pytest.raises(ConfigError) as exc:
        load_config(config_dir, registry)
    return exc.value.problems


def test_check_config_names_the_mapping_and_the_condition_that_is_wrong(config_dir, registry):
    good = dict(BASE, name="fine")
    bad = dict(
        BASE,
        when=[
            {"field": "type", "is": "track"},
            {"field": "properties.total", "gt": "lots"},
            {"field": "properties.tier", "starts_with": ["gold"]},
        ],
        profile_field_values={"6789": {"path": "properties..tier"}, "6790": {"where": "x"}},
    )
    assert config_problems(config_dir, registry, [good, bad]) == [
        "config/partners/listrak.yaml: mappings.1 'vip tier'.when.1.gt: gt needs a number or an ISO-8601 "
        "date (2026-11-22 or 2026-11-22T05:00:00Z), got 'lots'",
        "config/partners/listrak.yaml: mappings.1 'vip tier'.when.2.starts_with: Not a valid string.",
        "config/partners/listrak.yaml: mappings.1 'vip tier'.profile_field_values.6789.value.path: "
        "must be a dotted path such as context.traits.email",
        "config/partners/listrak.yaml: mappings.1 'vip tier'.profile_field_values.6790.value.path: "
        "Missing data for required field.",
        "config/partners/listrak.yaml: mappings.1 'vip tier'.profile_field_values.6790.value.where: "
        "Unknown field.",
    ]


# -- values from the event ----------------------------------------------------------------------
PARTNER = {"plugin": "listrak", "keys": {"production": "listrak-production", "staging": None}}


def plan(payload: dict, values: dict):
    mapping = MappingSchema().load(dict(BASE, profile_field_values=values))
    inbound = InboundEvent("m-1", "track", datetime(2026, 11, 22, 5, tzinfo=UTC), "production", None, payload)
    return plan_mappings(inbound, Partner.from_config("listrak", dict(PARTNER, mappings=[mapping])))


def test_values_are_read_from_the_event_as_listrak_strings():
    values = {
        "6789": {"path": "properties.tier"},
        "6790": {"path": "properties.total"},
        "6791": {"path": "properties.flag"},
        "6792": "on",
    }
    (delivery,) = plan(EVENT, values)
    assert delivery.spec["fields"] == [
        {"segmentationFieldId": 6789, "value": "gold-plus"},
        {"segmentationFieldId": 6790, "value": "129.5"},
        {"segmentationFieldId": 6791, "value": "on"},
        {"segmentationFieldId": 6792, "value": "on"},
    ]
    assert "notes" not in delivery.spec
    assert delivery.contact_key == "listrak|production|12345|jane@example.com|6789,6790,6791,6792"


def test_a_missing_path_leaves_the_field_out_with_a_note():
    values = {"6789": {"path": "properties.plan"}, "6790": {"path": "properties.tags"}, "6791": "on"}
    (delivery,) = plan(EVENT, values)
    assert delivery.skip_reason is None
    assert delivery.spec["fields"] == [{"segmentationFieldId": 6791, "value": "on"}]
    assert delivery.spec["notes"] == [
        "field 6789 left out: the event has no value at properties.plan",
        "field 6790 left out: properties.tags holds a list, not a value",
    ]
    assert delivery.contact_key.endswith("|6791")


def test_an_event_left_with_no_field_is_skipped_with_the_notes():
    (delivery,) = plan(EVENT, {"6789": {"path": "properties.plan"}})
    assert delivery.skip_reason == "field 6789 left out: the event has no value at properties.plan"
    assert delivery.contact_key is None


def test_the_notes_are_the_delivered_verdicts_reason_in_the_attempt_record():
    (delivery,) = plan(EVENT, {"6789": {"path": "properties.plan"}, "6791": "on"})
    other = dict(delivery.spec, email="joe@example.com", notes=None)
    answer = HttpResult(status=201, latency_ms=5.0, body={"status": 201, "resourceId": "i-1"})
    assert UpdateEmailContactProfileFields().interpret(
        Partner("listrak"), [delivery.spec, other], answer
    ) == [
        Verdict(State.DELIVERED, "field 6789 left out: the event has no value at properties.plan"),
        Verdict(State.DELIVERED),
    ]


def test_an_integration_without_beta_access_is_dead_with_what_to_ask_for():
    (delivery,) = plan(EVENT, {"6791": "on"})
    answer = HttpResult(
        status=400,
        latency_ms=5.0,
        body={
            "status": 400,
            "error": "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE",
            "message": "This route is in Beta and not yet generally available for all integrations.",
        },
    )
    assert UpdateEmailContactProfileFields().interpret(Partner("listrak"), [delivery.spec], answer) == [
        Verdict(
            State.DEAD,
            "ERROR_INTEGRATION_CANNOT_ACCESS_BETA_ROUTE: ask Listrak support to give this integration "
            "access to the Beta route POST /List/{listId}/Contact/SegmentationField (Update Email "
            "Contact Profile Fields), then replay",
        )
    ]
