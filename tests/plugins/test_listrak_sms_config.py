"""A `listrak` partner's `sms:` block: optional, strict, and checked across files (its keys),
every problem naming the file and the field; `connector preview` of SMS events."""

from __future__ import annotations

import json

import pytest

from connector.cli import main
from connector.config import ConfigError, load_config
from connector.registry import load_registry
from plugins.extole.testing import referral_event
from plugins.listrak.testing import SMS_API
from tests.config_files import update_yaml

PARTNER = "config/partners/listrak.yaml"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def sms(config_dir, drop: tuple[str, ...] = (), **values) -> None:
    update_yaml(config_dir / "partners/listrak.yaml", {f"sms.{k}": v for k, v in values.items()}, drop)


def problems(config_dir, registry) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(config_dir, registry)
    return exc.value.problems


def test_the_example_block_loads_with_its_defaults(config_dir, registry):
    partner = load_config(config_dir, registry).partners["listrak"]
    assert partner.settings["sms"] == {
        "api_url": SMS_API,
        "keys": {"production": "listrak-sms-production", "staging": None},
        "sender_code_id": 123,
        "phone_list_id": 456,
        "send_opt_ins": True,
        "send_opt_outs": True,
    }


def test_the_block_is_optional(config_dir, registry):
    update_yaml(config_dir / "partners/listrak.yaml", drop=("sms",))
    assert load_config(config_dir, registry).partners["listrak"].settings["sms"] is None


@pytest.mark.parametrize(
    ("change", "drop", "expected"),
    [
        ({}, ("sms.sender_code_id",), "sms.sender_code_id: Missing data for required field."),
        ({}, ("sms.keys",), "sms.keys: Missing data for required field."),
        ({"phone_list_id": 0}, (), "sms.phone_list_id: Must be greater than or equal to 1."),
        ({"sender_code_id": "abc"}, (), "sms.sender_code_id: Not a valid integer."),
        ({"send_opt_ins": "maybe"}, (), "sms.send_opt_ins: Not a valid boolean."),
        ({"shortcode": 5}, (), "sms.shortcode: Unknown field."),
        (
            {"api_url": "http://api.listrak.com/sms/v1"},
            (),
            "sms.api_url: must be an https:// URL (http:// only for loopback hosts)",
        ),
        (
            {"keys": {"production": "listrak-sms-production", "prod": "x"}},
            (),
            "sms.keys.prod: Unknown field.",
        ),
    ],
)
def test_a_bad_block_names_the_file_and_field(config_dir, registry, change, drop, expected):
    sms(config_dir, drop=drop, **change)
    assert problems(config_dir, registry) == [f"{PARTNER}: {expected}"]


def test_a_missing_sms_key_is_named(config_dir, registry):
    sms(config_dir, keys={"production": "listrak-sms-production", "staging": "listrak-sms-staging"})
    assert problems(config_dir, registry) == [
        "partners/listrak.yaml: sms.keys.staging: no key 'listrak-sms-staging' in keys/"
    ]


def test_an_sms_key_must_be_an_oauth_listrak_key(config_dir, registry):
    (config_dir / "keys/bearer.yaml").write_text(
        "name: a bearer\npartner_key_id: bearer\nalgorithm: BEARER\nkey: abcdefghijklmnop\n"
    )
    sms(config_dir, keys={"production": "bearer"})
    assert problems(config_dir, registry) == [
        "partners/listrak.yaml: sms.keys.production: key 'bearer' is BEARER; Listrak's SMS API "
        "takes an OAUTH_LISTRAK key (of an SMS integration)"
    ]


def test_check_config_prints_the_sms_problem(config_dir, capsys):
    sms(config_dir, drop=("sms.phone_list_id",))
    assert main(["--config", str(config_dir), "check-config"]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        f"  {PARTNER}: sms.phone_list_id: Missing data for required field."
    ]


# -- preview ------------------------------------------------------------------------------------
@pytest.fixture
def preview(config_dir, tmp_path, capsys, requests_mock):
    def run(event) -> list[str]:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(event))
        assert main(["--config", str(config_dir), "preview", str(path)]) == 0
        assert requests_mock.call_count == 0  # nothing is sent
        return capsys.readouterr().out.splitlines()

    return run


def sms_event(type="sms_opt_in"):
    event = referral_event("s-1", type, phone_number="+1 (555) 555-5555")
    del event["person"]["email"]
    return event


def test_preview_shows_the_sms_opt_in_and_what_a_404_leads_to(preview):
    lines = preview(sms_event())
    assert lines[:5] == [
        "event s-1: sms_opt_in, production, phone 15555555555 (source extole)",
        "  partner listrak: sms_subscription (key listrak-sms-production)",
        f"    POST {SMS_API}/ShortCode/123/Contact/15555555555/PhoneList/456",
        "    Accept: application/json",
        "    Authorization: Bearer ***",
    ]
    assert lines[5] == "    outcome rules:"
    assert lines[6] == (
        "      - if Listrak answers 404 (the number is new to sender code 123): POST "
        f"{SMS_API}/ShortCode/123/PhoneList/456/Contact with {{'phoneNumber': '15555555555', "
        "'firstName': 'Jane', 'lastName': 'Doe'}, which creates and subscribes it"
    )
    assert lines[7].startswith("      - superseded (not sent) if this contact already has a queued")


def test_preview_shows_the_sms_opt_out(preview):
    lines = preview(sms_event("sms_opt_out"))
    assert lines[2] == f"    DELETE {SMS_API}/ShortCode/123/ContactUnsubscribe/15555555555/PhoneList/456"
    assert (
        lines[6]
        == "      - if Listrak answers 404 (the number is not on the list): delivered, nothing to undo"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"status": 200, "data": {"phoneListId": 456, "requireDoubleOptIn": True}},  # data: the record
        {"status": 200, "data": [{"phoneListId": 456, "requireDoubleOptIn": True}]},  # Listrak's example
        {"phoneListId": 456, "requireDoubleOptIn": True},  # the bare record Listrak's schema names
    ],
    ids=["data object", "data array", "bare record"],
)
def test_verify_reads_a_phone_list_in_each_shape_listrak_describes(body):
    from connector.contract import HttpResult
    from plugins.listrak.sms_checks import _data

    assert _data(HttpResult(200, 1.0, body))["requireDoubleOptIn"] is True
