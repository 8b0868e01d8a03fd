"""`connector preview <event.json>`: the exact requests and outcome rules; nothing sent."""

from __future__ import annotations

import json

import pytest

from connector.cli import main
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API
from tests.config_files import update_yaml

RULES_TAIL = [
    "    outcome rules:",
    "      - superseded (not sent) if this contact already has a queued or delivered change "
    "with an event_time later than 2026-11-22T05:44:22.123+00:00",
    "      - 2xx: delivered (the partner plugin may read some answers otherwise, e.g. 'already "
    "unsubscribed' counts as delivered)",
    "      - 408, 425, 429, 5xx, timeout, connection error: retrying after 1s, 10s, 1m, 10m, 1h, "
    "3h, 12h, 12h (Retry-After honoured), then dead",
    "      - 401: one fresh token, then at once again; credentials refused by the token "
    "endpoint: key listrak-production paused, deliveries wait",
    "      - other 4xx: dead (kept at least 7 days, replayable)",
    "nothing was sent (preview)",
]


@pytest.fixture
def preview(config_dir, tmp_path, capsys, requests_mock):
    """Run preview on an event; requests_mock (with no routes) fails any request sent."""

    def run(event, *extra) -> tuple[int, list[str], str]:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(event))
        code = main(["--config", str(config_dir), "preview", str(path), *extra])
        out = capsys.readouterr()
        assert requests_mock.call_count == 0
        return code, out.out.splitlines(), out.err

    return run


def test_opt_in_shows_the_exact_request(preview):
    code, lines, _ = preview(referral_event())
    assert code == 0
    assert lines == [
        "event e-1: opt_in, production, jane.doe@example.com (source extole)",
        "  partner listrak: contact_subscription (key listrak-production)",
        f"    POST {API}/List/12345/Contact",
        "    Accept: application/json",
        "    Authorization: Bearer ***",
        "    Content-Type: application/json",
        "",
        "    {",
        '      "emailAddress": "jane.doe@example.com",',
        '      "subscriptionState": "Subscribed",',
        '      "segmentationFieldValues": [',
        "        {",
        '          "segmentationFieldId": 1001,',
        '          "value": "+15555555555"',
        "        },",
        "        {",
        '          "segmentationFieldId": 1002,',
        '          "value": "refer.example.com/jdoe"',
        "        },",
        "        {",
        '          "segmentationFieldId": 1003,',
        '          "value": "Jane"',
        "        },",
        "        {",
        '          "segmentationFieldId": 1004,',
        '          "value": "Doe"',
        "        },",
        "        {",
        '          "segmentationFieldId": 1005,',
        '          "value": "advocate"',
        "        }",
        "      ]",
        "    }",
        *RULES_TAIL,
    ]


def test_opt_out_sends_no_profile_fields(preview):
    code, lines, _ = preview(referral_event(type="opt_out"))
    assert code == 0
    body = lines[lines.index("    {") : lines.index("    }") + 1]
    assert body == [
        "    {",
        '      "emailAddress": "jane.doe@example.com",',
        '      "subscriptionState": "Unsubscribed"',
        "    }",
    ]


def test_an_optional_field_left_out_is_a_warning_under_its_event(preview):
    code, lines, _ = preview(referral_event(funnel=["advocate"]))
    assert code == 0
    assert lines[:2] == [
        "event e-1: opt_in, production, jane.doe@example.com (source extole)",
        "  warning: person.funnel: Not a valid string. (left out)",
    ]
    assert '          "segmentationFieldId": 1005,' not in lines


def test_resubscribe_shows_the_query(preview, config_dir):
    update_yaml(config_dir / "partners" / "listrak.yaml", {"resubscribe": True})
    _, lines, _ = preview(referral_event())
    assert f"    POST {API}/List/12345/Contact?overrideUnsubscribe=true" in lines


def test_staging_without_a_staging_key_is_skipped(preview, config_dir):
    update_yaml(config_dir / "partners" / "listrak.yaml", drop=("keys.staging",))
    code, lines, _ = preview(referral_event(environment="staging"))
    assert code == 0
    assert lines == [
        "event e-1: opt_in, staging, jane.doe@example.com (source extole)",
        "  partner listrak: contact_subscription (no key)",
        "    skipped: staging event and no staging key is configured; nothing would be sent",
        "nothing was sent (preview)",
    ]


def test_disabled_direction_is_skipped(preview, config_dir):
    update_yaml(config_dir / "partners" / "listrak.yaml", {"send_opt_outs": False})
    _, lines, _ = preview(referral_event(type="opt_out"))
    assert lines[1:] == [
        "  partner listrak: contact_subscription (key listrak-production)",
        "    skipped: send_opt_outs is off for this partner; nothing would be sent",
        "nothing was sent (preview)",
    ]


def test_disabled_partner_is_named(preview, config_dir):
    update_yaml(config_dir / "partners" / "listrak.yaml", {"enabled": False})
    _, lines, _ = preview(referral_event())
    assert lines[1:] == [
        "  partner listrak: disabled (enabled: false): not sent",
        "  no delivery: no enabled partner plans anything for this event",
        "nothing was sent (preview)",
    ]


def test_an_array_previews_every_event(preview):
    _, lines, _ = preview([referral_event("a-1"), referral_event("a-2", type="opt_out")])
    assert [line for line in lines if line.startswith("event ")] == [
        "event a-1: opt_in, production, jane.doe@example.com (source extole)",
        "event a-2: opt_out, production, jane.doe@example.com (source extole)",
    ]


def test_invalid_event_names_every_problem(preview):
    code, lines, err = preview({"event_id": "x", "type": "opt_maybe"}, "--source", "extole")
    assert code == 2
    assert lines == []
    assert "extole: type: Must be one of: opt_in, opt_out, sms_opt_in, sms_opt_out." in err
    assert "extole: person: Missing data for required field." in err


def test_unknown_source_and_missing_file(preview, config_dir, capsys):
    code, _, err = preview(referral_event(), "--source", "nope")
    assert code == 2
    assert "no source 'nope'" in err
    assert main(["--config", str(config_dir), "preview", "/nonexistent/event.json"]) == 2
    assert "cannot read /nonexistent/event.json" in capsys.readouterr().err


def test_segment_event_finds_its_source_and_shows_the_bulk_request(preview):
    from plugins.segment.testing import audience_event

    code, lines, _ = preview(audience_event("m-1"))
    assert code == 0
    assert lines[0] == "event m-1: track, production, jane@example.com (source segment)"
    assert f"    POST {API}/List/12345/Contact/SegmentationField" in lines
    assert any(line.startswith("      - batched: waits up to 1s") for line in lines)
