"""`connector verify <partner>` against the Listrak sandbox served from a thread."""

from __future__ import annotations

import pytest

from connector.cli import main
from plugins.listrak.sandbox import create_sandbox_app, serve_in_thread
from tests.config_files import update_yaml
from tests.conftest import TEST_ENV

FIELDS_OK = [
    "  ok    profile field 1001 (phone_number): exists in list 12345 ('phone_number', Text, "
    "group 'Referral profile')",
    "  ok    profile field 1002 (share_link): exists in list 12345 ('share_link', Text, "
    "group 'Referral profile')",
    "  ok    profile field 1003 (first_name): exists in list 12345 ('first_name', Text, "
    "group 'Referral profile')",
    "  ok    profile field 1004 (last_name): exists in list 12345 ('last_name', Text, "
    "group 'Referral profile')",
    "  ok    profile field 1005 (funnel): exists in list 12345 ('funnel', Text, group 'Referral profile')",
    "  ok    profile field 6789 (mapping 'Engage audience my_audience → field 6789'): exists in "
    "list 12345 ('My audience', CheckBox, group 'Audiences')",
]


SMS_OK = [
    "  ok    SMS token for key listrak-sms-production (production): fetched",
    "  ok    sender code 123: exists (55555, US, Sandbox Store)",
    "  ok    SMS list 456 on sender code 123: exists (Referral SMS, Active)",
]


@pytest.fixture
def sandbox(env, monkeypatch):
    """The sandbox, knowing the test keys' client ids and secrets; config points at it."""
    app = create_sandbox_app(
        clients={
            TEST_ENV["LISTRAK_CLIENT_ID"]: TEST_ENV["LISTRAK_CLIENT_SECRET"],
            TEST_ENV["LISTRAK_STAGING_CLIENT_ID"]: TEST_ENV["LISTRAK_STAGING_CLIENT_SECRET"],
        },
        sms_clients={TEST_ENV["LISTRAK_SMS_CLIENT_ID"]: TEST_ENV["LISTRAK_SMS_CLIENT_SECRET"]},
    )
    server, url = serve_in_thread(app=app)
    monkeypatch.setenv("LISTRAK_AUTH_URL", f"{url}/OAuth2/Token")
    monkeypatch.setenv("LISTRAK_API_URL", f"{url}/email/v1")
    monkeypatch.setenv("LISTRAK_SMS_API_URL", f"{url}/sms/v1")
    yield app.extensions["listrak_sandbox"]
    server.shutdown()
    server.server_close()


def verify(config_dir, capsys, partner="listrak") -> tuple[int, list[str]]:
    code = main(["--config", str(config_dir), "verify", partner])
    out = capsys.readouterr()
    return code, out.out.splitlines() + out.err.splitlines()


def test_example_config_passes(config_dir, sandbox, capsys):
    code, lines = verify(config_dir, capsys)
    assert code == 0
    assert lines[0].startswith("verify listrak (plugin listrak) http://127.0.0.1:")
    assert lines[1:] == [
        "  ok    token for key listrak-production (production): fetched",
        "  ok    token for key listrak-staging (staging): fetched",
        "  ok    list 12345 with key listrak-production: exists ('Referral opt-ins')",
        "  ok    list 12345 with key listrak-staging: exists ('Referral opt-ins')",
        *FIELDS_OK,
        "  ok    profile-field bulk route (Beta) with key listrak-production: this integration may use it",
        "  ok    profile-field bulk route (Beta) with key listrak-staging: this integration may use it",
        *SMS_OK,
        "15 of 15 checks passed",
    ]


def test_one_get_per_field_group(config_dir, sandbox, capsys):
    verify(config_dir, capsys)
    routes = sandbox.state()["requests"]["per_route"]
    assert routes["GET /List/<listId>/SegmentationFieldGroup"] == 1
    assert (
        routes["GET /List/<listId>/SegmentationFieldGroup/<segmentationFieldGroupId>/SegmentationField"] == 2
    )


def test_wrong_list_id_fails_with_a_clear_line(config_dir, sandbox, capsys):
    update_yaml(config_dir / "partners" / "listrak.yaml", {"subscription_list_id": 999})
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert (
        "  FAIL  list 999 with key listrak-production: HTTP 404 "
        "ERROR_UNABLE_TO_LOCATE_RESOURCE: Unable to locate a resource associated with the "
        "listId supplied."
    ) in lines
    assert "  FAIL  profile fields of list 999: not checked (the list could not be read)" in lines
    assert lines[-1] == "10 of 13 checks passed; 3 failed"


def test_wrong_field_id_fails_with_a_clear_line(config_dir, sandbox, capsys):
    update_yaml(config_dir / "partners" / "listrak.yaml", {"segmentation_fields.funnel": 1099})
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert "  FAIL  profile field 1099 (funnel): not in list 12345 (searched 2 field group(s))" in lines
    assert [line for line in lines if "FAIL" in line] == [
        "  FAIL  profile field 1099 (funnel): not in list 12345 (searched 2 field group(s))"
    ]


def test_wrong_secret_fails_with_a_clear_line_and_no_secret(config_dir, sandbox, capsys, monkeypatch):
    monkeypatch.setenv("LISTRAK_STAGING_CLIENT_SECRET", "not-the-staging-secret")
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert [line for line in lines if "FAIL" in line] == [
        "  FAIL  token for key listrak-staging (staging): refused by the token endpoint: "
        "token endpoint refused the credentials (Invalid Credentials)"
    ]
    assert "  ok    list 12345: exists ('Referral opt-ins')" in lines
    assert not any("not-the-staging-secret" in line for line in lines)


def test_no_working_key_leaves_the_list_unchecked(config_dir, sandbox, capsys, monkeypatch):
    monkeypatch.setenv("LISTRAK_CLIENT_SECRET", "wrong-production-secret")
    monkeypatch.setenv("LISTRAK_STAGING_CLIENT_SECRET", "wrong-staging-secret")
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert "  FAIL  list 12345: not checked (no key could fetch a token)" in lines


def test_unreachable_api_fails_every_token_line(config_dir, env, capsys, monkeypatch):
    monkeypatch.setenv("LISTRAK_AUTH_URL", "http://127.0.0.1:9/OAuth2/Token")
    monkeypatch.setenv("LISTRAK_API_URL", "http://127.0.0.1:9/email/v1")
    code, lines = verify(config_dir, capsys)
    assert code == 1
    assert lines[1].startswith("  FAIL  token for key listrak-production (production): could not fetch: ")
    assert not any("prod-secret-value" in line for line in lines)


def test_unknown_partner_exits_2(config_dir, env, capsys):
    code, lines = verify(config_dir, capsys, partner="nope")
    assert code == 2
    assert lines[-1] == (
        f"no partner 'nope' in {config_dir}/partners (known: listrak) "
        "nor pull source in sources/ (known: none)"
    )
