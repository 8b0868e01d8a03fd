"""`connector preview` for the forms issue 12 added: several lists, resubscribe: when_newer,
mapping values read from the event, and what a Segment library or the Webhooks destination
sends (a tracking-API batch, a bare array)."""

from __future__ import annotations

import json

import pytest

from connector.cli import main
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API
from tests.config_files import update_yaml


@pytest.fixture
def preview(config_dir, tmp_path, capsys):
    def run(event, *extra) -> list[str]:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(event))
        assert main(["--config", str(config_dir), "preview", str(path), *extra]) == 0
        return capsys.readouterr().out.splitlines()

    return run


def test_several_lists_show_one_request_each(preview, config_dir):
    update_yaml(
        config_dir / "partners/listrak.yaml",
        {"subscription_list_ids": [12345, 456], "segmentation_fields_by_list": {456: {"first_name": 2003}}},
        drop=("subscription_list_id",),
    )
    lines = preview(referral_event(type="opt_in"))
    assert [line for line in lines if line.startswith("    POST")] == [
        f"    POST {API}/List/12345/Contact",
        f"    POST {API}/List/456/Contact",
    ]
    assert lines.count('          "segmentationFieldId": 2003,') == 1


def test_when_newer_shows_the_first_request_and_what_may_follow(preview, config_dir):
    update_yaml(config_dir / "partners/listrak.yaml", {"resubscribe": "when_newer"})
    lines = preview(referral_event())
    assert f"    POST {API}/List/12345/Contact" in lines
    rules = lines.index("    outcome rules:")
    assert lines[rules + 1] == (
        "      - if Listrak answers ERROR_UNSUBSCRIBED_EMAIL_ADDRESS: GET "
        f"{API}/List/12345/Contact/jane.doe@example.com, then the same POST with "
        "?overrideUnsubscribe=true only if this opt-in is newer than the contact's unsubscribeDate "
        "(resubscribe: when_newer); otherwise skipped"
    )


def tier_mapping() -> dict:
    return {
        "name": "tier",
        "when": [{"field": "event", "is": "Plan Changed"}, {"field": "properties.seats", "gt": 10}],
        "action": "update_email_contact_profile_fields",
        "list_id": 12345,
        "profile_field_values": {"1001": {"path": "properties.tier"}, "1002": {"path": "properties.plan"}},
    }


def library_batch(**properties) -> dict:
    call = {
        "type": "track",
        "event": "Plan Changed",
        "messageId": "lib-1",
        "timestamp": "2026-11-22T05:00:00+00:00",
        "properties": properties,
        "context": {"traits": {"email": "jane@example.com"}, "library": {"name": "analytics-python"}},
    }
    return {"batch": [call], "sentAt": "2026-11-22T05:00:01+00:00", "writeKey": "k"}


def test_values_from_the_event_and_the_fields_left_out(preview, config_dir):
    update_yaml(config_dir / "partners/listrak.yaml", {"mappings": [tier_mapping()]})
    lines = preview(library_batch(tier="gold", seats=12), "--source", "segment-library")
    assert lines[:2] == [
        "event lib-1: track, production, jane@example.com (source segment-library)",
        "  partner listrak: update_email_contact_profile_fields (key listrak-production)",
    ]
    body_start = lines.index("    [")
    assert json.loads("\n".join(lines[body_start : lines.index("    ]") + 1])) == [
        {
            "emailAddress": "jane@example.com",
            "segmentationFieldValues": [{"segmentationFieldId": 1001, "value": "gold"}],
        }
    ]
    assert lines[lines.index("    outcome rules:") + 1] == (
        "      - field 1002 left out: the event has no value at properties.plan"
    )
    assert preview(library_batch(tier="gold", seats=3), "--source", "segment-library")[1:] == [
        "  no delivery: no enabled partner plans anything for this event",
        "nothing was sent (preview)",
    ]


def test_a_bare_array_from_the_webhooks_destination(preview, config_dir):
    update_yaml(config_dir / "partners/listrak.yaml", {"mappings": [tier_mapping()]})
    events = library_batch(tier="gold", seats=50)["batch"]
    lines = preview([*events, dict(events[0], messageId="lib-2")], "--source", "segment")
    assert [line for line in lines if line.startswith("event ")] == [
        "event lib-1: track, production, jane@example.com (source segment)",
        "event lib-2: track, production, jane@example.com (source segment)",
    ]
