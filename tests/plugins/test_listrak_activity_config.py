"""The Listrak activity source's configuration (schema and cross-file checks, the loop with a
Listrak partner) and `connector verify <source>` against the sandbox (real HTTP) or a mock."""

from __future__ import annotations

import pytest

from connector.cli import main
from connector.config import ConfigError, load_config
from connector.registry import load_registry
from plugins.listrak.sandbox import create_sandbox_app, serve_in_thread
from plugins.listrak.testing import API
from plugins.listrak_activity.testing import UNIT_CLIENTS
from tests.config_files import update_yaml

SOURCE = "sources/listrak-activity.yaml"


def problems(config_dir) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir, load_registry())
    return raised.value.problems


def test_the_example_config_with_the_activity_flow_passes_check_config(activity_config, capsys):
    assert main(["--config", str(activity_config), "check-config"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{activity_config}: OK — 4 key(s), 4 source(s) (1 pulled), 2 partner(s)"


def test_example_source_config_loads_with_its_defaults(membership_config):
    source = load_config(membership_config, load_registry()).pull_sources["listrak-activity"]
    assert source == {
        "id": "listrak-activity",
        "plugin": "listrak_activity",
        "api_url": API,
        "key": "listrak-production",
        "lists": [12345],
        "poll_interval": 10.0,
        "lookback": 7 * 86400.0,
        "user_id_field": 1006,
        "membership": True,
        "environment": "production",
        "max_pages_per_poll": 200,
    }


def test_the_key_must_be_an_oauth_listrak_key(activity_config):
    update_yaml(activity_config / SOURCE, {"key": "segment-production"})
    assert problems(activity_config) == [
        "sources/listrak-activity.yaml: key: key 'segment-production' uses SEGMENT_WRITE_KEY; "
        "Listrak's Email API needs an OAUTH_LISTRAK key"
    ]


def test_the_key_must_exist(activity_config):
    update_yaml(activity_config / SOURCE, {"key": "nope"})
    assert problems(activity_config) == ["sources/listrak-activity.yaml: key: no key 'nope' in keys/"]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"lists": []}, "lists: must name at least one list"),
        ({"lists": [0]}, "lists.0: Must be greater than or equal to 1."),
        ({"poll_interval": "500ms"}, "poll_interval: must be at least 1s"),
        ({"user_id_field": "1006"}, "user_id_field: Not a valid integer."),
        ({"membership": "sometimes"}, "membership: Not a valid boolean."),
        (
            {"api_url": "http://api.listrak.com/email/v1"},
            "api_url: must be an https:// URL (http:// only for loopback hosts)",
        ),
    ],
)
def test_source_fields_are_checked(activity_config, values, problem):
    update_yaml(activity_config / SOURCE, values)
    assert problems(activity_config) == [f"config/sources/listrak-activity.yaml: {problem}"]


def test_feeding_a_listrak_partner_is_a_loop_naming_source_and_partner(activity_config):
    update_yaml(activity_config / "partners/listrak.yaml", {"sources": ["extole", "listrak-activity"]})
    assert problems(activity_config) == [
        "sources/listrak-activity.yaml: partners/listrak.yaml feeds source 'listrak-activity' to Listrak "
        "partner 'listrak': Listrak's own email activity would go back to Listrak (a loop); "
        "feed it to another partner"
    ]


# -- connector verify <source> --------------------------------------------------------------------


@pytest.fixture
def sandbox(activity_config, monkeypatch):
    app = create_sandbox_app(clients=UNIT_CLIENTS, demo=True)
    server, url = serve_in_thread(app=app)
    monkeypatch.setenv("LISTRAK_AUTH_URL", f"{url}/OAuth2/Token")
    monkeypatch.setenv("LISTRAK_API_URL", f"{url}/email/v1")
    yield app.extensions["listrak_sandbox"]
    server.shutdown()
    server.server_close()


def verify(config_dir, capsys) -> tuple[int, list[str]]:
    code = main(["--config", str(config_dir), "verify", "listrak-activity"])
    out = capsys.readouterr()
    return code, out.out.splitlines() + out.err.splitlines()


