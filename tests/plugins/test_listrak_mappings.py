"""Mappings of a Listrak partner: the config schema, triggers, and how an event is planned."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from marshmallow import ValidationError

from connector.config import ConfigError, load_config
from connector.contract import InboundEvent, Partner
from connector.registry import load_registry
from plugins.listrak.mappings import MappingSchema, matches, plan_mappings
from plugins.segment.testing import audience_event, identify_event

BASE = {
    "name": "m",
    "action": "update_email_contact_profile_fields",
    "list_id": 12345,
    "when": [{"field": "type", "is": "track"}],
    "profile_field_values": {"6789": "on"},
}


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


def test_more_than_fifty_mappings_is_a_config_error_naming_the_file(config_dir, registry):
    problems = config_problems(config_dir, registry, [dict(BASE, name=f"m{i}") for i in range(51)])
    assert problems == ["config/partners/listrak.yaml: mappings: at most 50 mappings per partner"]


def test_bad_mapping_fields_are_named_with_their_index(config_dir, registry):
    bad = dict(
        BASE, list_id="twelve", when=[{"field": "event", "is": "x", "exists": True}], action="send_email"
    )
    problems = config_problems(config_dir, registry, [BASE, bad])
    assert sorted(problems) == [
        "config/partners/listrak.yaml: mappings.1 'm'.action: Must be one of: "
        "update_email_contact_profile_fields.",
        "config/partners/listrak.yaml: mappings.1 'm'.list_id: must be a positive integer or "
        "{path: <dotted path>}",
        "config/partners/listrak.yaml: mappings.1 'm'.when.0: each condition needs exactly one of "
        "is, is_not, exists, contains, starts_with, ends_with, gt, lt",
    ]


@pytest.mark.parametrize("triggers", [{}, {"when": BASE["when"], "any": BASE["when"]}])
def test_a_mapping_needs_exactly_one_trigger(triggers):
    untriggered = {k: v for k, v in BASE.items() if k != "when"}
    with pytest.raises(ValidationError) as refused:
        MappingSchema().load({**untriggered, **triggers})
    assert refused.value.messages == {"_schema": ["give the trigger as either when: (all of) or any:"]}


def test_yaml_on_and_off_become_check_box_values():
    loaded = MappingSchema().load(
        yaml.safe_load(
            "{name: m, action: update_email_contact_profile_fields, list_id: {path: context.l},"
            " any: [{field: type, is: track}], profile_field_values: {6789: on, 6790: off}}"
        )
    )
    assert loaded["profile_field_values"] == {"6789": "on", "6790": "off"}
    assert loaded["list_id"] == {"path": "context.l"}
    assert loaded["enable_batching"] is True


# -- triggers -----------------------------------------------------------------------------------
ENTERED = audience_event("m1")


@pytest.mark.parametrize(
    ("kind", "conditions", "expected"),
    [
        ("when", [{"field": "type", "is": "track"}, {"field": "event", "is": "Audience Entered"}], True),
        ("when", [{"field": "type", "is": "track"}, {"field": "event", "is": "Audience Exited"}], False),
        ("any", [{"field": "event", "is": "Audience Exited"}, {"field": "type", "is": "track"}], True),
        ("when", [{"field": "properties.audience_key", "is": "my_audience"}], True),
        ("when", [{"field": "context.personas.computation_key", "is_not": "other"}], True),
        ("when", [{"field": "context.traits.listrak_list_12345", "is_not": "x"}], True),
        ("when", [{"field": "context.traits.listrak_list_12345", "exists": True}], False),
        ("when", [{"field": "context.traits.email", "exists": True}], True),
        ("when", [{"field": "properties.my_audience", "is": True}], True),
        ("when", [{"field": "properties.my_audience", "is": "true"}], False),
    ],
)
def test_trigger(kind, conditions, expected):
    mapping = (
        MappingSchema().load({**{k: v for k, v in BASE.items() if k != "when"}, "any": conditions})
        if kind == "any"
        else MappingSchema().load(dict(BASE, when=conditions))
    )
    assert matches(mapping, ENTERED) is expected


def test_numbers_in_events_match_numbers_written_as_text():
    mapping = MappingSchema().load(dict(BASE, when=[{"field": "properties.list", "is": "12345"}]))
    assert matches(mapping, {"properties": {"list": 12345}})


# -- planning -----------------------------------------------------------------------------------
PARTNER = {"plugin": "listrak", "keys": {"production": "listrak-production", "staging": None}}


def event(payload, environment="production") -> InboundEvent:
    return InboundEvent(
        event_id=payload["messageId"],
        type=payload["type"],
        event_time=datetime(2026, 11, 22, 5, 0, tzinfo=UTC),
        environment=environment,
        email=None,
        payload=payload,
    )


def plan(payload, environment="production", **changes):
    mapping = MappingSchema().load(dict(BASE, when=[{"field": "messageId", "exists": True}], **changes))
    return plan_mappings(
        event(payload, environment), Partner.from_config("listrak", dict(PARTNER, mappings=[mapping]))
    )


def test_planned_delivery_orders_and_batches_by_contact_and_list():
    (delivery,) = plan(
        audience_event("m1", "Jane@Example.com "),
        profile_field_values={"6790": "useAudienceKey", "6789": "off"},
    )
    assert delivery.skip_reason is None
    assert delivery.spec["fields"] == [
        {"segmentationFieldId": 6790, "value": "on"},
        {"segmentationFieldId": 6789, "value": "off"},
    ]
    assert delivery.contact_key == "listrak|production|12345|jane@example.com|6789,6790"
    assert delivery.batch_key == "listrak|production|12345"
    assert delivery.partner_key_id == "listrak-production"


def test_batching_off_plans_the_one_event_per_request_action():
    (delivery,) = plan(audience_event("m1"), enable_batching=False)
    assert (delivery.action, delivery.batch_key) == ("update_email_contact_profile_fields_unbatched", None)
    assert delivery.contact_key == "listrak|production|12345|jane@example.com|6789"


def test_email_falls_back_to_traits_email():
    (delivery,) = plan(identify_event("m1", "joe@example.com"))
    assert delivery.spec["email"] == "joe@example.com"


def test_email_from_a_configured_path():
    payload = audience_event("m1", properties={"work_email": "W@Example.com"})
    (delivery,) = plan(payload, email_address={"path": "properties.work_email"})
    assert delivery.spec["email"] == "w@example.com"


@pytest.mark.parametrize(
    ("payload", "changes", "reason"),
    [
        (
            audience_event("m1", "not-an-email"),
            {},
            "invalid email address 'not-an-email' at context.traits.email",
        ),
        (
            {"type": "track", "event": "x", "messageId": "m1"},
            {},
            "no email address at context.traits.email or traits.email",
        ),
        (
            audience_event("m1"),
            {"list_id": {"path": "context.traits.listId"}},
            "list_id: context.traits.listId holds nothing, not a positive integer list id",
        ),
        (
            audience_event("m1", context={"traits": {"email": "a@b.co"}}),
            {"profile_field_values": {"6789": "useAudienceKey"}},
            "field 6789 is useAudienceKey but the event has no true/false at properties (or traits) "
            "[context.personas.computation_key]",
        ),
    ],
)
def test_events_that_cannot_be_sent_are_skipped_with_the_reason(payload, changes, reason):
    (delivery,) = plan(payload, **changes)
    assert delivery.skip_reason == reason
    assert delivery.contact_key is None


def test_staging_event_without_a_staging_key_is_skipped():
    (delivery,) = plan(audience_event("m1"), environment="staging")
    assert delivery.skip_reason == "staging event and no staging key is configured"


@pytest.mark.parametrize("list_id", ["5" * 5000, "2147483648", "0", -3])
def test_list_id_out_of_range_is_refused_with_the_reason(list_id):
    payload = audience_event("m1", context={"traits": {"email": "a@b.co", "listId": list_id}})
    (delivery,) = plan(payload, list_id={"path": "context.traits.listId"})
    assert delivery.skip_reason.startswith("list_id: context.traits.listId holds")


def test_list_id_read_from_the_event():
    payload = audience_event("m1", context={"traits": {"email": "a@b.co", "listId": "456"}})
    (delivery,) = plan(payload, list_id={"path": "context.traits.listId"})
    assert delivery.spec["list_id"] == 456
    assert delivery.batch_key == "listrak|production|456"