def test_verify_checks_token_list_permissions_and_user_id_field(activity_config, sandbox, capsys):
    code, lines = verify(activity_config, capsys)
    assert code == 0
    assert lines[0].startswith(
        "verify listrak-activity (pull source, plugin listrak_activity) http://127.0.0.1:"
    )
    assert lines[1:] == [
        "  ok    token for key listrak-production: fetched",
        "  ok    list 12345: exists ('Referral opt-ins')",
        "  ok    Message permission on list 12345: messages readable",
        "  ok    Reporting permission on list 12345: activity of message 9001 readable",
        "  ok    user_id_field 1006: exists in list 12345 ('user_id', Text, group 'Referral profile')",
        "5 of 5 checks passed",
    ]


def test_verify_names_a_missing_user_id_field(activity_config, sandbox, capsys):
    update_yaml(activity_config / SOURCE, {"user_id_field": 1099})
    code, lines = verify(activity_config, capsys)
    assert code == 1
    assert lines[-2:] == [
        "  FAIL  user_id_field 1099: not in list 12345 (searched 2 field group(s))",
        "4 of 5 checks passed; 1 failed",
    ]


def test_verify_says_which_permission_the_integration_lacks(
    activity_config, requests_mock, listrak_token, capsys
):
    forbidden = {"status": 403, "error": "ERROR_INSUFFICIENT_PERMISSIONS", "message": "Access denied."}
    requests_mock.get(f"{API}/List/12345", json={"status": 200, "data": {"listName": "Referral opt-ins"}})
    requests_mock.get(f"{API}/List/12345/Message", json={"status": 200, "data": [{"messageId": 77}]})
    requests_mock.get(f"{API}/List/12345/Message/77/Activity", status_code=403, json=forbidden)
    update_yaml(activity_config / SOURCE, {"user_id_field": None})
    code, lines = verify(activity_config, capsys)
    assert code == 1
    assert lines[1:] == [
        "  ok    token for key listrak-production: fetched",
        "  ok    list 12345: exists ('Referral opt-ins')",
        "  ok    Message permission on list 12345: messages readable",
        "  FAIL  Reporting permission on list 12345: HTTP 403 ERROR_INSUFFICIENT_PERMISSIONS: Access denied.",
        "3 of 4 checks passed; 1 failed",
    ]


def test_verify_with_membership_checks_the_contact_reads_it_needs(membership_config, sandbox, capsys):
    code, lines = verify(membership_config, capsys)
    assert code == 0
    assert lines[4:7] == [
        "  ok    Reporting permission on list 12345: activity of message 9001 readable",
        "  ok    Contact permission on list 12345 (membership: true reads who subscribed and unsubscribed):"
        " contacts readable by subscribe date",
        "  ok    user_id_field 1006: exists in list 12345 ('user_id', Text, group 'Referral profile')",
    ]


def test_verify_with_membership_names_the_contact_permission_it_lacks(
    membership_config, requests_mock, listrak_token, capsys
):
    forbidden = {"status": 403, "error": "ERROR_INSUFFICIENT_PERMISSIONS", "message": "Access denied."}
    requests_mock.get(f"{API}/List/12345", json={"status": 200, "data": {"listName": "Referral opt-ins"}})
    requests_mock.get(f"{API}/List/12345/Message", json={"status": 200, "data": []})
    requests_mock.get(f"{API}/List/12345/Contact", status_code=403, json=forbidden)
    update_yaml(membership_config / SOURCE, {"user_id_field": None})
    code, lines = verify(membership_config, capsys)
    assert code == 1
    assert lines[-2:] == [
        "  FAIL  Contact permission on list 12345 (membership: true reads who subscribed and unsubscribed):"
        " HTTP 403 ERROR_INSUFFICIENT_PERMISSIONS: Access denied."
        " (grant the integration the Contact permission)",
        "4 of 5 checks passed; 1 failed",
    ]


def test_the_activity_plugins_copy_of_the_listrak_test_settings_matches_the_listrak_plugins():
    from plugins.listrak import testing as listrak_testing
    from plugins.listrak_activity import testing as activity_testing

    env = listrak_testing.TEST_ENV
    assert (
        env["LISTRAK_API_URL"],
        env["LISTRAK_AUTH_URL"],
    ) == (activity_testing.API, activity_testing.TOKEN_URL)
    assert {
        env["LISTRAK_CLIENT_ID"]: env["LISTRAK_CLIENT_SECRET"],
        env["LISTRAK_STAGING_CLIENT_ID"]: env["LISTRAK_STAGING_CLIENT_SECRET"],
    } == activity_testing.UNIT_CLIENTS
